"""Budget runs resume across processes (`qpt_nb.analysis.budget`): a pipeline killed part-way
continues from its last checkpoint with its charged clock, curve, evaluation times, fitted
cosine and labelling record, and a finished one is not trained again. On a fake clock (one
second per reading), so the runs are deterministic."""

import dataclasses
import itertools

import pytest

from qpt_nb.analysis import budget
from qpt_nb.analysis import experiments as ex
from qpt_nb.analysis.timing import cpu_model


class Killed(Exception):
    """Stands for the process being killed after an evaluation."""


def _clock():
    ticks = itertools.count()
    return lambda: float(next(ticks))


@pytest.fixture
def h2(tmp_path, monkeypatch):
    from qpt_nb.analysis.evaluation import make_monitor, make_test_set
    from qpt_nb.dft import reference
    from qpt_nb.learn.train import TrainConfig

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(
        molecule="h2",
        basis="sto-3g",
        xc="lda,vwn",
        grid_level=0,
        model="nano",
        sampler="wiggle",
        reuse=2,
        warmup_steps=1,
        decay_steps=10**6,
        log_every=10**9,
        checkpoint_every=10**9,
    )
    test = make_test_set(cfg.molecule_object(), 2, sampler="wiggle")
    labels = reference.label_many(test, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level)
    return cfg, make_monitor(cfg, test, labels)


def _kill_after(n_evals):
    def on_eval(run):
        if len(run.curve) == n_evals:
            raise Killed

    return on_eval


def test_a_killed_label_free_run_resumes_where_its_checkpoint_stood(tmp_path, h2, monkeypatch):
    cfg, monitor = h2
    kw = dict(budget_s=450.0, every_s=75.0, monitor=monitor, name="Q", resume=True)
    with pytest.raises(Killed):
        ex.label_free_run(cfg, clock=_clock(), run_dir=tmp_path / "q", on_eval=_kill_after(4), **kw)
    kept = budget.resumable(tmp_path / "q")
    assert kept["kind"] == budget.RESUME_KIND and len(kept["curve"]) == 3  # the 4th did not end
    # ... but the checkpoint was saved as it began, marked pending
    pending = kept["pending_eval"]
    assert set(pending) == {"t_s"} and kept["charged_s"] - 5 < pending["t_s"] <= kept["charged_s"]
    monkeypatch.setenv("QPT_NB_EVAL_LOCK_DIR", str(tmp_path / "lock"))  # not the machine's
    (tmp_path / "lock").mkdir()
    lock = budget.evaluation_lock_dir() / budget.EVAL_LOCK_FILE
    run = ex.label_free_run(cfg, clock=_clock(), run_dir=tmp_path / "q", eval_turns=True, **kw)
    assert run.error is None, run.error
    assert lock.exists()  # the resumed run evaluated in turn
    assert run.curve[:3] == kept["curve"]  # the saved evaluations, as they were
    t = [r["t_s"] for r in run.curve]
    steps = [r["step"] for r in run.curve]
    assert t == sorted(t) and steps == sorted(steps) and t[-1] >= 450.0
    # the evaluation killed is made first, at its charged time and step: nothing retrained
    assert t[3] == pending["t_s"] and steps[3] > kept["curve"][-1]["step"]
    assert t[4] > kept["charged_s"] and steps[4] > steps[3]  # the clock went on from there
    # the evaluation times are the first run's: every 75 charged seconds after the start
    start = kept["schedule_start"]
    assert all(abs((a - start) - 75.0 * k) < 10.0 for k, a in enumerate(t[1:-1], 1))
    # a finished run found again is returned as it is, not trained further
    again = ex.label_free_run(cfg, clock=_clock(), run_dir=tmp_path / "q", **kw)
    assert again.curve == run.curve and again.steps == run.steps


class _FakeTrainer:
    """What `BudgetFit` reads and calls: step, data_ready, timing, config, reschedule."""

    def __init__(self):
        from qpt_nb.learn.train import TrainConfig

        self.step, self.data_ready, self.timing = 0, True, dict(compile_s=0.0)
        self.config = TrainConfig(molecule="h2", warmup_steps=1, decay_steps=10**6)

    def reschedule(self, *, decay_steps, warmup_steps=None):
        self.config = dataclasses.replace(self.config, decay_steps=decay_steps)


def test_a_budget_fit_continued_from_its_state_fits_as_the_uninterrupted_one():
    from qpt_nb.learn.recipe import BudgetFit

    def drive(fit, tr, charged_steps):
        for charged, step in charged_steps:
            tr.step = step
            fit(tr, charged)

    # 3 steps per charged second, a little faster later; calls every 10 charged seconds
    calls = [(10.0 * k, int(30 * k + 0.02 * k * k)) for k in range(100)]
    whole, tr = BudgetFit(1000.0), _FakeTrainer()
    drive(whole, tr, calls)
    first, tr1 = BudgetFit(1000.0), _FakeTrainer()
    drive(first, tr1, calls[:40])
    assert first.fits and not first.done  # killed between the first fit and the last refit
    again, tr2 = BudgetFit(1000.0).load_state(first.state()), _FakeTrainer()
    drive(again, tr2, calls[40:])
    assert again.fits == whole.fits and len(whole.fits) == 4 and again.done
    assert tr2.config.decay_steps == tr.config.decay_steps


def test_a_killed_label_then_train_run_keeps_its_labels_and_does_not_relabel(tmp_path, h2, monkeypatch):
    cfg, monitor = h2
    kw = dict(n_labels=2, budget_s=600.0, every_s=100.0, monitor=monitor, name="L", resume=True)
    with pytest.raises(Killed):
        ex.label_then_train_run(cfg, clock=_clock(), run_dir=tmp_path / "l", on_eval=_kill_after(3), **kw)
    kept = budget.resumable(tmp_path / "l")
    assert kept["labels"]["n_labels"] == 2 and kept["curve"][0]["phase"] == "labelled"

    def no_labelling(*a, **k):
        raise AssertionError("a resumed run must not label again")

    monkeypatch.setattr(ex, "_label_training_set", no_labelling)
    run = ex.label_then_train_run(cfg, clock=_clock(), run_dir=tmp_path / "l", **kw)
    assert run.error is None, run.error
    assert run.n_labels == 2 and run.label_seconds == kept["labels"]["label_seconds"] > 0
    assert run.config.dataset_size == 2 and run.config.loss == "supervised"
    assert run.curve[:2] == kept["curve"] and run.curve[-1]["t_s"] >= 600.0
    assert run.curve[2]["t_s"] == kept["pending_eval"]["t_s"] <= kept["charged_s"]  # made first
    assert run.timing["labels_end_s"] == kept["timing"]["labels_end_s"]


def test_resuming_with_another_budget_or_setting_is_refused(tmp_path, h2):
    cfg, monitor = h2
    kw = dict(every_s=100.0, monitor=monitor, name="Q", resume=True, run_dir=tmp_path / "q")
    ex.label_free_run(cfg, budget_s=200.0, clock=_clock(), **kw)
    run = ex.label_free_run(cfg, budget_s=300.0, clock=_clock(), **kw)
    assert "budget of 200 s" in run.error
    run = ex.label_free_run(dataclasses.replace(cfg, lr=5e-3), budget_s=200.0, clock=_clock(), **kw)
    assert "lr=" in run.error
    saved = budget.resumable(tmp_path / "q")
    assert saved["cpu_model"] == cpu_model()
    with pytest.raises(ValueError, match="charged on a 'Other CPU' CPU"):
        budget.check_same_run(cfg, cfg, dict(saved, cpu_model="Other CPU"), 200.0)
    budget.check_same_run(cfg, cfg, dict(saved, cpu_model=None), 200.0)  # older states: not checked
    # without resume=True the directory is a fresh run's (the old behaviour)
    fresh = ex.label_free_run(cfg, budget_s=50.0, clock=_clock(), **dict(kw, resume=False))
    assert fresh.error is None and fresh.curve[0]["step"] == 0 and fresh.curve[-1]["t_s"] < 200.0


def test_an_evaluation_refused_for_memory_waits_and_tries_again():
    from qpt_nb.dft.memory import InsufficientMemoryError

    calls, slept = [], []

    def evaluate():
        calls.append(1)
        if len(calls) < 3:
            raise InsufficientMemoryError("not enough memory for the DFT precompute")
        return {"energy_mae_mev": 1.0}

    assert budget._with_memory_retries(evaluate, "Q", wait_s=5.0, tries=4, sleep=slept.append) == {
        "energy_mae_mev": 1.0
    }
    assert len(calls) == 3 and slept == [5.0, 5.0]

    def never():
        raise InsufficientMemoryError("not enough memory")

    with pytest.raises(InsufficientMemoryError):
        budget._with_memory_retries(never, "Q", wait_s=1.0, tries=2, sleep=slept.append)
    assert slept == [5.0, 5.0, 1.0]  # the last refusal is raised, not waited for


def test_evaluations_of_runs_side_by_side_take_turns(tmp_path, capsys):
    """Another process holds the machine's evaluation lock for 1.5 s: this run's evaluation
    waits for it (and says so), then runs; without a holder it runs at once."""
    import subprocess
    import sys
    import time

    lock = tmp_path / budget.EVAL_LOCK_FILE
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, json, sys, time; f = open(sys.argv[1], 'a+'); "
            "fcntl.flock(f.fileno(), fcntl.LOCK_EX); "
            "f.write(json.dumps(dict(pid=1, host='h', since='then'))); f.flush(); "
            "print('held', flush=True); time.sleep(1.5)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    t0 = time.perf_counter()
    assert budget.one_at_a_time(lambda: time.perf_counter() - t0, "Q", lock_dir=tmp_path) > 1.0
    holder.wait()
    assert (
        "[Q] evaluation waits for another run's evaluation (pid 1 on h, since then)"
        in capsys.readouterr().out
    )
    t0 = time.perf_counter()
    assert budget.one_at_a_time(lambda: time.perf_counter() - t0, "Q", lock_dir=tmp_path) < 0.5
    assert "waits" not in capsys.readouterr().out
