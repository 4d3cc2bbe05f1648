"""The data schedule (`qpt_nb.learn.schedule`) and the Trainer that follows it: the window
of the research code, the consecutive schedule, exact resume at every step of the first
rounds, determinism, and the parameter average."""

import jax
import numpy as np
import pytest
from conftest import water_config

from qpt_nb.learn.schedule import DataSchedule
from qpt_nb.learn.train import TrainConfig, Trainer


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


# ----------------------------------------------------------------------------- the pure map
@pytest.mark.parametrize("reuse", [1, 3, 4, 16])
def test_window_rounds_hold_the_last_reuse_batches(reuse):
    sch = DataSchedule("window", reuse=reuse, seed=7)
    step = 0
    for r in range(3 * reuse + 2):
        assert sch.round_start(r) == step
        k = min(r + 1, reuse)
        got = [sch.batch_at(step + j) for j in range(k)]
        # one step on each of the last `reuse` batches, each exactly once
        assert sorted(got) == list(range(r - k + 1, r + 1))
        for j in range(k):
            assert sch.round_of(step + j) == r
            assert sch.live_batches(step + j) == range(r - k + 1, r + 1)
        step += k
    # every batch is stepped on `reuse` times in all (once the window has passed it)
    counts = np.bincount([sch.batch_at(s) for s in range(step)])
    assert (counts[: len(counts) - reuse] == reuse).all()


def test_window_order_is_shuffled_per_round_and_seeded():
    a = DataSchedule("window", reuse=16, seed=0)
    b = DataSchedule("window", reuse=16, seed=1)
    orders = [tuple(a.round_order(r)) for r in range(16, 26)]
    assert len(set(orders)) > 1 and any(o != tuple(sorted(o)) for o in orders)
    assert [a.batch_at(s) for s in range(500)] == [a.batch_at(s) for s in range(500)]
    assert [a.batch_at(s) for s in range(500)] != [b.batch_at(s) for s in range(500)]


def test_consecutive_is_the_old_schedule():
    sch = DataSchedule("consecutive", reuse=4)
    assert [sch.batch_at(s) for s in range(10)] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert sch.live_batches(5) == range(1, 2)
    assert sch.n_batches(9) == 3 and sch.n_batches(0) == 0


def test_n_batches_counts_the_distinct_batches_drawn():
    sch = DataSchedule("window", reuse=4, seed=3)
    assert sch.n_batches(0) == 0
    for n in range(1, 60):
        used = {sch.batch_at(s) for s in range(n)}
        assert used == set(range(len(used)))  # batches are used in index order
        # the rounds begun: every batch used, plus the current round's new one if not yet stepped
        assert len(used) <= sch.n_batches(n) <= len(used) + 1
        assert sch.n_batches(n) == sch.round_of(n - 1) + 1


def test_bad_schedules():
    with pytest.raises(ValueError, match="data schedule"):
        DataSchedule("random")
    with pytest.raises(ValueError, match="reuse"):
        DataSchedule("window", reuse=0)
    with pytest.raises(ValueError, match="data_schedule"):
        TrainConfig(molecule="water", data_schedule="shuffle")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(molecule="water", ema_decay=1.0)


# ----------------------------------------------------------------------------- the Trainer
def tiny(**kw):
    """The tests' water run (conftest) with a window of 3 and a checkpoint every step."""
    base = dict(lr=2e-3, warmup_steps=3, decay_steps=60, reuse=3, checkpoint_every=1)
    return water_config(**{**base, **kw})


@pytest.mark.parametrize("mode", ["window", "consecutive"])
def test_resume_at_every_step_of_the_first_three_rounds(tmp_path, mode):
    """A run stopped after k steps and resumed (for every k of the first three rounds of a
    window of 3: 1 + 2 + 3 steps) reproduces the uninterrupted run's losses exactly."""
    cfg = tiny(data_schedule=mode, ema_decay=0.9)
    total = DataSchedule(mode, reuse=3).round_start(3) + 2  # into the fourth round
    ref = Trainer(cfg)
    ref_loss = [r["loss"] for r in ref.run(total)]
    ref.close()
    for k in range(1, total):
        run = tmp_path / f"{mode}{k}"
        tr = Trainer(cfg, run)
        tr.run(k)
        tr.close()
        tr = Trainer.resume(run)
        assert tr.step == k
        loss = [r["loss"] for r in tr.run(total - k)]
        made = tr.data_stats()["items_made"]
        assert made <= 3 + tr.config.queue_size + 1  # at most `reuse` rebuilt, plus the queue
        for a, b in zip(_leaves(ref.state), _leaves(tr.state)):
            np.testing.assert_array_equal(a, b)
        tr.close()
        assert loss == ref_loss[k:], (mode, k)


def test_same_seed_same_losses_whatever_the_prefetch_timing():
    a = Trainer(tiny(prefetch_workers=1, queue_size=1, batch_size=2))
    b = Trainer(tiny(prefetch_workers=2, queue_size=4, batch_size=2))
    la = [r["loss"] for r in a.run(8)]
    lb = [r["loss"] for r in b.run(8)]
    assert la == lb
    a.close()
    b.close()


def test_window_trains_on_its_batches_in_order():
    """The Trainer steps on exactly the batches the schedule names (a conformer batch is
    identified by its geometry), and holds no more than the window."""
    tr = Trainer(tiny())
    seen = []
    orig = tr._batch_for

    def spy(step):
        b = orig(step)
        seen.append(float(np.asarray(b.tensors.e_nuc).ravel()[0]))
        assert len(tr._window) <= tr.config.reuse
        return b

    tr._batch_for = spy
    tr.run(10)
    sch = tr.schedule
    by_batch = {}
    for s, e in enumerate(seen):
        by_batch.setdefault(sch.batch_at(s), set()).add(e)
    assert all(len(v) == 1 for v in by_batch.values())  # one geometry per batch index
    assert len({next(iter(v)) for v in by_batch.values()}) == len(by_batch)  # distinct batches
    tr.close()


def test_parameter_average_is_kept_and_saved(tmp_path):
    tr = Trainer(tiny(ema_decay=0.9), tmp_path / "run")
    tr.run(4)
    raw, avg = _leaves(tr.raw_params), _leaves(tr.params)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(raw, avg))
    tr.close()
    from qpt_nb.analysis.runs import load_run

    _, params, step = load_run(tmp_path / "run")
    _, raw_loaded, _ = load_run(tmp_path / "run", raw=True)
    assert step == 4
    for a, b in zip(avg, _leaves(params)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(raw, _leaves(raw_loaded)):
        np.testing.assert_array_equal(a, b)
    off = Trainer(tiny(ema_decay=0.0))
    off.run(2)
    for a, b in zip(_leaves(off.raw_params), _leaves(off.params)):
        np.testing.assert_array_equal(a, b)
    off.close()


def test_memory_check_counts_the_window_the_training_grid_and_the_monitor():
    from qpt_nb.cli.train import memory_line
    from qpt_nb.dft.memory import estimate_memory

    cfg = tiny(reuse=4, batch_size=2, queue_size=2, grid_level=3, train_grid_level=0, precision="float32")
    line = memory_line(cfg, monitor_n=3)
    held = (4 + 2 + 1) * 2  # the window's batches and the prefetch queue
    assert f"{held} geometries held" in line and "grid level 0" in line and "monitor of 3" in line
    f32 = estimate_memory("water", "sto-3g", grid_level=0, precision="float32")
    f64 = estimate_memory("water", "sto-3g", grid_level=0)
    assert f32["ao_bytes"] * 2 == f64["ao_bytes"]  # float32 grid work: half the AO bytes
    consecutive = memory_line(tiny(data_schedule="consecutive", reuse=4, batch_size=2, queue_size=2))
    assert f"{(1 + 2 + 1) * 2} geometries held" in consecutive and "monitor" not in consecutive
