"""Pure matplotlib plots used by the widgets and notebooks.

Every function takes plain data (arrays, lists of dicts) and returns a new
``matplotlib.figure.Figure`` (no pyplot state, safe in background threads).
Energies come in Hartree and are shown in eV / meV / uHa as labelled.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from qpt_nb.units import EV_PER_HARTREE
from qpt_nb.viz.figures import new_figure

__all__ = [
    "energy_levels",
    "scf_convergence",
    "training_curves",
    "per_conformer_errors",
    "wall_clock_comparison",
    "ratio_vs_budget",
    "error_distribution",
    "orbital_energy_comparison",
    "per_conformer_vs_baseline",
    "save_run_plots",
    "new_figure",
]


def _no_minor_labels(axis):
    """No labels on the minor ticks of a log axis (they overlap on short ranges)."""
    from matplotlib.ticker import NullFormatter

    axis.set_minor_formatter(NullFormatter())


def _levels(ax, eps_ev, n_occ, x0, width, color_occ="#1f4e9c", color_virt="#aaaaaa", max_virtual=None):
    eps_ev = np.asarray(eps_ev, dtype=float)
    n = len(eps_ev) if max_virtual is None else min(len(eps_ev), n_occ + max_virtual)
    for i in range(n):
        occ = i < n_occ
        ax.hlines(eps_ev[i], x0, x0 + width, color=color_occ if occ else color_virt, lw=2.2 if occ else 1.6)
        if occ:
            ax.plot(
                [x0 + 0.38 * width, x0 + 0.62 * width],
                [eps_ev[i]] * 2,
                ls="none",
                marker="$\\uparrow\\downarrow$",
                ms=9,
                color=color_occ,
            )


def _window(eps_ev, n_occ, max_virtual, below_homo_ev):
    n = len(eps_ev) if max_virtual is None else min(len(eps_ev), n_occ + max_virtual)
    shown = eps_ev[:n]
    lo = shown.min()
    if below_homo_ev is not None and n_occ > 0:
        lo = max(lo, eps_ev[n_occ - 1] - below_homo_ev)
    top = shown.max()
    span = max(top - lo, 1.0)
    return lo - 0.05 * span, top + 0.08 * span, int(np.sum(shown < lo - 0.05 * span))


def energy_levels(
    mo_energy,
    n_occ: int,
    *,
    reference=None,
    labels=("qpt_nb", "PySCF"),
    max_virtual: Optional[int] = 6,
    below_homo_ev: Optional[float] = 30.0,
    title: Optional[str] = None,
    figsize=(3.8, 4.2),
):
    """Orbital energy-level diagram (eV): occupied levels dark with electron pairs,
    virtual levels grey, HOMO/LUMO labelled and the gap marked.

    reference: optional second set of orbital energies (e.g. PySCF's) drawn beside.
    max_virtual: how many virtual levels to show (None = all).
    below_homo_ev: hide (and count) core levels deeper than this below the HOMO
    (None = show all).
    """
    eps = np.asarray(mo_energy, dtype=float) * EV_PER_HARTREE
    n_occ = int(n_occ)
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    _levels(ax, eps, n_occ, 0.0, 1.0, max_virtual=max_virtual)
    right, ticks, ticklabels = 1.0, [0.5], [labels[0]]
    if reference is not None:
        ref = np.asarray(reference, dtype=float) * EV_PER_HARTREE
        _levels(ax, ref, n_occ, 1.6, 1.0, color_occ="#2a8a3e", max_virtual=max_virtual)
        right, ticks, ticklabels = 2.6, [0.5, 2.1], list(labels[:2])
    lo, hi, hidden = _window(eps, n_occ, max_virtual, below_homo_ev)
    if 0 < n_occ < len(eps):
        homo, lumo = eps[n_occ - 1], eps[n_occ]
        ax.annotate(
            "",
            xy=(right + 0.25, lumo),
            xytext=(right + 0.25, homo),
            arrowprops=dict(arrowstyle="<->", color="#c0392b"),
        )
        ax.text(
            right + 0.32,
            0.5 * (homo + lumo),
            f"gap\n{lumo - homo:.2f} eV",
            va="center",
            fontsize=8,
            color="#c0392b",
        )
        ax.text(-0.05, homo, f"HOMO {homo:.2f}", ha="right", va="center", fontsize=7)
        ax.text(-0.05, lumo, f"LUMO {lumo:.2f}", ha="right", va="center", fontsize=7)
    if hidden:
        ax.text(
            0.02,
            0.01,
            f"{hidden} deeper level(s) not shown",
            transform=ax.transAxes,
            fontsize=7,
            color="#666",
        )
    ax.set_xlim(-1.3, right + 1.3)
    ax.set_ylim(lo, hi)
    ax.set_xticks(ticks)
    ax.set_xticklabels(ticklabels, fontsize=8)
    ax.set_ylabel("orbital energy (eV)")
    ax.set_title(title or "orbital energies", fontsize=9)
    return fig


def scf_convergence(
    energies: Sequence[float],
    *,
    errors: Optional[Sequence[float]] = None,
    reference: Optional[float] = None,
    title: Optional[str] = None,
    figsize=(4.2, 3.2),
):
    """|E_k - E_final| (or |E_k - reference|) per SCF iteration on a log scale, and
    the commutator norm |FDS - SDF| when ``errors`` is given."""
    e = np.asarray(energies, dtype=float)
    target = e[-1] if reference is None else float(reference)
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    it = np.arange(1, len(e) + 1)
    diff = np.abs(e - target)
    mask = diff > 0
    ax.semilogy(
        it[mask], diff[mask], "o-", ms=4, label="|E - E_final|" if reference is None else "|E - E_ref|"
    )
    if errors is not None:
        err = np.asarray(errors, dtype=float)
        ax.semilogy(np.arange(1, len(err) + 1), err, "s--", ms=3, label="|FDS - SDF|")
    ax.set_xlabel("SCF iteration")
    ax.set_ylabel("Hartree")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"SCF convergence ({len(e)} iterations)", fontsize=9)
    return fig


_TRAIN_PANELS = (
    ("loss", "loss"),
    ("test_energy_mae_mev", "test energy MAE (meV)"),
    ("test_hamiltonian_mae_uha", "test Hamiltonian MAE (uHa)"),
)


def _series(history, key, x):
    pts = [
        (r[x], r[key])
        for r in history
        if r.get(key) is not None
        and r.get(x) is not None
        and not (isinstance(r[key], float) and math.isnan(r[key]))
    ]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=float)
    return a[:, 0], a[:, 1]


def training_curves(
    history: Sequence[dict],
    *,
    xs=("step", "wall_s"),
    runs: Optional[dict] = None,
    metrics: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    figsize=None,
):
    """Loss and test errors against step and wall-clock seconds.

    history: list of records (Trainer.history); or pass ``runs={label: history}``
    to overlay several runs.  One row per entry of ``xs``, one column per metric
    present (loss, test_energy_mae_mev, test_hamiltonian_mae_uha), or the keys in
    ``metrics`` (e.g. only the test errors when runs with different losses are
    overlaid: their loss values are not comparable).  Error panels use log
    scales when they span more than a decade.
    """
    runs = dict(runs) if runs is not None else {"": list(history)}
    names = dict(_TRAIN_PANELS)
    if metrics is not None:
        panels = [(k, names.get(k, k)) for k in metrics]
    else:
        panels = [
            (k, lab)
            for k, lab in _TRAIN_PANELS
            if k == "loss" or any(r.get(k) is not None for h in runs.values() for r in h)
        ]
    xs = tuple(xs)
    fig = new_figure(figsize or (3.3 * len(panels), 2.6 * len(xs)))
    axes = fig.subplots(len(xs), len(panels), squeeze=False)
    xlab = {"step": "step", "wall_s": "wall-clock (s)"}
    for i, x in enumerate(xs):
        for j, (key, lab) in enumerate(panels):
            ax = axes[i, j]
            for name, hist in runs.items():
                xv, yv = _series(hist, key, x)
                if len(xv):
                    style = "-" if key == "loss" else "o-"
                    ax.plot(xv, yv, style, ms=3, lw=1.2, label=name or None)
            if key != "loss":
                ys = [v for h in runs.values() for v in _series(h, key, x)[1]]
                if ys and min(ys) > 0 and max(ys) / min(ys) > 10:  # log only over a decade
                    ax.set_yscale("log")
                    _no_minor_labels(ax.yaxis)
            if key == "loss":
                ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_xlabel(xlab.get(x, x), fontsize=8)
            ax.set_ylabel(lab, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            if i == 0 and j == 0 and len(runs) > 1 and ax.lines:
                ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


_ROW_LABELS = {
    "energy_error_mev": "|energy error| (meV)",
    "hamiltonian_mae_uha": "Hamiltonian MAE (uHa)",
    "mo_energy_mae_occ_uha": "occ. orbital energy MAE (uHa)",
}


def per_conformer_errors(
    rows: Sequence[dict],
    *,
    sort_by: str = "index",
    selected: Optional[int] = None,
    keys=("energy_error_mev", "hamiltonian_mae_uha"),
    figsize=(6.4, 3.0),
):
    """Bar chart of each test conformer's errors (|energy error| in meV and the
    Hamiltonian MAE in uHa), ordered by ``sort_by`` (a row key, e.g. 'index' or
    'energy_error_mev'; sorting by an error key sorts by its absolute value,
    largest first).  The ``selected`` conformer index is highlighted."""
    rows = list(rows)
    keys = [k for k in keys if rows and k in rows[0]]
    order = sort_rows(rows, sort_by)
    fig = new_figure(figsize)
    axes = fig.subplots(1, max(len(keys), 1), squeeze=False)[0]
    if not rows:
        axes[0].text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return fig
    labels = [str(rows[i].get("index", i)) for i in order]
    for ax, key in zip(axes, keys):
        vals = np.array([abs(float(rows[i][key])) for i in order])
        colors = [
            "#e67e22" if selected is not None and rows[i].get("index", i) == selected else "#4c72b0"
            for i in order
        ]
        ax.bar(np.arange(len(order)), vals, color=colors)
        ax.set_xticks(np.arange(len(order)))
        ax.set_xticklabels(
            labels, fontsize=6 if len(order) > 20 else 7, rotation=90 if len(order) > 20 else 0
        )
        ax.set_ylabel(_ROW_LABELS.get(key, key), fontsize=8)
        ax.axhline(vals.mean(), color="k", lw=0.8, ls="--", label=f"mean {vals.mean():.3g}")
        ax.legend(fontsize=7)
        ax.set_xlabel(
            "test conformer"
            + ("" if sort_by in (None, "index") else f" (sorted by {_ROW_LABELS.get(sort_by, sort_by)})"),
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    return fig


def per_conformer_vs_baseline(rows, sort: bool = True, *, title: str = ""):
    """|energy error| (meV, log y) per test conformer, trained vs W = 0, and the
    trained Hamiltonian MAE (uHa). Sorted by the baseline error when `sort`."""
    rows = list(rows)
    fig = new_figure((6.4, 5.0))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    if not rows:
        ax1.text(0.5, 0.5, "no conformers", ha="center", va="center", transform=ax1.transAxes)
        return fig
    tr = np.abs([r["energy_error_mev"] for r in rows])
    base = np.abs([r["baseline_energy_error_mev"] for r in rows])
    ham = np.asarray([r["hamiltonian_mae_uha"] for r in rows], dtype=float)
    order = np.argsort(base) if sort else np.arange(len(rows))
    pos = np.arange(len(rows))
    ax1.plot(pos, base[order], "s", label="W = 0 baseline")
    ax1.plot(pos, tr[order], "o", label="trained")
    ax1.set_yscale("log")
    ax1.set_ylabel("|E - E_PySCF| (meV)")
    ax1.legend(fontsize="small")
    ax1.grid(True, which="both", alpha=0.3)
    ax2.bar(pos, ham[order])
    ax2.set_ylabel("Hamiltonian MAE (uHa)")
    ax2.set_xlabel("test conformer" + (" (sorted by baseline error)" if sort else ""))
    if len(rows) <= 30:
        ax2.set_xticks(pos, [str(rows[i]["index"]) for i in order], fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def save_run_plots(run_dir, history, rows=None, *, dpi: int = 110) -> list:
    """Writes loss_vs_step.png and loss_vs_wall.png (`training_curves` against step
    and against training wall-clock seconds) and, with per-conformer ``rows``,
    per_conformer.png (`per_conformer_vs_baseline`). Returns the paths written."""
    from pathlib import Path

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    out = []
    if history:
        for x, name in (("step", "loss_vs_step.png"), ("wall_s", "loss_vs_wall.png")):
            training_curves(history, xs=(x,), title=run.name).savefig(run / name, dpi=dpi)
            out.append(run / name)
    if rows:
        fig = per_conformer_vs_baseline(rows, title=f"{run.name}: test conformers")
        fig.savefig(run / "per_conformer.png", dpi=dpi)
        out.append(run / "per_conformer.png")
    return out


def sort_rows(rows: Sequence[dict], sort_by: str = "index") -> list:
    """Positions of ``rows`` in display order: ascending for 'index', descending
    absolute value for error keys."""
    rows = list(rows)
    if not rows or sort_by in (None, "index") or sort_by not in rows[0]:
        return sorted(range(len(rows)), key=lambda i: rows[i].get("index", i))
    return sorted(range(len(rows)), key=lambda i: -abs(float(rows[i][sort_by])))


def orbital_energy_comparison(
    predicted,
    reference,
    n_occ: int,
    *,
    max_virtual: Optional[int] = 4,
    labels=("predicted", "PySCF"),
    title: Optional[str] = None,
    figsize=(6.0, 3.4),
):
    """Predicted vs reference orbital energies: a level diagram side by side and the
    per-orbital error (uHa) with the occupied-orbital MAE."""
    p = np.asarray(predicted, dtype=float)
    r = np.asarray(reference, dtype=float)
    n = min(len(p), len(r)) if max_virtual is None else min(len(p), len(r), n_occ + max_virtual)
    fig = new_figure(figsize)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.3])
    _levels(ax1, p[:n] * EV_PER_HARTREE, n_occ, 0.0, 1.0)
    _levels(ax1, r[:n] * EV_PER_HARTREE, n_occ, 1.6, 1.0, color_occ="#2a8a3e")
    lo, hi, hidden = _window(r * EV_PER_HARTREE, n_occ, max_virtual, 30.0)
    ax1.set_ylim(lo, hi)
    if hidden:
        ax1.text(
            0.02,
            0.01,
            f"{hidden} deeper level(s) not shown",
            transform=ax1.transAxes,
            fontsize=7,
            color="#666",
        )
    for i in range(n):
        ax1.plot([1.0, 1.6], [p[i] * EV_PER_HARTREE, r[i] * EV_PER_HARTREE], color="#999", lw=0.6)
    ax1.set_xlim(-0.2, 2.8)
    ax1.set_xticks([0.5, 2.1])
    ax1.set_xticklabels(list(labels[:2]), fontsize=8)
    ax1.set_ylabel("orbital energy (eV)", fontsize=8)
    err = (p[:n] - r[:n]) * 1e6
    colors = ["#1f4e9c" if i < n_occ else "#aaaaaa" for i in range(n)]
    ax2.bar(np.arange(n), err, color=colors)
    mae_occ = float(np.mean(np.abs(err[:n_occ]))) if n_occ else float("nan")
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set_xlabel("orbital (dark: occupied)", fontsize=8)
    ax2.set_ylabel("predicted - PySCF (uHa)", fontsize=8)
    ax2.set_title(f"occupied MAE {mae_occ:.1f} uHa", fontsize=8)
    ax2.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def wall_clock_comparison(
    runs: dict,
    *,
    keys=("test_energy_mae_mev", "test_hamiltonian_mae_uha"),
    offsets: Optional[dict] = None,
    title: Optional[str] = None,
    figsize=None,
):
    """Test error against wall-clock time for several runs, one panel per metric.

    runs: {label: history}; offsets: {label: seconds} added to every x value (the
    labelling time of a label-then-train run, so its curve starts where labelling
    ended; drawn as a dashed segment from x = 0).  Log-log axes. With more than six legend
    entries, one legend sits under the panels.
    """
    offsets = dict(offsets or {})
    keys = [k for k in keys if any(r.get(k) is not None for h in runs.values() for r in h)]
    n_entries = len(runs) + sum(1 for v in offsets.values() if v and v > 0)
    shared = n_entries > 6  # many runs: one legend under the panels instead of one per panel
    rows = -(-n_entries // 3) if shared else 0
    fig = new_figure(figsize or (4.2 * max(len(keys), 1), 3.2 + 0.2 * rows))
    axes = fig.subplots(1, max(len(keys), 1), squeeze=False)[0]
    names = dict(_TRAIN_PANELS)
    for ax, key in zip(axes, keys):
        for i, (name, hist) in enumerate(runs.items()):
            xv, yv = _series(hist, key, "wall_s")
            if not len(xv):
                continue
            off = float(offsets.get(name, 0.0))
            color = f"C{i}"
            ax.plot(xv + off, yv, "o-", ms=3, color=color, label=name)
            if off > 0:  # the labelling period: no model yet
                ax.axvspan(
                    min(1.0, 0.5 * float(xv[0] + off)),
                    off,
                    color=color,
                    alpha=0.12,
                    label=f"labelling ({off:.0f} s)",
                )
        ax.set_xscale("log")
        _no_minor_labels(ax.xaxis)
        ys = [v for h in runs.values() for v in _series(h, key, "wall_s")[1]]
        if ys and min(ys) > 0:
            ax.set_yscale("log")
            _no_minor_labels(ax.yaxis)
        ax.set_xlabel("wall-clock time (s, labelling included)", fontsize=8)
        ax.set_ylabel(names.get(key, key), fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=7)
        if not shared:
            ax.legend(fontsize=7)
    if shared:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def error_distribution(
    rows_by_run: dict,
    *,
    keys=("energy_error_mev", "hamiltonian_mae_uha"),
    bins: int = 20,
    title: Optional[str] = None,
    figsize=None,
):
    """Histograms of per-conformer errors (|energy error| in meV, Hamiltonian MAE in
    uHa) for one or more runs ({label: rows}), with each run's median marked."""
    keys = [k for k in keys if any(k in r for rows in rows_by_run.values() for r in rows)]
    fig = new_figure(figsize or (4.0 * max(len(keys), 1), 3.0))
    axes = fig.subplots(1, max(len(keys), 1), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        allv = [abs(float(r[key])) for rows in rows_by_run.values() for r in rows if key in r]
        positive = [v for v in allv if v > 0]
        if not positive:
            continue
        lo, hi = min(positive), max(positive)
        edges = np.geomspace(lo / 1.2, hi * 1.2, bins + 1) if hi > lo else bins
        for i, (name, rows) in enumerate(rows_by_run.items()):
            v = np.array([abs(float(r[key])) for r in rows if key in r])
            if len(v):
                ax.hist(v, bins=edges, alpha=0.55, color=f"C{i}", label=f"{name} (n={len(v)})")
                ax.axvline(np.median(v), color=f"C{i}", lw=1.2, ls="--")
        if hi > lo:
            ax.set_xscale("log")
            _no_minor_labels(ax.xaxis)
        ax.set_xlabel(_ROW_LABELS.get(key, key), fontsize=8)
        ax.set_ylabel("test conformers", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


_BASIS_COLOURS = {"sto-3g": "C0", "def2-svp": "C3"}


def ratio_vs_budget(summary: dict, *, figsize=(9.0, 3.6)):
    """The label-free ratio against the budget, one panel per metric (bench/budget_scaling.py's
    summary: ``budgets`` with per-metric ``ratios`` per label-free seed, ``extrapolation``
    curves and ``paper_ratio``).

    Measured ratios are dots (open: a converse ratio, the label-free run never reached the best
    label-then-train error) joined by the seeds' range; open diamonds, the same error reached by
    any run of either pipeline (any budget, ``envelope``); the power-law extrapolation is a dashed
    line with its 16-84 % band, marked as such; the paper's 25x at 31 h is a star; grey squares,
    the same pairs run again on another CPU (``replicas``). Above 1,
    label-free reaches the best label-then-train error sooner."""
    fig = new_figure(figsize)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    extrap = (summary.get("extrapolation") or {}).get("curves", {})
    hours = (summary.get("extrapolation") or {}).get("hours", 31.0)
    for ax, (metric, title) in zip(
        axes, (("energy_mae_mev", "energy"), ("hamiltonian_mae_uha", "Hamiltonian (F[D3])"))
    ):
        seen = set()
        for e in summary.get("budgets", []):
            r = e.get(metric)
            if not r:
                continue
            colour = _BASIS_COLOURS.get(e["basis"], "k")
            x = e["budget_min"] / 60.0
            vals = [(v, r["reached"][q]) for q, v in sorted(r["ratios"].items()) if v]
            if not vals:
                continue
            label = None if e["basis"] in seen else f"{e['basis']}, in the budget's runs"
            seen.add(e["basis"])
            ys = [v for v, _ in vals]
            ax.plot([x, x], [min(ys), max(ys)], "-", color=colour, lw=1.5)
            for v, reached in vals:
                ax.plot(x, v, "o", ms=6, color=colour, mfc=colour if reached else "white", label=label)
                label = None
            env = [v for v in (r.get("envelope") or {}).values() if v]
            for v in env:
                first = e["basis"] + "env" not in seen
                seen.add(e["basis"] + "env")
                ax.plot(
                    x,
                    v,
                    "D",
                    ms=5,
                    color=colour,
                    mfc="none",
                    label=f"{e['basis']}, any budget's runs" if first else None,
                )
        for e in summary.get("replicas") or []:  # the same pairs on another CPU: squares, offset right
            r = e.get(metric)
            for q, v in sorted((r or {}).get("ratios", {}).items()):
                if v:
                    first = "replica" not in seen
                    seen.add("replica")
                    cpu = ", ".join(e.get("cpus") or []) or "another CPU"
                    ax.plot(
                        1.1 * e["budget_min"] / 60.0,
                        v,
                        "s",
                        ms=5,
                        color="0.3",
                        mfc="0.3" if r["reached"][q] else "white",
                        label=f"{e['basis']}, both pipelines again on {cpu}" if first else None,
                    )
        for key, c in extrap.items():
            basis, _, m = key.partition("_")
            if m != metric:
                continue
            colour = _BASIS_COLOURS.get(basis, "k")
            ax.plot(
                c["hours"], c["ratio"], "--", color=colour, lw=1, label=f"{basis}, power-law extrapolation"
            )
            if all(v is not None for v in c["lo"] + c["hi"]):
                ax.fill_between(c["hours"], c["lo"], c["hi"], color=colour, alpha=0.12)
        if summary.get("paper_ratio"):
            ax.plot(
                hours, summary["paper_ratio"], "*", ms=11, color="k", label=f"paper ({hours:.0f} h, def2-SVP)"
            )
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("budget per pipeline (CPU hours, labelling included)", fontsize=8)
        ax.set_ylabel("ratio t_L / t_label-free (> 1: label-free sooner)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return fig
