"""Training: pure update, steppable Trainer, atomic checkpoints, exact resume, and the
label-free CI smoke run (water/STO-3G: the DFT loss alone cuts the energy error)."""

import itertools
import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import water_config

import qpt_nb  # noqa: F401
from qpt_nb.analysis.runs import load_run
from qpt_nb.dft.scf import scf_loop
from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.learn.batch import prepare_conformer, stack_batch
from qpt_nb.learn.conformers import ConformerStream
from qpt_nb.learn.losses import model_outputs
from qpt_nb.learn.network import network_fns
from qpt_nb.learn.train import Trainer
from qpt_nb.units import MEV_PER_HARTREE as HA_TO_MEV


def small_config(**kw):
    """The tests' water run (conftest) on grid level 1 with a 150-step schedule."""
    base = dict(grid_level=1, lr=2e-3, warmup_steps=15, decay_steps=150, reuse=4, checkpoint_every=3)
    return water_config(**{**base, **kw})


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_update_is_pure_and_run_continues(tmp_path):
    tr = Trainer(small_config(), tmp_path / "run")
    first = tr.run(2)
    assert tr.step == 2 and [r["step"] for r in first] == [1, 2]
    tr.run(3)
    assert tr.step == 5
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2, 3, 4, 5]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in ("molecule", "basis", "xc", "grid_level", "model", "loss", "sampler", "seed"):
        assert key in cfg
    # update() is pure: the same state and batch give the same new state, the input state
    # is left as it was, and the new state differs from it (a step was taken)
    batch = tr.make_batch([tr.mol])
    before = [a.copy() for a in _leaves(tr.state)]
    s1, m1 = tr._update(tr.state, batch)
    s2, m2 = tr._update(tr.state, batch)
    assert m1["loss"] == m2["loss"]
    for a, b in zip(_leaves(s1), _leaves(s2)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before, _leaves(tr.state)):
        np.testing.assert_array_equal(a, b)
    assert int(s1.step) == int(tr.state.step) + 1
    assert any(not np.array_equal(a, b) for a, b in zip(_leaves(s1.params), _leaves(tr.state.params)))
    tr.close()


def test_resume_matches_uninterrupted_run(tmp_path):
    full = Trainer(small_config())
    full.run(7)
    part = Trainer(small_config(), tmp_path / "run")
    part.run(5)  # checkpoints at 3 and at the end (5)
    part.close()
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.step == 5
    resumed.run(2)
    for a, b in zip(_leaves(full.params), _leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    cfg, params, _ = load_run(tmp_path / "run")
    assert cfg.molecule == "water"
    full.close()
    resumed.close()


def test_corrupt_or_missing_checkpoint_is_reported(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="No checkpoint"):
        Trainer.resume(tmp_path / "nothing")
    tr = Trainer(small_config(), tmp_path / "run")
    tr.run(1)
    tr.close()
    path = tmp_path / "run" / "checkpoint.ckpt"
    good = path.read_bytes()
    path.write_bytes(good[:-10])
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        Trainer.resume(tmp_path / "run")
    assert path.read_bytes() == good[:-10]  # never overwritten by the failed resume


def test_incompatible_resume_is_refused(tmp_path):
    tr = Trainer(small_config(), tmp_path / "run")
    tr.run(1)
    tr.close()
    with pytest.raises(ValueError, match="molecule"):
        Trainer.resume(tmp_path / "run", config=small_config(molecule="ammonia"))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    ckpt.save(tmp_path / "a.ckpt", {"x": np.arange(3)})
    assert ckpt.load(tmp_path / "a.ckpt")["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_bad_config_values():
    with pytest.raises(ValueError, match="loss"):
        small_config(loss="mse")
    with pytest.raises(ValueError, match="sampler"):
        small_config(sampler="teleport")
    with pytest.raises(ValueError, match="batch_size"):
        small_config(batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        Trainer(small_config()).run(-1)


KILL_SCRIPT = """
import sys, qpt_nb
from qpt_nb.learn.train import Trainer, TrainConfig
cfg = TrainConfig(molecule="water", basis="sto-3g", grid_level=1, lr=2e-3, warmup_steps=15,
                  decay_steps=150, reuse=4, sampler="wiggle", checkpoint_every=2)
tr = Trainer(cfg, sys.argv[1])
tr.run(10_000)
"""


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if (run / "checkpoint.ckpt").exists() and ckpt.load(run / "checkpoint.ckpt")["step"] >= 4:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    resumed = Trainer.resume(run)
    k = resumed.step
    assert k >= 4 and k % 2 == 0
    resumed.run(3)
    ref = Trainer(small_config(checkpoint_every=2))
    ref.run(k + 3)
    for a, b in zip(_leaves(ref.params), _leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    steps = [json.loads(l)["step"] for l in (run / "history.jsonl").read_text().splitlines()]
    assert steps == list(range(1, k + 4))
    resumed.close()
    ref.close()


def test_label_free_training_beats_the_w0_baseline():
    """CI smoke run: water/STO-3G, nano, DFT energy as the only loss."""
    tr = Trainer(small_config(decay_steps=150))
    test = [m for _, m in zip(range(4), ConformerStream(tr.mol, "wiggle", seed=999))]
    batch = stack_batch(prepare_conformer(m, "sto-3g", xc="b3lyp5", grid_level=1) for m in test)
    ref = np.array(
        [
            scf_loop(jax.tree_util.tree_map(lambda x: x[i], batch.tensors), "b3lyp5", conv_tol=1e-12).energy
            for i in range(len(test))
        ]
    )

    def mae(zero):
        e = model_outputs(network_fns("nano")[1], tr.params, batch, zero_correction=zero).energy
        return np.mean(np.abs(np.asarray(e) - ref)) * HA_TO_MEV

    baseline = mae(True)
    tr.run(150)
    trained = mae(False)
    assert baseline > 1.0
    assert trained < baseline / 5, (trained, baseline)
    tr.close()


def test_supervised_training_uses_pyscf_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    tr = Trainer(small_config(loss="supervised", dataset_size=2, reuse=1, lr=3e-3, warmup_steps=1))
    recs = tr.run(12)
    assert tr.label_seconds > 0
    assert recs[-1]["loss"] < recs[0]["loss"]  # fits the labels (Hartree^2)
    tr.close()


def test_supervised_conformers_are_built_once_without_grid(tmp_path, monkeypatch):
    """Label-then-train keeps each labelled conformer once, without its grid: later
    epochs do no precompute, and the loss is the same as on the full batch."""
    from qpt_nb.learn import train as train_mod
    from qpt_nb.learn.batch import without_grid
    from qpt_nb.learn.losses import loss_fn

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    tr = Trainer(small_config(loss="supervised", dataset_size=2, reuse=1, warmup_steps=1))
    built = []
    real = train_mod.prepare_conformer
    monkeypatch.setattr(train_mod, "prepare_conformer", lambda *a, **k: built.append(1) or real(*a, **k))
    pool = list(itertools.islice(ConformerStream(tr.mol, "wiggle", seed=0, **tr.config.sampler_kwargs()), 2))
    first = [tr.make_batch([m]) for m in pool]
    again = [tr.make_batch([m]) for m in pool]
    assert len(built) == 2  # the second epoch built nothing
    np.testing.assert_array_equal(first[1].inputs.bias, again[1].inputs.bias)
    assert first[0].tensors.ao.size == 0 and first[0].tensors.eri.size == 0
    assert first[0].tensors.nbytes() < 20_000
    # the supervised loss does not read the grid: same value on the full batch
    full = prepare_conformer(pool[0], "sto-3g", xc="b3lyp5", grid_level=1)
    full = type(full)(full.tensors, full.init, full.inputs, first[0].ref_fock, full.xc)
    apply_fn = network_fns("nano")[1]
    a = loss_fn(apply_fn, tr.params, full, loss="supervised")
    b = loss_fn(apply_fn, tr.params, without_grid(full), loss="supervised")
    np.testing.assert_allclose(float(a), float(b), rtol=1e-12)
    tr.run(6)  # trains on the kept conformers (three epochs)
    assert len(built) == 2
    tr.close()
