"""When does label-free training pay off? The time ratio against budget and basis, and its
extrapolation to the paper's budget.

arXiv 2402.04030 reports one ratio: label-free QPT reached its accuracy in 31 h where
label-then-train (SchNOrb) spent 626 h labelling and 160 h training, 25x. The benchmark
(bench/labels_vs_dft_loss.py) measures the same ratio on one CPU at several budgets B
(charged CPU seconds per pipeline, labelling included) and two bases; bench/budget_scaling.py
collects the runs into one summary (bench/results/budget_scaling.json) that notebook 03 reads.

Definitions, per metric (energy MAE, Hamiltonian MAE of F[D3]):

* At a budget, L* is the label-then-train run (any seed, any labelling share) with the lowest
  best error; its best is the line to reach.
* The ratio of a label-free run Q: t_L*(best) / t_Q(first reaches it), read at the runs'
  evaluations (`qpt_nb.analysis.timing.crossing`). Above 1, label-free gets there sooner.
  When Q never reaches it within its budget, the ratio is the converse,
  t_L*(first reaches Q's best) / t_Q(best), below 1: L would have been faster.
* The extrapolation fits each pipeline's error at the end of each budget to a power law
  e(B) = a (B / 1 h)^-alpha (`fit_power_law`, least squares in log-log, all seeds pooled, so the
  seed spread enters the uncertainty) and asks when Q's law reaches L's error at budget B:
  ratio(B) = B / t_Q(e_L(B)) (`extrapolated_ratio`; its band from the fits' covariances). With
  one budget measured in a basis (def2-SVP), the exponents are carried over from the other
  basis and the amplitude goes through the measured point (`through_point`). It is a model,
  not a measurement: the notebook and BENCHMARKS mark it so.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np

from qpt_nb.analysis.timing import crossing

__all__ = [
    "METRICS",
    "best_error",
    "ratio_at_budget",
    "first_reach",
    "envelope_ratios",
    "PowerLaw",
    "fit_power_law",
    "through_point",
    "extrapolated_ratio",
    "load_summary",
    "summary_lines",
]

METRICS = ("energy_mae_mev", "hamiltonian_mae_uha")
HOUR = 3600.0


def _trained(curve) -> list:
    """The evaluations after at least one optimiser step (all of them when there is none)."""
    return [r for r in curve if r.get("step", 0) > 0] or list(curve)


def best_error(curve, key: str) -> float:
    """The lowest `key` a run's curve reached after a training step."""
    return min(float(r[key]) for r in _trained(curve))


def ratio_at_budget(l_curves: dict, q_curves: dict, key: str) -> dict:
    """The ratio of every label-free run against the best label-then-train run at one budget.

    Args:
      l_curves, q_curves: {run name: curve}; a curve is a list of evaluations
        (``t_s`` charged seconds, ``step``, `key`).
      key: the metric, one of `METRICS`.

    Returns dict(best_l, best_l_error, t_best_l_s, ratios={q: ratio}, reached={q: bool},
    q_best={q: its best error}, lo, hi): ``reached`` False marks a converse ratio (Q never
    reached L*'s best; the ratio is how much sooner L* reached Q's best, below 1); lo/hi span
    the Q runs (the seed spread)."""
    if not l_curves or not q_curves:
        raise ValueError("ratio_at_budget needs at least one label-then-train and one label-free curve")
    best_l = min(l_curves, key=lambda n: best_error(l_curves[n], key))
    ref = l_curves[best_l]
    best = best_error(ref, key)
    out = dict(best_l=best_l, best_l_error=best, t_best_l_s=first_reach([ref], key, best))
    out.update(ratios={}, reached={}, q_best={})
    for name, curve in q_curves.items():
        c = crossing(ref, curve, key)
        out["q_best"][name] = best_error(curve, key)
        if c["ratio"]:
            out["ratios"][name], out["reached"][name] = c["ratio"], True
            continue
        back = crossing(curve, ref, key)  # when L* reached Q's best, against when Q did
        out["ratios"][name] = (1.0 / back["ratio"]) if back["ratio"] else None
        out["reached"][name] = False
    known = [r for r in out["ratios"].values() if r is not None]
    out["lo"], out["hi"] = (min(known), max(known)) if known else (None, None)
    return out


def first_reach(curves, key: str, error: float) -> Optional[float]:
    """The earliest charged time (s) at which any of `curves` reached `error` or below after a
    training step, or None."""
    hits = [float(r["t_s"]) for c in curves for r in c if r.get("step", 0) > 0 and float(r[key]) <= error]
    return min(hits) if hits else None


def envelope_ratios(l_curves, q_curves_by_seed: dict, key: str, error: float) -> dict:
    """The ratio to reach `error` when each pipeline may use any of its runs (any budget, so any
    fitted schedule): t_L / t_Q with t the earliest time any run of the pipeline reached it
    (`first_reach`), per label-free seed. A run fitted to a short budget learns faster early
    than one fitted to a long budget, so this is what a user who fits the schedule to the
    target would see; the in-run ratio of `ratio_at_budget` is a lower bound of it.

    Returns {seed: ratio or None (the seed's runs never reached it)}; ValueError when no
    label-then-train run reached it."""
    t_l = first_reach(l_curves, key, error)
    if t_l is None:
        raise ValueError(f"no label-then-train run reached {key} <= {error}")
    out = {}
    for seed, curves in q_curves_by_seed.items():
        t_q = first_reach(curves, key, error)
        out[seed] = (t_l / t_q) if t_q else None
    return out


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """y(x) = exp(log_a) * (x / x0) ** -alpha; for the budget laws x is charged seconds,
    x0 one hour and y an error.

    cov: the 2x2 covariance of (log_a, alpha) from the fit (None when too few points gave
    no estimate of it); n: points fitted."""

    log_a: float
    alpha: float
    cov: Optional[tuple] = None
    n: int = 0
    x0: float = HOUR

    def __call__(self, x):
        return np.exp(self.log_a) * (np.asarray(x, dtype=float) / self.x0) ** (-self.alpha)

    def time_to(self, error) -> float:
        """The x (charged seconds) at which the law reaches `error` (inf if it does not fall)."""
        if self.alpha <= 0:
            return math.inf
        return self.x0 * float(np.exp((self.log_a - np.log(error)) / self.alpha))

    def to_json(self) -> dict:
        return dict(a=float(np.exp(self.log_a)), alpha=self.alpha, cov=self.cov, n=self.n, x0=self.x0)


def fit_power_law(t_s, errors, *, x0: float = HOUR) -> PowerLaw:
    """Least squares of log(error) against log(t / x0): the slope is -alpha.

    Args:
      t_s: budgets in charged seconds, one per point (seeds at the same budget repeat it).
      errors: the errors reached at those budgets (same length, > 0).
      x0: the unit of t in the law (one hour; any positive x for other laws, e.g. x0=1 for a
        step time against the number of AOs in bench/train_throughput.py).

    With four points or more at two budgets or more the covariance of (log_a, alpha) is
    estimated from the residuals; with fewer it is None. ValueError for fewer than two
    distinct budgets or a non-positive error."""
    t = np.asarray(t_s, dtype=float)
    e = np.asarray(errors, dtype=float)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError(f"fit_power_law needs two 1-d arrays of one length, got {t.shape} and {e.shape}")
    if len(set(t.tolist())) < 2:
        raise ValueError("fit_power_law needs errors at two budgets or more")
    if not (np.all(e > 0) and np.all(t > 0)):
        raise ValueError("fit_power_law needs positive budgets and errors")
    x, y = np.log(t / x0), np.log(e)
    if len(x) >= 4:
        (slope, icpt), cov = np.polyfit(x, y, 1, cov=True)
        # polyfit orders (slope, intercept); ours is (log_a, alpha) = (intercept, -slope)
        c = ((cov[1, 1], -cov[0, 1]), (-cov[0, 1], cov[0, 0]))
    else:
        slope, icpt = np.polyfit(x, y, 1)
        c = None
    return PowerLaw(log_a=float(icpt), alpha=float(-slope), cov=c, n=len(x), x0=float(x0))


def through_point(law: PowerLaw, t_s: float, errors) -> PowerLaw:
    """`law`'s exponent (and its variance) with the amplitude through the geometric mean of
    `errors` measured at `t_s` (one budget, several seeds): the amplitude's variance is the
    seeds' scatter in log space plus what the exponent's uncertainty adds."""
    e = np.asarray(errors, dtype=float).ravel()
    x = math.log(float(t_s) / law.x0)
    log_a = float(np.mean(np.log(e))) + law.alpha * x
    var_alpha = law.cov[1][1] if law.cov else 0.0
    var_point = float(np.var(np.log(e), ddof=1)) / len(e) if len(e) > 1 else 0.0
    cov = ((var_point + x * x * var_alpha, x * var_alpha), (x * var_alpha, var_alpha))
    return PowerLaw(log_a=log_a, alpha=law.alpha, cov=cov, n=len(e), x0=law.x0)


def _ratio(l_law: PowerLaw, q_law: PowerLaw, t_s: float) -> float:
    return float(t_s) / q_law.time_to(float(l_law(t_s)))


def extrapolated_ratio(l_law: PowerLaw, q_law: PowerLaw, t_s, *, samples: int = 4000, seed: int = 0) -> dict:
    """ratio(B) = B / t_Q(e_L(B)) from the two fitted laws, at budget `t_s` (charged seconds),
    with the 16th-84th percentile band of the laws drawn from their covariances (normal in
    (log_a, alpha); a law without one is held fixed). Returns dict(ratio, lo, hi, t_s)."""
    central = _ratio(l_law, q_law, t_s)
    rng = np.random.default_rng(seed)

    def draws(law):
        mean = np.array([law.log_a, law.alpha])
        if not law.cov:
            return np.tile(mean, (samples, 1))
        return rng.multivariate_normal(mean, np.array(law.cov), size=samples)

    dl, dq = draws(l_law), draws(q_law)
    vals = []
    for (la, aa), (lq, aq) in zip(dl, dq):
        r = _ratio(
            dataclasses.replace(l_law, log_a=la, alpha=aa),
            dataclasses.replace(q_law, log_a=lq, alpha=aq),
            t_s,
        )
        if math.isfinite(r) and r > 0:
            vals.append(r)
    lo, hi = np.percentile(vals, [16, 84]).tolist() if vals else (None, None)
    return dict(ratio=central, lo=lo, hi=hi, t_s=float(t_s))


SUMMARY = "budget_scaling"


def load_summary(path=None) -> dict:
    """bench/budget_scaling.py's summary (default bench/results/budget_scaling.json of this
    checkout); FileNotFoundError / ValueError naming the path when it is missing or not one."""
    from qpt_nb.analysis.experiments import project_root
    from qpt_nb.fileio import read_json

    path = Path(path) if path is not None else project_root() / "bench" / "results" / f"{SUMMARY}.json"
    data = read_json(path, missing=f"no budget-scaling summary {path}: run python bench/budget_scaling.py")
    if data.get("benchmark") != SUMMARY or "budgets" not in data:
        raise ValueError(f"{path} is not a {SUMMARY} summary")
    return data


def _entry_lines(e: dict, head: str) -> list:
    """`summary_lines` of one budget entry of `bench/budget_scaling.py`."""
    if "energy_mae_mev" not in e:
        return [f"{head}: not measured yet (pending {', '.join(e['pending'])})"]
    out = []
    for metric, what, unit in (("energy_mae_mev", "energy", "meV"), ("hamiltonian_mae_uha", "H", "uHa")):
        r = e[metric]
        each = ", ".join(
            f"{q} {x:.2f}" + ("" if r["reached"][q] else " (converse)") if x else f"{q} n/a"
            for q, x in sorted(r["ratios"].items())
        )
        env = ", ".join(
            f"{k} {v:.2f}" if v else f"{k} never" for k, v in sorted((r.get("envelope") or {}).items())
        )
        out.append(
            f"{head}, {what}: best L {r['best_l']} {r['best_l_error']:.3g} {unit}; ratio {each}"
            + (f"; with any budget's runs {env}" if env else "")
        )
    if e["pending"]:
        out.append(f"  (pending: {', '.join(e['pending'])})")
    return out


def summary_lines(summary: dict) -> list:
    """The summary in sentences: per basis and budget the best label-then-train error and each
    label-free seed's ratio ('converse' where it never reached it), the runs still pending,
    the same on another machine (``replicas``), and the extrapolation to the paper's budget,
    marked as one."""
    out = []
    for e in summary["budgets"]:
        out += _entry_lines(e, f"{e['basis']} {e['budget_min']:g} CPU min")
    for e in summary.get("replicas") or []:
        cpu = ", ".join(e.get("cpus") or []) or "another machine"
        out += _entry_lines(e, f"replica on {cpu}: {e['basis']} {e['budget_min']:g} CPU min")
    ex = summary.get("extrapolation") or {}
    for key, r in (ex.get("ratios") or {}).items():
        out.append(
            f"extrapolated (a power-law model, not measured) to {ex['hours']:g} h, {key}: ratio "
            f"{r['ratio']:.2g} (16-84 %: {r['lo']:.2g} to {r['hi']:.2g}); paper {summary['paper_ratio']:.0f}x"
        )
    return out
