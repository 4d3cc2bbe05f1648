"""A diverging run never destroys a good model; one process per run directory; every CLI
failure is one line with exit code 2; resume extends the schedule (issue: reliability)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import water_config

import qpt_nb  # noqa: F401
from qpt_nb.cli.main import main
from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.learn.train import Trainer, TrainingDiverged

TINY = [
    "--molecule",
    "water",
    "--basis",
    "sto-3g",
    "--grid-level",
    "0",
    "--sampler",
    "wiggle",
    "--no-progress",
    "--n-test",
    "0",
]


pytestmark = pytest.mark.usefixtures("isolated_caches")
_config = water_config


def _fails(argv, capsys, *needles):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith(f"qpt-nb {argv[0]}: error: "), err
    for n in needles:
        assert n in err[-1], err[-1]
    return err[-1]


# ---------------------------------------------------------------- 1. divergence
def test_diverging_run_stops_and_keeps_the_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    tr = Trainer(_config(), run)
    tr.run(4)
    tr.close()
    good = ckpt.load(run / "checkpoint.ckpt")
    assert good["step"] == 4 and ckpt.all_finite(good["state"])
    wild = Trainer.resume(run, config=_config(lr=1e4, warmup_steps=0))
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+: loss \S+, gradient norm"):
        wild.run(60)
    wild.close()
    kept = ckpt.load(run / "checkpoint.ckpt")
    assert ckpt.all_finite(kept["state"]) and kept["step"] >= 4
    assert ckpt.all_finite(ckpt.load(ckpt.previous_path(run / "checkpoint.ckpt"))["state"])


def test_cli_diverging_run_is_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--steps", "2", "--out", out, "--checkpoint-every", "1"]) == 0
    capsys.readouterr()
    line = _fails(
        # AdamW's decoupled decay at lr 1e4 scales the weights by (1 - 1e3) a step: a sure
        # divergence (without decay the DFT loss stays bounded however large the steps are)
        [
            "train",
            "--resume",
            out,
            "--steps",
            "80",
            "--lr",
            "10000",
            "--warmup",
            "0",
            "--weight-decay",
            "0.1",
        ],
        capsys,
        "diverged at step",
    )
    assert "Lower the learning rate" in line
    assert ckpt.all_finite(ckpt.load(tmp_path / "run" / "checkpoint.ckpt")["state"])


def test_loss_jump_is_reported(tmp_path):
    tr = Trainer(_config())
    tr.history = [dict(step=i, loss=-75.0 + 1e-6 * (i % 3), lr=1e-3) for i in range(20)]
    rec = dict(step=11, loss=-74.0, lr=1e-3)
    with pytest.warns(RuntimeWarning, match="jumped far above"):
        tr._check_jump(rec)
    assert rec["loss_jump"]
    calm = dict(step=11, loss=-75.0, lr=1e-3)
    tr._check_jump(calm)
    assert "loss_jump" not in calm
    tr.close()


def test_loss_jump_window_spans_conformer_batches():
    """A new conformer batch at another energy (a dihedral scan) is no jump; a real one
    warns once per batch, not once per step."""
    import warnings

    tr = Trainer(_config(reuse=8))
    energies = [-488.9, -488.5, -489.0, -488.7]  # four batches of 8 steps, 0.5 Ha apart
    tr.history = [dict(step=i, loss=energies[i // 8] - 1e-5 * (i % 8), lr=1e-3) for i in range(32)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new_batch = dict(step=32, loss=-488.45, lr=1e-3)
        tr._check_jump(new_batch)
    assert "loss_jump" not in new_batch
    with pytest.warns(RuntimeWarning, match="jumped far above") as caught:
        for i in range(33, 37):
            rec = dict(step=i, loss=-470.0, lr=1e-3)
            tr._check_jump(rec)
            assert rec["loss_jump"]
    assert len(caught) == 1
    tr.close()


def test_numeric_settings_are_validated():
    for kw, msg in [
        (dict(lr=-1), "lr must be finite and > 0"),
        (dict(lr=float("nan")), "lr"),
        (dict(warmup_steps=-5), "warmup_steps must be >= 0"),
        (dict(clip_norm=-1), "clip_norm"),
        (dict(mix=5), "mix must be finite"),
        (dict(grid_level=12), "grid_level must be in 0..9"),
    ]:
        with pytest.raises(ValueError, match=msg):
            _config(**kw)
    with pytest.raises(TypeError, match="batch_size must be an integer >= 1, got '2'"):
        _config(batch_size="2")


# ---------------------------------------------------------------- 2. one run per directory
def test_second_process_on_the_same_run_is_refused(tmp_path):
    run = tmp_path / "run"
    code = textwrap.dedent(f"""
      import sys, qpt_nb
      from qpt_nb.learn.runlock import RunLock
      lock = RunLock({str(run)!r}).acquire()
      print("locked", flush=True)
      sys.stdin.readline()
  """)
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = dict(os.environ, QPT_NB_JAX_CACHE="off")
        res = subprocess.run(
            [sys.executable, "-m", "qpt_nb.cli.main", "train", *TINY, "--steps", "2", "--out", str(run)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert res.returncode == 2, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert f"in use by another qpt-nb process (pid {holder.pid} on" in last
        assert not (run / "history.jsonl").exists()  # nothing written by the refused run
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)


# ---------------------------------------------------------------- 5. --out checked first
def test_bad_out_paths_are_one_line(tmp_path, capsys):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    _fails(["train", *TINY, "--steps", "2", "--out", str(afile)], capsys, "is a file")
    _fails(["train", *TINY, "--steps", "2", "--out", str(afile / "run")], capsys, "lies under")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        _fails(["train", *TINY, "--steps", "2", "--out", str(ro / "run")], capsys, "cannot write")


# ---------------------------------------------------------------- 6. resume and restarts
def test_resume_extends_the_schedule_and_steps_0_is_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    _fails(["train", *TINY, "--steps", "0", "--out", out], capsys, "--steps must be >= 1")
    assert main(["train", *TINY, "--steps", "5", "--out", out]) == 0
    assert main(["train", "--resume", out, "--steps", "8", "--no-progress", "--n-test", "0"]) == 0
    err = capsys.readouterr().err
    assert "extending the learning-rate schedule from 5 to 8" in err
    hist = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in hist] == list(range(1, 9))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["decay_steps"] == 8
    assert hist[5]["lr"] > 1e-6  # step 6 no longer runs at the final 1e-7


def test_run_killed_before_its_first_step_can_be_restarted(tmp_path, capsys):
    run = tmp_path / "run"
    tr = Trainer(_config(), run)  # config, empty history, a step-0 checkpoint
    tr.close()
    (run / ".checkpoint.ckpt.dead.tmp").write_bytes(b"\0" * 1000)  # a killed write
    assert ckpt.load(run / "checkpoint.ckpt")["step"] == 0
    assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 0
    assert not list(run.glob(".*.tmp"))
    assert ckpt.load(run / "checkpoint.ckpt")["step"] == 2
    _fails(["train", *TINY, "--steps", "2", "--out", str(run)], capsys, "already holds a run at step 2")
