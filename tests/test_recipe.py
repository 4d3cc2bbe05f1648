"""The measured recipe and the schedule fitted to a time budget (qpt_nb.learn.recipe)."""

import itertools
import json

import pytest
from conftest import water_config

import qpt_nb  # noqa: F401
from qpt_nb.learn.recipe import RECIPE, fit_schedule, fitted_steps, warmup_steps_for
from qpt_nb.learn.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("isolated_caches")


def test_warmup_rule():
    assert [warmup_steps_for(n) for n in (0, 5, 100, 25_000)] == [1, 1, 10, 1000]
    assert warmup_steps_for(25_000, cap=200) == 200


def test_fitted_steps_arithmetic():
    assert fitted_steps(2.0, 100.0, 10) == 10 + int(0.97 * 200)
    assert fitted_steps(2.0, -5.0, 10) == 11  # the budget is spent: one more step
    with pytest.raises(ValueError, match="step rate must be > 0"):
        fitted_steps(0.0, 10.0, 0)


def test_recipe_fields_are_train_config_fields():
    cfg = TrainConfig(molecule="water", **RECIPE)
    assert cfg.loss_grid_level == 0 and cfg.precision == "float32" and cfg.weight_decay == 0.0


def test_fit_schedule_stretches_the_cosine_to_the_budget(tmp_path, capsys):
    cfg = water_config(reuse=4, warmup_steps=50, decay_steps=10**6, checkpoint_every=1000, **RECIPE)
    ticks = itertools.count()
    clock = lambda: 0.1 * next(ticks)  # noqa: E731 - 0.1 s per call: 10 steps/s, no real time
    fresh = Trainer(cfg, tmp_path / "run")
    tr, steps = fit_schedule(fresh, minutes=1.0, calibration_steps=12, clock=clock)
    try:
        assert tr is fresh and tr.step == 12  # refitted in place, the calibration steps kept
        # the window opens at step 3 (0.3 s) and closes at step 12 (1.2 s): 9 steps in 0.9 s;
        # what is left of the minute, less the compilation the refit repeats
        want = fitted_steps(10.0, 60.0 - 1.2 - tr.timing["compile_s"], 12)
        assert steps == want and tr.config.decay_steps == steps
        assert tr.config.warmup_steps == warmup_steps_for(steps, cap=50)
        assert "calibration: 10.00 steps/s" in capsys.readouterr().out
        assert TrainConfig.from_json(tr.config.to_json()).decay_steps == steps
    finally:
        tr.close()
    saved = TrainConfig.from_json(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert saved.decay_steps == steps  # config.json follows the refit


def test_cli_train_minutes_fits_the_schedule(tmp_path, capsys):
    from qpt_nb.analysis.runs import load_run
    from qpt_nb.cli.main import main

    tiny = ["--molecule", "water", "--basis", "sto-3g", "--grid-level", "0", "--sampler", "wiggle"]
    tiny += ["--no-progress", "--n-test", "0", "--checkpoint-every", "1000"]
    out = tmp_path / "run"
    assert main(["train", *tiny, "--minutes", "0.4", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "calibration:" in captured.out
    cfg, _, step = load_run(out)
    assert 60 < cfg.decay_steps < 10**5 and step <= cfg.decay_steps
    assert (cfg.train_grid_level, cfg.precision, cfg.lr, cfg.weight_decay) == (0, "float32", 1e-3, 0.0)
    assert main(["train", *tiny, "--out", str(tmp_path / "other")]) == 2
    assert "needs --steps, or --minutes" in capsys.readouterr().err
    assert main(["train", *tiny, "--minutes", "-1", "--out", str(tmp_path / "other")]) == 2
    assert "--minutes must be > 0" in capsys.readouterr().err


class _FakeTrainer:
    """What BudgetFit reads of a Trainer: data_ready, step, timing, config, reschedule."""

    def __init__(self):
        self.data_ready, self.step, self.timing = False, 0, dict(compile_s=2.0)
        self.config = TrainConfig(molecule="water", warmup_steps=10)
        self.calls = []

    def reschedule(self, *, decay_steps):
        self.calls.append(decay_steps)


def test_budget_fit_waits_for_steady_data_then_refits_with_the_mean_rate():
    from qpt_nb.learn.recipe import BudgetFit

    fit, tr = BudgetFit(1000.0, min_steps=100, min_seconds=10.0, refit_at=(0.5,)), _FakeTrainer()
    tr.step = 50
    fit(tr, 300.0)  # labelling and the first epoch: not steady yet, nothing measured
    tr.data_ready = True
    fit(tr, 400.0)  # the window opens at step 50, 400 s
    tr.step = 120
    fit(tr, 500.0)  # 70 steps: too few
    assert fit.result is None and tr.calls == []
    tr.step = 450
    fit(tr, 500.0)  # 400 steps in 100 charged s: 4 steps/s, 500 s left less 2 s compile
    assert tr.calls == [450 + int(0.97 * 4.0 * 498.0)] and not fit.done
    assert fit.result["rate"] == pytest.approx(4.0) and fit.result["step"] == 450
    tr.step = 1050
    fit(tr, 700.0)  # the refit is due at 500 + 0.5 * 500 = 750 s
    assert len(tr.calls) == 1
    tr.step = 1150
    fit(tr, 750.0)  # the mean rate since the window opened: 1100 steps / 350 s
    rate = 1100 / 350.0
    assert tr.calls[-1] == 1150 + int(0.97 * rate * 248.0) and fit.done
    assert [f["step"] for f in fit.fits] == [450, 1150] and fit.result["rate"] == pytest.approx(rate)
    tr.step = 1500
    fit(tr, 900.0)
    assert len(tr.calls) == 2  # no refit left
    with pytest.raises(ValueError, match="budget_s"):
        BudgetFit(0.0)
    with pytest.raises(ValueError, match="refit_at"):
        BudgetFit(10.0, refit_at=(1.5,))


def test_reschedule_keeps_the_state_and_follows_the_new_cosine():
    from qpt_nb.learn.train import make_schedule

    cfg = water_config(warmup_steps=2, decay_steps=10**6, log_every=1, **RECIPE)
    tr = Trainer(cfg)
    try:
        tr.run(3)
        params = tr.params
        new = tr.reschedule(decay_steps=8)
        assert (new.decay_steps, new.warmup_steps) == (8, 2) and tr.config is new
        assert tr.step == 3 and tr.params is params  # nothing reset
        tr.run(2)
        lrs = [r["lr"] for r in tr.history]
        want = [float(make_schedule(cfg)(s)) for s in range(3)] + [
            float(make_schedule(new)(s)) for s in (3, 4)
        ]
        assert lrs == pytest.approx(want, rel=1e-6)
        with pytest.raises(ValueError, match="must exceed warmup_steps"):
            tr.reschedule(decay_steps=2)
    finally:
        tr.close()
