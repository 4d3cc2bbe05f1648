"""`qpt-nb train / evaluate`: exit codes and messages for bad input, a tiny run, resume."""

import argparse
import json

import pytest

import qpt_nb  # noqa: F401
from qpt_nb.analysis.evaluation import CSV_COLUMNS
from qpt_nb.analysis.metrics import METRIC_KEYS
from qpt_nb.cli.main import main
from qpt_nb.learn import checkpoint as ckpt

TINY = [
    "--molecule",
    "water",
    "--basis",
    "sto-3g",
    "--grid-level",
    "1",
    "--sampler",
    "wiggle",
    "--no-progress",
]


@pytest.fixture(autouse=True)
def label_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path_factory.getbasetemp() / "label-cache"))
    monkeypatch.setenv("QPT_NB_JAX_CACHE", str(tmp_path_factory.getbasetemp() / "jax-cache"))


@pytest.fixture(scope="module", autouse=True)
def restore_compile_cache():
    """The CLI turns JAX's persistent compilation cache on; switch it off for later tests."""
    import jax

    before = jax.config.jax_compilation_cache_dir
    yield
    if not before and jax.config.jax_compilation_cache_dir:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()


def _fails(argv, capsys, *needles):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"qpt-nb {argv[0]}: error: ")
    for n in needles:
        assert n in line, line
    return line


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "run")
    _fails(
        ["train", "--molecule", "unobtainium", "--steps", "2", "--out", out],
        capsys,
        "unknown builtin molecule",
    )
    _fails(["train", *TINY, "--steps", "-3", "--out", out], capsys, "--steps must be >= 1")
    _fails(["train", *TINY, "--out", out], capsys, "a new run needs --steps, or --minutes")
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nwater with a missing atom\nO 0 0 0\nH 0 0 0.96\n")
    _fails(["train", "--xyz", str(bad), "--steps", "2", "--out", out], capsys, "atom count")
    _fails(["train", "--xyz", str(tmp_path / "nope.xyz"), "--steps", "2", "--out", out], capsys, "nope.xyz")
    _fails(["train", *TINY, "--xc", "b3lyp9", "--steps", "2", "--out", out], capsys, "b3lyp9")
    _fails(["train", "--resume", str(tmp_path / "missing"), "--steps", "2"], capsys, "missing")
    (tmp_path / "empty").mkdir()
    _fails(["train", "--resume", str(tmp_path / "empty"), "--steps", "2"], capsys, "No checkpoint")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.ckpt").write_bytes(b"QPTNB-CKPT-1 00\nrubbish")
    _fails(["train", "--out", str(corrupt), "--resume", "--steps", "2"], capsys, "corrupt")
    _fails(["evaluate", "--run", str(tmp_path / "missing")], capsys, "No run directory")
    _fails(["evaluate", "--run", str(corrupt)], capsys, "corrupt")
    assert not (tmp_path / "run").exists()


def test_tiny_train_writes_a_run_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(
        [
            "train",
            *TINY,
            "--steps",
            "4",
            "--n-test",
            "2",
            "--monitor-every",
            "2",
            "--monitor-n",
            "1",
            "--reuse",
            "2",
            "--seed",
            "3",
            "--out",
            str(run),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    cfg = json.loads((run / "config.json").read_text())
    for k in ("molecule", "basis", "xc", "grid_level", "model", "loss", "sampler", "seed"):
        assert k in cfg
    assert (cfg["molecule"], cfg["grid_level"], cfg["seed"]) == ("water", 1, 3)
    assert (cfg["decay_steps"], cfg["warmup_steps"]) == (4, 1)  # short schedule (warm-up at least 1)
    hist = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in hist] == [1, 2, 3, 4]
    assert "test_energy_mae_mev" in hist[1] and "test_hamiltonian_mae_uha" in hist[3]
    assert ckpt.load(run / "checkpoint.ckpt")["step"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["trained"]) == set(METRIC_KEYS) == set(metrics["baseline_w0"])
    assert metrics["trained"]["n_conformers"] == 2 and metrics["metadata"]["step"] == 4
    header = (run / "per_conformer.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == CSV_COLUMNS
    assert (run / "test_set.xyz").read_text().count("test conformer") == 2
    for png in ("loss_vs_step.png", "loss_vs_wall.png", "per_conformer.png"):
        assert (run / png).stat().st_size > 1000
    assert "energy MAE (meV)" in out and "W=0 baseline" in out and "per_conformer.png" in out

    # a second fresh run into the same directory is refused
    code = main(["train", *TINY, "--steps", "2", "--n-test", "0", "--out", str(run)])
    assert code == 2 and "--resume" in capsys.readouterr().err
    # resuming with another molecule is refused, the run is left untouched
    code = main(["train", "--out", str(run), "--resume", "--molecule", "ammonia", "--steps", "6"])
    assert code == 2 and "Cannot resume" in capsys.readouterr().err
    assert ckpt.load(run / "checkpoint.ckpt")["step"] == 4

    # --steps with --resume is the total: continue from 4 to 6
    code = main(["train", "--resume", str(run), "--steps", "6", "--n-test", "0", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    hist = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in hist] == [1, 2, 3, 4, 5, 6]
    assert ckpt.load(run / "checkpoint.ckpt")["step"] == 6
    assert json.loads((run / "config.json").read_text())["seed"] == 3

    # evaluate writes the metrics of the resumed run (labels now come from the cache)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--n-test", "2", "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["metadata"]["step"] == 6
    assert "Hamiltonian MAE (uHa)" in capsys.readouterr().out


def test_demo_parser_defaults():
    from qpt_nb.cli.demo import DEMO, add_demo_args
    from qpt_nb.cli.main import add_molecule_args

    p = argparse.ArgumentParser()
    add_molecule_args(p)  # the lead's demo parser options come first
    add_demo_args(p)
    args = p.parse_args(["--steps", "5"])
    assert args.grid_level is None and args.molecule is None and args.steps == 5
    assert DEMO["molecule"] == "uracil" and DEMO["model"] == "nano"


@pytest.mark.slow
def test_demo_smoke_mode(tmp_path, monkeypatch, capsys):
    from qpt_nb.cli.demo import add_demo_args, run_demo
    from qpt_nb.cli.main import add_molecule_args

    monkeypatch.setenv("QPT_NB_SMOKE", "1")
    p = argparse.ArgumentParser()
    add_molecule_args(p)
    add_demo_args(p)
    assert run_demo(p.parse_args(["--out", str(tmp_path / "demo")])) == 0
    out = capsys.readouterr().out
    assert "W=0 baseline" in out and (tmp_path / "demo" / "metrics.json").is_file()
