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

`BudgetFit` does the same inside one running `Trainer.run`, on any clock (the CPU seconds
a benchmark charges), without a run directory: it waits until the data pipeline is steady
(`Trainer.data_ready`: for label-then-train, every labelled conformer built once), measures
the rate over a window, and refits the cosine in place (`Trainer.reschedule`).
"""

from __future__ import annotations

import time
from typing import Optional

CALIBRATION_STEPS = 60  # the steady rate is measured over the last three quarters
SAFETY = 0.97  # share of the predicted steps scheduled (checkpoints, logging, jitter)

# The measured label-free recipe (bench/demo_recipe.py, BENCHMARKS.md sections 6 and 6b): the
# training loss on grid level 0 in float32, as the research code trained (pyscf_ipu/direct/
# train.py, -level 0 -xc_f32), lr 1e-3 without weight decay; labels and evaluations stay on
# `grid_level` in float64. `qpt-nb train` and `make demo` start new runs from it.
RECIPE = dict(train_grid_level=0, precision="float32", lr=1e-3, weight_decay=0.0)


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
    trainer, minutes: float, *, calibration_steps: int = CALIBRATION_STEPS, start: Optional[float] = None
):
    """Calibrates `trainer` and returns ``(trainer, steps)``: the same Trainer with its cosine
    schedule (``decay_steps``; ``warmup_steps`` capped at a tenth of it, as `qpt-nb train`
    sets it) refitted to `minutes` in place (`Trainer.reschedule`; with a run directory the
    checkpoint is saved with it).

    Args:
      trainer: a fresh `Trainer`.
      minutes: the whole budget, calibration included (wall clock).
      calibration_steps: steps taken to measure the rate (the first quarter, compilation
        and the prefetch queue filling up, is not counted).
      start: `time.perf_counter()` at which the budget began (default: now).

    Returns:
      (the Trainer, the schedule's total length in steps). Train it for
      ``steps - trainer.step`` more steps within what is left of the budget.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    t0 = time.perf_counter() if start is None else start
    trainer.run(max(calibration_steps // 4 - trainer.step, 1))
    before = trainer.step, trainer.timing["step_s"]
    trainer.run(max(calibration_steps - trainer.step, 1))
    rate = (trainer.step - before[0]) / max(trainer.timing["step_s"] - before[1], 1e-9)
    left = 60.0 * minutes - (time.perf_counter() - t0) - trainer.timing["compile_s"]  # the refit recompiles
    steps = fitted_steps(rate, left, trainer.step)
    warm = min(trainer.config.warmup_steps, max(steps // 10, 1))
    trainer.reschedule(decay_steps=max(steps, warm + 1), warmup_steps=warm)
    if trainer.run_dir is not None:
        trainer.save()  # the fitted schedule is in the checkpoint from now on
    print(f"calibration: {rate:.2f} steps/s -> schedule of {steps} steps (warm-up {warm})", flush=True)
    return trainer, steps


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
    """

    def __init__(
        self,
        budget_s: float,
        *,
        min_steps: int = 200,
        min_seconds: float = 20.0,
        refit_at: tuple = (0.3, 0.6, 0.85),
    ):
        if not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s}")
        if not all(0.0 < f < 1.0 for f in refit_at):
            raise ValueError(f"refit_at fractions must lie in (0, 1), got {refit_at}")
        self.budget_s, self.min_steps, self.min_seconds = float(budget_s), int(min_steps), float(min_seconds)
        self.refit_at = tuple(sorted(refit_at))
        self._start: Optional[tuple] = None
        self._due: list = []  # charged seconds of the refits still to do
        self.fits: list = []

    @property
    def result(self) -> Optional[dict]:
        return self.fits[-1] if self.fits else None

    @property
    def done(self) -> bool:
        """True once the first fit is made and no refit is left."""
        return bool(self.fits) and not self._due

    def __call__(self, trainer, charged_s: float) -> None:
        if self.done or not trainer.data_ready:
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
        rate = steps / seconds
        left = self.budget_s - charged_s - trainer.timing["compile_s"]
        decay = max(fitted_steps(rate, left, trainer.step), trainer.config.warmup_steps + 1, trainer.step + 1)
        trainer.reschedule(decay_steps=decay)
        self.fits.append(dict(rate=rate, step=trainer.step, charged_s=charged_s, decay_steps=decay))
