"""Pure plots of a phi/psi energy map (`qpt_nb.analysis.ramachandran.EnergyMap`).

    energy_map_figure(emap)            # 2 x 3: QPT, PySCF, |QPT - PySCF|; the same in log10
    psi_scan_figure(scan)              # E(psi) at fixed phi: QPT, PySCF, W = 0
    sample_figure(angles, emap)        # where training conformers were drawn

The layout is the research code's (graphcore-research/pyscf-ipu, branch
code-for-paper-plots, ``pyscf_ipu/direct/another_plot.py``: "NN Energy", "PySCF Energy",
"|NN-PySCF| Energy" and their log(|.|)), with phi on x and psi on y (the Ramachandran
convention), the training region outlined, and energies in meV: each map relative to
its own minimum; the difference panel is |E_QPT - E_PySCF| of the absolute energies. The
log row is log10 of the same values (the minimum itself, 0, and clashes are left blank).
Functions take the map object (attributes phi, psi, phi_range, psi_range, relative_mev,
error_mev) and return a new Figure (`qpt_nb.viz.figures.new_figure`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from qpt_nb.dft.dihedral import in_range
from qpt_nb.units import MEV_PER_HARTREE
from qpt_nb.viz.figures import new_figure

__all__ = ["energy_map_figure", "psi_scan_figure", "sample_figure", "outline_region"]

LABELS = dict(qpt="QPT (trained)", w0="W = 0 sandwich", pyscf="PySCF")
STYLES = dict(
    qpt=dict(color="C3", marker="o"), pyscf=dict(color="k", marker="s"), w0=dict(color="C0", ls="--")
)


def _edges(a) -> list:
    """[first - step/2, last + step/2] of a regular 1-d grid (degrees); one point: +-5."""
    a = np.asarray(a, dtype=float)
    step = float(np.median(np.diff(a))) if len(a) > 1 else 10.0
    return [a[0] - step / 2, a[-1] + step / 2]


def outline_region(ax, phi_range, psi_range, *, axis: str = "both", **style):
    """Outlines the training region on `ax` (degrees; periodic: drawn at every shift by
    360 that falls in view). axis: 'both' (a rectangle in the phi/psi plane) or 'x' (a
    shaded band of x = psi, for a scan)."""
    from matplotlib.patches import Rectangle

    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    if axis == "x":
        lo, hi = psi_range
        kw = dict(color="0.85", alpha=0.6, lw=0, zorder=0)
        kw.update(style)
        for k in (-360.0, 0.0, 360.0):
            ax.axvspan(lo + k, hi + k, **kw)
        ax.set_xlim(xlim)
        return
    kw = dict(fill=False, ec="white", lw=1.6, ls="--")
    kw.update(style)
    (p0, p1), (q0, q1) = phi_range, psi_range
    for i in (-360.0, 0.0, 360.0):
        for j in (-360.0, 0.0, 360.0):
            ax.add_patch(Rectangle((p0 + i, q0 + j), p1 - p0, q1 - q0, clip_on=True, **kw))
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def _log10(x):
    x = np.abs(np.asarray(x, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log10(np.where(x > 0, x, 1.0)), np.nan)


def energy_map_figure(emap, *, key: str = "qpt", title: Optional[str] = None, figsize=(11.0, 7.0)):
    """The 2 x 3 map figure: top row `key` (default the trained QPT; 'w0' for the W = 0
    sandwich) and PySCF relative to their minima and |E_key - E_PySCF|, all meV; bottom
    row log10 of the same. The training region is outlined (dashed, white)."""
    import matplotlib as mpl

    name = LABELS.get(key, key)
    panels = [
        (emap.relative_mev(key), f"{name} energy (meV)"),
        (emap.relative_mev("pyscf"), "PySCF energy (meV)"),
        (np.abs(emap.error_mev(key)), f"|{name} - PySCF| (meV)"),
    ]
    extent = _edges(emap.phi) + _edges(emap.psi)
    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.8")
    fig = new_figure(figsize)
    axes = fig.subplots(2, 3, sharex=True, sharey=True)
    for col, (values, label) in enumerate(panels):
        for row, (data, lab) in enumerate(((values, label), (_log10(values), f"log10 {label}"))):
            ax = axes[row, col]
            im = ax.imshow(
                np.asarray(data, dtype=float).T,
                origin="lower",
                extent=extent,
                cmap=cmap,
                aspect="auto",
                interpolation="nearest",
            )
            outline_region(ax, emap.phi_range, emap.psi_range)
            fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.06, pad=0.02)
            ax.set_title(lab, fontsize=9)
            if row == 1:
                ax.set_xlabel("phi (deg)")
            if col == 0:
                ax.set_ylabel("psi (deg)")
    for ax in axes.flat:
        ax.set_xticks(np.arange(0, 361, 90))
        ax.set_yticks(np.arange(0, 361, 90))
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
    fig.suptitle(
        title or f"phi/psi energy map ({len(emap.phi)} x {len(emap.psi)}); dashed: training region",
        fontsize=10,
    )
    return fig


def psi_scan_figure(scan, *, row: int = 0, keys=("qpt", "pyscf", "w0"), title=None, figsize=(6.0, 5.0)):
    """E(psi) at the fixed phi of row `row` of `scan` (an EnergyMap, usually (1, n_psi)).

    Top: each of `keys` relative to its own minimum over the scan, meV. Bottom: the
    error of the absolute energy, E - E_PySCF, meV (log scale). The training psi range is
    shaded (it applies when the scan's phi lies in the phi range)."""
    fig = new_figure(figsize)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    psi = np.asarray(scan.psi, dtype=float)
    for k in keys:
        if k not in scan.energies:
            continue
        e = np.asarray(scan.energies[k][row], dtype=float)
        rel = (e - np.nanmin(e)) * MEV_PER_HARTREE if np.isfinite(e).any() else e
        top.plot(psi, rel, ms=3, lw=1.4, label=LABELS.get(k, k), **STYLES.get(k, {}))
        if k != "pyscf" and "pyscf" in scan.energies:
            err = np.abs(scan.error_mev(k)[row])
            bottom.plot(psi, np.where(err > 0, err, np.nan), ms=3, lw=1.4, **STYLES.get(k, {}))
    lim = (0.0, 360.0) if psi.min() >= 0 and psi.max() < 360 else _edges(psi)
    for ax in (top, bottom):
        ax.set_xlim(*lim)
        outline_region(ax, scan.phi_range, scan.psi_range, axis="x")
    bottom.set_yscale("log")
    bottom.set_xticks(np.arange(0, 361, 45) if lim == (0.0, 360.0) else bottom.get_xticks())
    bottom.set_xlabel("psi (deg)")
    top.set_ylabel("E - scan minimum (meV)")
    bottom.set_ylabel("|E - E_PySCF| (meV)")
    top.legend(fontsize=8)
    phi = float(np.asarray(scan.phi)[row])
    where = "inside" if in_range(phi, scan.phi_range) else "outside"
    top.set_title(
        title or f"psi scan at phi = {phi:g} deg ({where} the training phi range; shaded: its psi range)",
        fontsize=9,
    )
    return fig


def sample_figure(angles, emap=None, *, phi_range=None, psi_range=None, title=None, figsize=(4.2, 4.0)):
    """Scatter of drawn (phi, psi) pairs ``angles`` (m, 2) degrees, with the training
    region outlined (from `emap` or phi_range/psi_range)."""
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    a = np.asarray(angles, dtype=float).reshape(-1, 2) % 360.0
    ax.plot(a[:, 0], a[:, 1], ".", ms=3, color="C0")
    ax.set_xlim(0, 360)
    ax.set_ylim(0, 360)
    phi_range = phi_range or (emap.phi_range if emap is not None else None)
    psi_range = psi_range or (emap.psi_range if emap is not None else None)
    if phi_range is not None and psi_range is not None:
        outline_region(ax, phi_range, psi_range, ec="C3")
    ax.set_xticks(np.arange(0, 361, 90))
    ax.set_yticks(np.arange(0, 361, 90))
    ax.set_xlabel("phi (deg)")
    ax.set_ylabel("psi (deg)")
    ax.set_title(title or f"{len(a)} sampled conformers", fontsize=9)
    return fig
