"""Charged time for comparing training pipelines, evaluation schedules, curve crossings.

A pipeline is charged for what it costs (labelling included, evaluations excluded) on
an explicit clock (`CLOCKS`: wall-clock, or this process's CPU time, so pipelines
that share a machine do not charge each other). `crossing` finds when one learning
curve reaches another's best; the paper's headline (arXiv 2402.04030) is such a
ratio: 786 h of labelling and training against 31 h label-free.
"""

from __future__ import annotations

import contextlib
import platform
import time
from typing import Callable

CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo's first, else `platform.processor()`): which CPU
    the ``cpu`` clock counts on. Its seconds buy different work on different CPUs (a
    label-free step: 3.2x the CPU seconds on an AMD EPYC as on an Intel Xeon, 2026-12-07)."""
    try:
        with open("/proc/cpuinfo") as fh:
            models = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        return models[0] if models else platform.processor()
    except OSError:
        return platform.processor()


class ChargedTime:
    """Seconds charged to one pipeline: ``clock`` time since creation (`CLOCKS`:
    time.perf_counter is wall-clock, time.process_time this process's CPU time, all
    threads, prefetch and PySCF included), less the time inside `paused()` (e.g.
    evaluations), plus what `charge` adds."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self._start, self._offset = clock(), 0.0
        self._wall_start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.clock() - self._start + self._offset

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds since creation (or as `restore` set them), paused time included."""
        return time.perf_counter() - self._wall_start

    def restore(self, seconds: float, wall_seconds: float = 0.0) -> None:
        """Continues an interrupted pipeline's meter: `seconds` charged and `wall_seconds`
        elapsed so far (what it read when its checkpoint was written)."""
        self._offset += float(seconds) - self.seconds
        self._wall_start = time.perf_counter() - float(wall_seconds)

    def charge(self, seconds: float) -> None:
        self._offset += float(seconds)

    @contextlib.contextmanager
    def paused(self):
        t0 = self.clock()
        try:
            yield
        finally:
            self._offset -= self.clock() - t0


class Schedule:
    """Charged times (s) at which a pipeline is evaluated.

    every_s: an evaluation every `every_s` after `start`; eval_at_s: evaluations at
    these offsets after `start` instead (e.g. denser early on). The last evaluation,
    at the budget, is the pipeline's own."""

    def __init__(self, start, budget_s, every_s=None, eval_at_s=None):
        if eval_at_s:
            self.times = sorted(start + a for a in eval_at_s if start + a < budget_s)
        elif every_s:
            n = int(max(budget_s - start, 0) // every_s)
            self.times = [start + every_s * (k + 1) for k in range(n)]
        else:
            self.times = []

    def skip_to(self, charged) -> None:
        """Drops the evaluation times at or before `charged` (a resumed run has made them)."""
        self.times = [t for t in self.times if t > charged]

    def due(self, charged) -> bool:
        """True (once) when `charged` has passed the next evaluation time."""
        if self.times and charged >= self.times[0]:
            while self.times and charged >= self.times[0]:
                self.times.pop(0)
            return True
        return False


def crossing(ref_curve, other_curve, key):
    """(best of ref, time ref first reached it, time other first reached it or None, ratio).

    Curves are lists of records with 't_s' (charged seconds), 'step' and `key`. Only
    evaluations after at least one optimiser step count (at step 0 every pipeline
    has the same untrained network, so the same metrics)."""
    ref_curve = [r for r in ref_curve if r["step"] > 0]
    other_curve = [r for r in other_curve if r["step"] > 0] or other_curve
    if not ref_curve:
        return dict(
            best=None,
            t_ref_s=None,
            t_other_s=None,
            ratio=None,
            other_best=min(r[key] for r in other_curve),
            note="L did not reach a training step within its budget (labelling used it)",
        )
    best = min(r[key] for r in ref_curve)
    t_ref = min(r["t_s"] for r in ref_curve if r[key] <= best)
    hits = [r["t_s"] for r in other_curve if r[key] <= best]
    t_other = min(hits) if hits else None
    return dict(
        best=best,
        t_ref_s=t_ref,
        t_other_s=t_other,
        ratio=(t_ref / t_other) if t_other else None,
        other_best=min(r[key] for r in other_curve),
    )


# The pipelines a benchmark compares, by key: (the training loss, the name a reader sees).
# The one table of pipeline names: `display_name` (by key) and `loss_display_name` (by loss).
PIPELINES = {
    "Q": ("energy", "DFT-energy loss (Q)"),
    "SC": ("self_consistency", "self-consistency loss (SC)"),
    "RT": ("refined_target", "refined self-consistency target (RT)"),
    "L": ("supervised", "label-then-train (L)"),
}


def display_name(key: str) -> str:
    """A run's name as a reader sees it: 'Q' -> 'DFT-energy loss (Q)', 'Q-s1' -> 'DFT-energy
    loss (Q) s1' (the benchmark names runs by pipeline, then '-' and tags)."""
    base = pipeline_of(key)
    tag = str(key)[len(base) + 1 :] if str(key) != base else ""
    name = PIPELINES[base][1] if base in PIPELINES else base
    return name + (f" {tag}" if tag else "")


def loss_display_name(loss: str, default: str = "") -> str:
    """The name of the pipeline that trains with `loss` ('supervised' -> 'label-then-train
    (L)'), or `default` for a loss no pipeline uses."""
    for _, (lo, name) in PIPELINES.items():
        if lo == loss:
            return name
    return default or loss


def pipeline_of(name: str) -> str:
    """The pipeline a run's name belongs to: 'Q-s1' -> 'Q', 'L-qpt-s0' -> 'L' (a run's tags,
    such as its seed or label engine, follow the first '-')."""
    return str(name).split("-", 1)[0]


def best_run(curves: dict, pipeline: str, key: str):
    """The name of the `pipeline` run whose curve reaches the lowest `key` after a
    training step (None when there is none)."""
    best = {
        n: min(r[key] for r in c if r["step"] > 0)
        for n, c in curves.items()
        if pipeline_of(n) == pipeline and any(r["step"] > 0 for r in c)
    }
    return min(best, key=best.get) if best else None


def crossing_summary(
    curves: dict, ref: str = "L", others=("Q", "SC"), keys=("energy_mae_mev", "hamiltonian_mae_uha")
) -> dict:
    """``{'{other}_vs_{ref}_{key}': crossing(...)}`` for every run of pipeline `ref` (named
    'L', or 'L-<tag>' for several seeds or label engines), every run of the `others`
    pipelines and every key; when the other run never reaches ref's best, also the
    converse ``'{ref}_vs_{other}_{key}'`` (how soon ref reaches the other's best)."""
    summary = {}
    refs = [n for n in curves if pipeline_of(n) == ref]
    rest = [n for n in curves if pipeline_of(n) in others]
    for key in keys:
        for r in refs:
            for o in rest:
                c = crossing(curves[r], curves[o], key)
                summary[f"{o}_vs_{r}_{key}"] = c
                if not c.get("note") and not c["ratio"]:
                    summary[f"{r}_vs_{o}_{key}"] = crossing(curves[o], curves[r], key)
    return summary
