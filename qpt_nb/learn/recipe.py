"""How to train: the measured recipe, and a learning-rate schedule fitted to a time budget.

`RECIPE` holds the TrainConfig settings that new `qpt-nb train` runs and `make demo` start
from (measured in bench/demo_recipe.py). This module imports nothing heavy, so the CLI can
read it before JAX loads.

The cosine schedule of `qpt_nb.learn.train` is defined in steps (``warmup_steps``,
``decay_steps``). A run with a wall-clock budget and no step count would otherwise end with
the learning rate still high (schedule too long) or spend its last minutes at the floor
(too short). `fit_schedule` measures the steady step rate on this machine over a short
calibration, then refits the run's schedule in place (`Trainer.reschedule`) with
``decay_steps`` set to the steps that fit in what is left of the budget, so the learning
rate reaches its floor when the budget ends. The
calibration steps are part of the run (they are not thrown away), and once fitted the run
is deterministic: the fitted length is saved in the run's config.json and checkpoint.

  >>> tr = Trainer(TrainConfig(molecule='water'), 'runs/water')     # doctest: +SKIP
  >>> tr, steps = fit_schedule(tr, minutes=10)                        # doctest: +SKIP
  >>> tr.run(steps - tr.step, max_seconds=60 * 10 - spent)            # doctest: +SKIP

`BudgetFit` is the one fitting rule: called between steps of a running `Trainer.run`, on
any clock (wall seconds, or the CPU seconds a benchmark charges), with or without a run
directory, it waits until the data pipeline is steady (`Trainer.data_ready`: for
label-then-train, every labelled conformer built once), measures the rate over a window,
and refits the cosine in place (`Trainer.reschedule`). `fit_schedule` is `BudgetFit` with a
short calibration and a single fit, for a run that then trains on its own.

`warmup_steps_for` is the one warm-up rule: a tenth of the schedule, at most 1000 steps.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

CALIBRATION_STEPS = 60  # the steady rate is measured over the last three quarters
SAFETY = 0.97  # share of the predicted steps scheduled (checkpoints, logging, jitter)

# The measured label-free recipe (bench/demo_recipe.py, BENCHMARKS.md sections 6 and 6b): the
# training loss on grid level 0 in float32, as the research code trained (pyscf_ipu/direct/
# train.py, -level 0 -xc_f32), lr 1e-3 without weight decay; labels and evaluations stay on
# `grid_level` in float64. `qpt-nb train` and `make demo` start new runs from it.
RECIPE = dict(train_grid_level=0, precision="float32", lr=1e-3, weight_decay=0.0)

WARMUP_MAX = 1000  # the research code's -warmup_iters


def warmup_steps_for(total_steps: int, cap: int = WARMUP_MAX) -> int:
    """The warm-up of a cosine `total_steps` long: a tenth of it, at most `cap`, at least 1."""
    return max(min(int(cap), int(total_steps) // 10), 1)


def new_run_settings(over: dict, steps: Optional[int] = None) -> dict:
    """The `TrainConfig` fields a new run starts from (`qpt-nb train`, the demo): the user's
    `over`, then a cosine over `steps` (without them 10**6, for `fit_schedule` to refit to a
    time budget), the warm-up rule (`warmup_steps_for`) and the measured `RECIPE`, each only
    where `over` does not set it."""
    out = dict(over)
    out.setdefault("decay_steps", max(int(steps or 10**6), 1))
    out.setdefault("warmup_steps", warmup_steps_for(steps or 10**4))
    for k, v in RECIPE.items():
        out.setdefault(k, v)
    return out


def stretched_decay(saved_decay_steps: int, steps: Optional[int], over: dict) -> Optional[int]:
    """The cosine length a resumed run trains on when asked for `steps` in total: `steps`
    when they go past the saved cosine (which ended at the first run's length) and `over`
    sets no ``decay_steps``; None when the saved schedule stands."""
    if steps is not None and steps > saved_decay_steps and "decay_steps" not in over:
        return int(steps)
    return None


def fitted_steps(rate: float, seconds_left: float, step: int) -> int:
    """The schedule length that ends when the budget does: `step` already taken plus
    ``SAFETY * rate * seconds_left`` more (at least one).

    Args:
      rate: measured steady steps per second.
      seconds_left: seconds of the budget after the calibration (and the recompilation).
      step: steps already taken.
    """
    if not rate > 0:
        raise ValueError(f"the measured step rate must be > 0, got {rate}")
    return step + max(int(SAFETY * rate * max(seconds_left, 0.0)), 1)


def fit_schedule(
    trainer,
    minutes: float,
    *,
    calibration_steps: int = CALIBRATION_STEPS,
    start: Optional[float] = None,
    clock: Callable[[], float] = time.perf_counter,
):
    """Calibrates `trainer` and returns ``(trainer, steps)``: the same Trainer with its cosine
    schedule (``decay_steps``; ``warmup_steps`` capped at a tenth of it, `warmup_steps_for`)
    refitted to `minutes` in place (`Trainer.reschedule`; with a run directory the
    checkpoint is saved with it). A `BudgetFit` with one fit and no refits.

    Args:
      trainer: a fresh `Trainer`.
      minutes: the whole budget, calibration included, on `clock`.
      calibration_steps: steps taken to measure the rate (the first quarter, compilation
        and the prefetch queue filling up, is not counted).
      start: the `clock()` reading at which the budget began (default: now).
      clock: seconds (default wall clock, ``time.perf_counter``; ``time.process_time`` for
        CPU seconds).

    Returns:
      (the Trainer, the schedule's total length in steps). Train it for
      ``steps - trainer.step`` more steps within what is left of the budget.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    t0 = clock() if start is None else start
    fit = BudgetFit(
        60.0 * minutes,
        min_steps=calibration_steps - calibration_steps // 4,
        min_seconds=0.0,
        refit_at=(),
        start_step=calibration_steps // 4,
        cap_warmup=True,
    )

    def calibrated():
        fit(trainer, clock() - t0)
        return fit.done

    trainer.run(None, should_stop=calibrated)
    r = fit.result
    if trainer.run_dir is not None:
        trainer.save()  # the fitted schedule is in the checkpoint from now on
    print(
        f"calibration: {r['rate']:.2f} steps/s -> schedule of {r['decay_steps']} steps "
        f"(warm-up {trainer.config.warmup_steps})",
        flush=True,
    )
    return trainer, r["decay_steps"]


class BudgetFit:
    """Fits a running Trainer's cosine to a budget of charged seconds; call it between steps.

    ``fit(trainer, charged_s)`` does nothing until ``trainer.data_ready``; then it opens a
    window of at least `min_steps` steps and `min_seconds` charged seconds, measures the
    steady rate over it and calls ``trainer.reschedule(decay_steps=fitted_steps(...))`` so that
    the learning rate reaches its floor when `budget_s` runs out (the recompilation the new
    schedule needs is subtracted, at the cost the first compilation had).

    The rate of a short window need not hold: a neighbour's evaluations or a change in cache
    contention move it by tens of percent. So the fit is repeated at the fractions `refit_at`
    of the time between the first fit and the end of the budget, each time with the mean
    rate since the window opened; the learning rate jumps a little at each refit, less each
    time. ``fit.fits`` lists every fit (rate in steps per charged second, step, charged
    second, ``decay_steps``); ``fit.result`` is the latest.

    Args:
      budget_s: the whole budget on the caller's clock, in seconds.
      min_steps, min_seconds: the calibration window.
      refit_at: fractions in (0, 1) of the time after the first fit at which to refit.
      start_step: the window opens at this step at the earliest (steps before it, with the
        prefetch queue filled during compilation, run faster than the steady rate).
      cap_warmup: at the first fit, also cap the warm-up at a tenth of the fitted length
        (`warmup_steps_for`; for a run fitted from its start, `fit_schedule`).
    """

    def __init__(
        self,
        budget_s: float,
        *,
        min_steps: int = 200,
        min_seconds: float = 20.0,
        refit_at: tuple = (0.3, 0.6, 0.85),
        start_step: int = 0,
        cap_warmup: bool = False,
    ):
        if not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s}")
        if not all(0.0 < f < 1.0 for f in refit_at):
            raise ValueError(f"refit_at fractions must lie in (0, 1), got {refit_at}")
        self.budget_s, self.min_steps, self.min_seconds = float(budget_s), int(min_steps), float(min_seconds)
        self.refit_at = tuple(sorted(refit_at))
        self.start_step, self.cap_warmup = int(start_step), bool(cap_warmup)
        self._start: Optional[tuple] = None
        self._due: list = []  # charged seconds of the refits still to do
        self.fits: list = []

    @property
    def result(self) -> Optional[dict]:
        return self.fits[-1] if self.fits else None

    def state(self) -> dict:
        """Where the fitting stands, as plain JSON-able data (kept with a checkpoint)."""
        return dict(
            start=list(self._start) if self._start else None, due=list(self._due), fits=list(self.fits)
        )

    def load_state(self, state: dict) -> "BudgetFit":
        """Continues from `state` (from `state()`): a resumed run refits when the first run would."""
        start = state.get("start")
        self._start = tuple(start) if start else None
        self._due, self.fits = list(state.get("due", [])), [dict(f) for f in state.get("fits", [])]
        return self

    @property
    def done(self) -> bool:
        """True once the first fit is made and no refit is left."""
        return bool(self.fits) and not self._due

    def __call__(self, trainer, charged_s: float) -> None:
        if self.done or not trainer.data_ready or trainer.step < self.start_step:
            return
        if self._start is None:
            self._start = (trainer.step, charged_s)
            return
        steps, seconds = trainer.step - self._start[0], charged_s - self._start[1]
        if not self.fits:
            if steps < self.min_steps or seconds < self.min_seconds:
                return
            self._due = [charged_s + f * (self.budget_s - charged_s) for f in self.refit_at]
        elif charged_s >= self._due[0]:
            self._due.pop(0)
        else:
            return
        rate = steps / max(seconds, 1e-9)
        left = self.budget_s - charged_s - trainer.timing["compile_s"]  # the refit recompiles
        decay = fitted_steps(rate, left, trainer.step)
        if self.cap_warmup and not self.fits:
            warm = warmup_steps_for(decay, cap=trainer.config.warmup_steps)
            decay = max(decay, warm + 1, trainer.step + 1)
            trainer.reschedule(decay_steps=decay, warmup_steps=warm)
        else:
            decay = max(decay, trainer.config.warmup_steps + 1, trainer.step + 1)
            trainer.reschedule(decay_steps=decay)
        self.fits.append(dict(rate=rate, step=trainer.step, charged_s=charged_s, decay_steps=decay))
