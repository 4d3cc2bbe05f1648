"""Run plots as pure matplotlib `Figure`s (no pyplot global state; safe headless).

    fig = plot_history(trainer.history, x='wall_s')
    paths = save_run_plots('runs/uracil', history, rows)

History records are `Trainer` records: 'step', 'loss' (Hartree for the energy
loss, Hartree^2 for the matrix losses), 'wall_s' (cumulative training seconds)
and, when a monitor ran, 'test_energy_mae_mev' (meV) and
'test_hamiltonian_mae_uha' (micro-Hartree). Per-conformer rows are
`qpt_nb.evaluate` rows (energy_error_mev, baseline_energy_error_mev, ...).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

X_LABELS = dict(step="optimiser step", wall_s="training wall-clock time (s)")
TEST_PANELS = (("test_energy_mae_mev", "test energy MAE (meV)"),
               ("test_hamiltonian_mae_uha", "test Hamiltonian MAE (uHa)"))


def read_history(run_dir) -> list:
  """Records of ``run_dir/history.jsonl`` (empty list if absent; bad lines skipped)."""
  path = Path(run_dir) / "history.jsonl"
  if not path.is_file():
    return []
  out = []
  for line in path.read_text().splitlines():
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return out


def _running_mean(y: np.ndarray, window: int) -> np.ndarray:
  if window <= 1 or len(y) < window:
    return y
  c = np.cumsum(np.insert(y, 0, 0.0))
  head = c[1:window] / np.arange(1, window)
  return np.concatenate([head, (c[window:] - c[:-window]) / window])


def plot_history(history, x: str = "step", *, title: str = "") -> Figure:
  """Loss and (when present) test errors against `x` ('step' or 'wall_s').

  Panels: the loss (log y when all values are positive; the energy loss is a
  negative energy in Hartree and is drawn on a linear axis) with a running mean,
  then one log-y panel for each recorded test metric. Returns a Figure.
  """
  if x not in X_LABELS:
    raise ValueError(f"x must be one of {tuple(X_LABELS)}, got {x!r}.")
  history = [r for r in history if "loss" in r]
  panels = [k for k, _ in TEST_PANELS if any(k in r for r in history)]
  fig = Figure(figsize=(6.4, 2.4 * (1 + len(panels))), layout="constrained")
  axes = fig.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]
  ax = axes[0]
  if history:
    xs = np.asarray([r.get(x, np.nan) for r in history], dtype=float)
    ys = np.asarray([r["loss"] for r in history], dtype=float)
    ax.plot(xs, ys, lw=0.8, alpha=0.5, label="loss")
    ax.plot(xs, _running_mean(ys, max(len(ys) // 20, 1)), lw=1.5, label="running mean")
    if np.all(ys > 0):
      ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize="small")
  else:
    ax.text(0.5, 0.5, "no history yet", ha="center", va="center", transform=ax.transAxes)
  ax.set_ylabel("loss")
  names = dict(TEST_PANELS)
  for ax, key in zip(axes[1:], panels):
    sel = [r for r in history if key in r]
    xs = np.asarray([r.get(x, np.nan) for r in sel], dtype=float)
    ys = np.asarray([r[key] for r in sel], dtype=float)
    ax.plot(xs, ys, "o-", ms=3)
    if np.all(ys > 0):
      ax.set_yscale("log")
    ax.set_ylabel(names[key])
    ax.grid(True, which="both", alpha=0.3)
  axes[-1].set_xlabel(X_LABELS[x])
  if title:
    fig.suptitle(title)
  return fig


def plot_per_conformer(rows, sort: bool = True, *, title: str = "") -> Figure:
  """|energy error| (meV, log y) per test conformer, trained vs W = 0, and the
  trained Hamiltonian MAE (uHa). Sorted by the baseline error when `sort`."""
  rows = list(rows)
  fig = Figure(figsize=(6.4, 5.0), layout="constrained")
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
  """Writes loss_vs_step.png and loss_vs_wall.png (loss and test errors against
  step and wall-clock time) and, with rows, per_conformer.png. Returns the paths."""
  run = Path(run_dir)
  run.mkdir(parents=True, exist_ok=True)
  out = []
  if history:
    for x, name in (("step", "loss_vs_step.png"), ("wall_s", "loss_vs_wall.png")):
      fig = plot_history(history, x=x, title=run.name)
      fig.savefig(run / name, dpi=dpi)
      out.append(run / name)
  if rows:
    fig = plot_per_conformer(rows, title=f"{run.name}: test conformers")
    fig.savefig(run / "per_conformer.png", dpi=dpi)
    out.append(run / "per_conformer.png")
  return out
