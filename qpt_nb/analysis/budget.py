"""Training a pipeline on a budget of charged seconds, resumable across processes.

`train_on_budget` runs a `Trainer` until the budget is spent (`ChargedTime`, on an explicit
clock), evaluates the test-set monitor on a `Schedule` of charged times (evaluations not
charged) into ``run.curve``, and with ``fit_schedule`` refits the cosine to the budget
(`qpt_nb.learn.recipe.BudgetFit`). This is how the benchmark of arXiv 2402.04030's headline
(accuracy against the time it cost, labelling included) measures each pipeline.

A run with a run directory is resumable: at every evaluation and every ``save_every_s``
charged seconds the Trainer's checkpoint is written with the run's budget state in
``Trainer.extra`` (`budget_state`: charged and wall seconds so far, the curve, the fitting
state, the labelling record). A later process that finds it (`resumable`) continues from
the checkpoint's step with the charged clock where it stood, the same evaluation times and
the same fitted schedule; the steps after the checkpoint are lost and retrained, the data
order is the Trainer's own (`Trainer.resume` is exact). A complete run found again is not
trained further. Multi-hour benchmark runs can therefore span sessions::

    run = label_free_run(cfg, budget_s=4 * 3600, run_dir='runs/Q240', resume=True, ...)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from qpt_nb.analysis.timing import Schedule, cpu_model

__all__ = [
    "RESUME_KIND",
    "budget_state",
    "resumable",
    "restore_run",
    "train_on_budget",
    "check_same_run",
    "one_at_a_time",
    "evaluation_lock_dir",
]

RESUME_KIND = "budget-run"
SAVE_EVERY_S = 600.0  # charged seconds between checkpoints of a budget run (and at each evaluation)
_KEPT_TIMING = ("setup_s", "labels_end_s", "schedule_fit", "schedule_fits")
# TrainConfig fields a budget run may change as it goes (the fitted cosine, L's labelled set)
_MAY_DIFFER = ("decay_steps", "warmup_steps", "dataset_size", "checkpoint_every", "log_every")


def budget_state(run, meter, *, budget_s, schedule_start, fit=None, pending_eval=None) -> dict:
    """The budget run's state as plain JSON-able data (kept in ``Trainer.extra``).
    `pending_eval` (dict(t_s=charged seconds, ...)): an evaluation began at this state and had
    not ended; a run resumed from it makes that evaluation before it trains on.
    ``cpu_model``: the CPU that charged it (`check_same_run` resumes on that CPU only)."""
    return dict(
        cpu_model=cpu_model(),
        pending_eval=dict(pending_eval) if pending_eval else None,
        kind=RESUME_KIND,
        name=run.name,
        charged_s=meter.seconds,
        wall_s=meter.wall_seconds,
        budget_s=float(budget_s),
        schedule_start=float(schedule_start),
        curve=[dict(r) for r in run.curve],
        fit=fit.state() if fit is not None else None,
        timing={k: run.timing[k] for k in _KEPT_TIMING if k in run.timing},
        labels=dict(
            n_labels=run.n_labels,
            label_seconds=run.label_seconds,
            label_cycles=list(run.label_cycles),
            labels_converged=run.labels_converged,
            label_wall_seconds=run.label_wall_seconds,
        ),
    )


def resumable(run_dir) -> Optional[dict]:
    """The budget state kept with the checkpoint in `run_dir` (`budget_state`), or None when
    there is no checkpoint or it is not a budget run's. A corrupt checkpoint raises
    `CheckpointError` (never silently restarted)."""
    from qpt_nb.learn import checkpoint as ckpt
    from qpt_nb.learn.train import CHECKPOINT

    if run_dir is None:
        return None
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file() and not ckpt.previous_path(path).is_file():
        return None
    extra = ckpt.load_latest(path).get("extra") or {}
    return extra if extra.get("kind") == RESUME_KIND else None


def restore_run(run, state: dict) -> None:
    """Fills `run` (a `PaperRun`) in from a `budget_state`: curve, timing, labelling record."""
    run.curve = [dict(r) for r in state["curve"]]
    run.timing.update(state.get("timing", {}))
    lab = state.get("labels", {})
    run.n_labels = int(lab.get("n_labels", 0))
    run.label_seconds = float(lab.get("label_seconds", 0.0))
    run.label_cycles = list(lab.get("label_cycles", []))
    run.labels_converged = int(lab.get("labels_converged", 0))
    run.label_wall_seconds = lab.get("label_wall_seconds")


def check_same_run(saved_config, config, state: dict, budget_s: float) -> None:
    """ValueError when the run kept in a run directory is not the one asked for: another
    budget, a TrainConfig that differs in more than what a budget run changes itself, or
    another CPU than this machine's charged it (states saved before 2026-12-07 do not say
    and are not checked). A CPU-time budget charged on two CPUs
    mixes two clocks: on 2026-12-07 a label-free step cost 3.2x the CPU seconds on this
    project's AMD EPYC machine that it had on its Intel Xeon one (bench/costs.py)."""
    cpu = cpu_model()
    if state.get("cpu_model") and state["cpu_model"] != cpu:
        raise ValueError(
            f"The run directory's run was charged on a {state['cpu_model']!r} CPU, and this machine "
            f"has a {cpu!r}: its CPU-time budget would be charged on two clocks. Finish it on "
            "its machine, or give another run directory."
        )
    if abs(float(state["budget_s"]) - float(budget_s)) > 1e-6:
        raise ValueError(
            f"The run directory holds a run with a budget of {state['budget_s']:.0f} s, not "
            f"{budget_s:.0f} s: give another run directory, or the same budget to resume it."
        )
    a, b = saved_config.to_json(), config.to_json()
    diff = sorted(k for k in set(a) | set(b) if k not in _MAY_DIFFER and a.get(k) != b.get(k))
    if diff:
        k = diff[0]
        raise ValueError(
            f"Cannot resume: the run directory's run has {k}={a.get(k)!r}, not {b.get(k)!r} "
            f"(differs in {', '.join(diff)}); give another run directory."
        )


MEMORY_WAIT_S = 60.0  # seconds between tries of an evaluation refused for lack of memory
MEMORY_TRIES = 30
EVAL_LOCK_FILE = "qpt_nb-evaluation.lock"


def evaluation_lock_dir() -> Path:
    """Where budget runs on one machine take turns at evaluating: $QPT_NB_EVAL_LOCK_DIR, else
    the temporary directory."""
    return Path(os.environ.get("QPT_NB_EVAL_LOCK_DIR") or tempfile.gettempdir())


def one_at_a_time(evaluate, name, lock_dir=None):
    """`evaluate()` while holding the machine's evaluation lock (`RunLock` on
    `EVAL_LOCK_FILE`, waiting for another process's evaluation to end). Each run's memory
    check passes on its own, but two exact-integral def2-SVP evaluations started a minute
    apart both passed it and together outgrew the machine: the kernel killed one run
    (2026-12-06). In turn, each memory check sees the other's evaluation; a neighbour's
    training peak is not covered (two def2-SVP runs still outgrow a 24 GB machine)."""
    from qpt_nb.learn.runlock import RunLock

    def say(holder):
        print(f"   [{name}] evaluation waits for another run's evaluation ({holder})", flush=True)

    with RunLock(lock_dir or evaluation_lock_dir(), EVAL_LOCK_FILE).acquire(wait=True, on_wait=say):
        return evaluate()


def _with_memory_retries(evaluate, name, *, wait_s=None, tries=None, sleep=time.sleep):
    """`evaluate()`, tried again after `wait_s` seconds (up to `tries` times) while the memory
    check of `qpt_nb.dft.memory` refuses it: a neighbour's peak (another run's evaluation) must
    not end a multi-hour run. The waiting is inside the caller's paused meter (not charged);
    the last refusal is raised."""
    from qpt_nb.dft.memory import InsufficientMemoryError

    wait_s = MEMORY_WAIT_S if wait_s is None else wait_s
    tries = MEMORY_TRIES if tries is None else tries
    for k in range(tries):
        try:
            return evaluate()
        except InsufficientMemoryError as exc:
            if k == tries - 1:
                raise
            print(
                f"   [{name}] evaluation waits {wait_s:.0f} s for memory ({exc.args[0][:80]}...)", flush=True
            )
            sleep(wait_s)


def train_on_budget(
    run,
    tr,
    n_steps,
    callback,
    meter,
    monitor,
    *,
    budget_s,
    every_s=None,
    eval_at_s=None,
    on_eval=None,
    phase=None,
    fit_schedule=False,
    resumed: Optional[dict] = None,
    save_every_s: float = SAVE_EVERY_S,
    eval_start: bool = True,
    eval_turns: bool = False,
):
    """`Trainer.run` until `budget_s` charged seconds (or `n_steps`), the monitor evaluated
    (not charged) at the start, on the `Schedule` and at the end, into ``run.curve``; with
    `fit_schedule`, the cosine refitted to the charged budget once the step rate is steady
    (`recipe.BudgetFit`; the latest fit in ``run.timing['schedule_fit']``, all of them in
    ``run.timing['schedule_fits']``). With ``tr.run_dir``, checkpoints carry `budget_state`
    at every evaluation and every `save_every_s` charged seconds. `resumed`: the state of
    the checkpoint `tr` was resumed from (the meter and `run` already restored to it): the
    first evaluation is not repeated and the evaluation times and fits continue; an
    evaluation the checkpoint was saved for but did not see end is made first.
    ``eval_start=False`` skips the evaluation before the first step (the untrained network,
    the same for every pipeline of a seed; worth skipping where an evaluation is expensive).
    ``eval_turns=True`` evaluates only while holding the machine's evaluation lock
    (`one_at_a_time`): for evaluations large enough that two runs' side by side would not fit."""
    from qpt_nb.learn.recipe import BudgetFit

    fit = BudgetFit(budget_s) if fit_schedule else None
    if fit is not None and resumed and resumed.get("fit"):
        fit.load_state(resumed["fit"])
    start = float(resumed["schedule_start"]) if resumed else meter.seconds
    last_save = [meter.seconds]

    def snapshot(pending=None):
        if tr.run_dir is None:
            return
        with meter.paused():
            tr.extra = budget_state(
                run, meter, budget_s=budget_s, schedule_start=start, fit=fit, pending_eval=pending
            )
            tr.save()
        last_save[0] = meter.seconds

    def call_monitor():
        if eval_turns:
            return one_at_a_time(lambda: monitor(tr.params), run.name)
        return monitor(tr.params)

    def evaluate_now(charged, **extra):
        # saved first: an evaluation can take longer than the training since the last save
        # (a def2-SVP one with exact integrals: 16-25 minutes), and a run killed in it
        # resumes here and evaluates, instead of training those charged seconds again
        snapshot(pending=dict(t_s=charged, **extra))
        with meter.paused():
            t0 = time.perf_counter()
            m = _with_memory_retries(call_monitor, run.name)
            run.curve.append(
                dict(
                    t_s=charged,
                    step=tr.step,
                    eval_s=time.perf_counter() - t0,
                    wall_s=meter.wall_seconds,
                    **m,
                    **extra,
                )
            )
            if on_eval is not None:
                on_eval(run)
        snapshot()

    if monitor is not None and eval_start and not resumed:
        evaluate_now(meter.seconds, **({"phase": phase} if phase else {}))
    pending = dict((resumed or {}).get("pending_eval") or {})
    if pending and monitor is None:
        print(
            f"   [{run.name}] the evaluation at {pending['t_s']:.0f} charged s was cut short and "
            "there is no test set to make it again: that point stays missing from the curve",
            flush=True,
        )
    elif pending:  # killed during this evaluation: it comes first
        evaluate_now(float(pending.pop("t_s")), **pending)
    schedule = Schedule(start, budget_s, every_s, eval_at_s)
    schedule.skip_to(meter.seconds if resumed else start)

    def should_stop():
        charged = meter.seconds
        done = charged >= budget_s
        if fit is not None and not fit.done and not done:
            n = len(fit.fits)
            fit(tr, charged)
            if len(fit.fits) > n:
                run.timing["schedule_fit"] = fit.result
                run.timing["schedule_fits"] = list(fit.fits)
                print(
                    f"   [{run.name}] schedule fitted: {fit.result['rate']:.1f} steps per charged s "
                    f"-> decay_steps {fit.result['decay_steps']} (at step {tr.step})",
                    flush=True,
                )
        if monitor is not None and (schedule.due(charged) or done):
            evaluate_now(charged)
        elif charged - last_save[0] >= save_every_s:
            snapshot()
        return done

    if meter.seconds < budget_s and n_steps != 0:
        tr.run(n_steps, callback, should_stop=should_stop)
        if monitor is not None and (not run.curve or run.curve[-1]["step"] != tr.step):  # n_steps came first
            evaluate_now(meter.seconds)
        else:
            snapshot()  # the checkpoint Trainer.run writes last carries the final state
    elif monitor is not None and not run.curve:  # the budget ran out before the first step
        evaluate_now(meter.seconds)
