"""The measured headline benchmark (bench/labels_vs_dft_loss.py --full), as a notebook reads it.

The benchmark (one CPU core-hour per pipeline, labelling charged; arXiv 2402.04030's
comparison of label-free QPT training with label-then-train) writes one JSON per pipeline
set into bench/results/. `load_headline` turns such a file into what notebook 03 shows:
each pipeline's test-error curve against CPU time in the record format of a run's history
(``wall_s``, ``test_energy_mae_mev``, ``test_hamiltonian_mae_uha``; a label-then-train
curve starts when its labels are done, ``offset_s``), a summary row per pipeline, and the
time ratios the benchmark computed (how much sooner one pipeline reaches another's best).

  >>> h = load_headline()
  >>> h.rows[0]['name'], round(h.rows[0]['best_energy_mae_mev'], 1)
  ('label-then-train (L)', 8.1)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from qpt_nb.analysis.timing import display_name  # noqa: F401 - the pipelines' names, one table


@dataclasses.dataclass
class Headline:
    """curves: {name: history records}; offsets: {name: seconds of labelling before its
    curve}; rows: one summary dict per pipeline (its ``date`` the day it was measured, ``cpu`` the
    CPU model); ratios: the benchmark's summary
    ({'Q_vs_L_energy_mae_mev': {best, t_ref_s, t_other_s, ratio, other_best}, ...});
    settings, machine: as recorded; path: the file read."""

    curves: dict
    offsets: dict
    rows: list
    ratios: dict
    settings: dict
    machine: dict
    path: Path

    def table(self) -> str:
        """Plain-text summary: one line per pipeline (CPU minutes, steps, labels, best errors)."""
        w = max([28] + [len(r["name"]) + 2 for r in self.rows])
        head = f"{'pipeline':{w}s}{'CPU min':>9s}{'steps':>9s}{'labels':>8s}{'best E meV':>12s}{'best H uHa':>12s}"
        lines = [head]
        for r in self.rows:
            lines.append(
                f"{r['name']:{w}s}{r['cpu_minutes']:9.0f}{r['steps']:9d}{r['n_labels']:8d}"
                f"{r['best_energy_mae_mev']:12.1f}{r['best_hamiltonian_mae_uha']:12.0f}"
            )
        return "\n".join(lines)

    def measured(self) -> str:
        """The day(s) the runs were measured: '2026-11-24' or '2026-11-24 to 2026-12-03'."""
        days = sorted({str(r["date"])[:10] for r in self.rows if r.get("date")})
        return " to ".join(dict.fromkeys([days[0], days[-1]])) if days else "on an unrecorded date"

    def machines(self) -> str:
        """The CPU(s) the runs were measured on: 'AMD EPYC' or, when they differ,
        'AMD EPYC (Q-s0, Q-s1); Intel(R) Xeon(R) Processor (L)'. Step rates differ between
        CPUs, so a comparison across them is a comparison of machines too."""
        by = {}
        for r in self.rows:
            by.setdefault(r.get("cpu") or "an unrecorded CPU", []).append(r["key"])
        if len(by) == 1:
            return next(iter(by))
        return "; ".join(f"{cpu} ({', '.join(keys)})" for cpu, keys in by.items())

    def best_l(self, metric: str) -> str:
        """The key of the label-then-train run with the lowest best `metric`
        ('energy_mae_mev' or 'hamiltonian_mae_uha'): the L a label-free run has to beat."""
        from qpt_nb.analysis.timing import pipeline_of

        rows = [r for r in self.rows if pipeline_of(r["key"]) == "L"]
        if not rows:
            raise ValueError(f"{self.path} holds no label-then-train run")
        return min(rows, key=lambda r: r[f"best_{metric}"])["key"]


BENCHMARK = "labels_vs_dft_loss"


def combine_results(parts) -> dict:
    """One headline result from several result files of the benchmark: the one writer of
    the schema `load_headline` reads.

    Args:
      parts: (name, data) pairs: ``data`` a result file's dict (``runs``: {key: run},
        ``machine``, ``settings``, ``complete``); ``name`` non-empty renames the file's one
        run (e.g. 'Q-s1', for seeds side by side).

    Returns the first file's dict with ``runs`` (all runs), ``complete`` (all complete),
    ``budget_s`` (the largest), ``dates`` and ``cpus`` ({key: the date and CPU model of the
    file it came from}). ValueError for a rename of a file with several runs or a key that
    appears twice.
    """
    runs, dates, cpus, first, budget, complete = {}, {}, {}, None, 0.0, True
    for name, d in parts:
        first = first or d
        d_runs = d["runs"]
        if name:
            if len(d_runs) != 1:
                raise ValueError(f"a rename ({name}=) needs a file with one run, not {sorted(d_runs)}")
            d_runs = {name: next(iter(d_runs.values()))}
        clash = set(runs) & set(d_runs)
        if clash:
            raise ValueError(f"run {sorted(clash)} appears twice; rename them NAME=PATH")
        runs.update(d_runs)
        dates.update({n: (d.get("machine") or {}).get("date") for n in d_runs})
        cpus.update({n: (d.get("machine") or {}).get("cpu_model") for n in d_runs})
        complete = complete and d.get("complete", True)
        budget = max(budget, d["settings"]["budget_s"])
    if first is None:
        raise ValueError("nothing to combine")
    return dict(
        first, runs=runs, complete=complete, budget_s=budget, machine=first["machine"], dates=dates, cpus=cpus
    )


def check_result(data: dict, path) -> dict:
    """`data` when it is a complete full result of the benchmark; ValueError naming `path`."""
    if data.get("benchmark") != BENCHMARK or "runs" not in data:
        raise ValueError(f"{path} is not a {BENCHMARK} result")
    if not data.get("complete", False):
        raise ValueError(f"{path} is an incomplete run of the benchmark (complete=false)")
    return data


def default_path() -> Path:
    """bench/results/labels_vs_dft_loss_headline.json of this checkout (the newest
    measured combination: see BENCHMARKS.md section 3)."""
    from qpt_nb.analysis.experiments import project_root

    return project_root() / "bench" / "results" / "labels_vs_dft_loss_headline.json"


def load_headline(path=None) -> Headline:
    """Reads a labels_vs_dft_loss result file (default `default_path()`).

    Raises FileNotFoundError (missing) or ValueError (not a complete full-mode result of
    that benchmark) with the path named.
    """
    from qpt_nb.fileio import read_json

    path = Path(path) if path is not None else default_path()
    data = read_json(
        path, missing=f"no headline result {path}: run python bench/labels_vs_dft_loss.py --full"
    )
    check_result(data, path)
    curves, offsets, rows = {}, {}, []
    for key, run in data["runs"].items():
        name = display_name(key)
        off = float(run.get("labels_end_s") or 0.0)
        recs = [
            dict(
                step=p.get("step", 0),
                wall_s=max(float(p["t_s"]) - off, 0.0),
                test_energy_mae_mev=p["energy_mae_mev"],
                test_hamiltonian_mae_uha=p["hamiltonian_mae_uha"],
            )
            for p in run["curve"]
            if p.get("energy_mae_mev") is not None
        ]
        # a label-then-train curve's first point is the untrained model when labels are done
        trained = [r for r in recs if r["step"] > 0] or recs
        curves[name], offsets[name] = recs, off
        rows.append(
            dict(
                name=name,
                key=key,
                cpu_minutes=max(float(p["t_s"]) for p in run["curve"]) / 60.0,
                steps=int(run.get("steps", 0)),
                n_labels=int(run.get("n_labels", 0)),
                label_minutes=off / 60.0,
                best_energy_mae_mev=min(r["test_energy_mae_mev"] for r in trained),
                best_hamiltonian_mae_uha=min(r["test_hamiltonian_mae_uha"] for r in trained),
                date=(data.get("dates") or {}).get(key) or data.get("machine", {}).get("date"),
                cpu=(data.get("cpus") or {}).get(key) or data.get("machine", {}).get("cpu_model"),
                final_energy_mae_mev=recs[-1]["test_energy_mae_mev"],
                final_hamiltonian_mae_uha=recs[-1]["test_hamiltonian_mae_uha"],
            )
        )
    return Headline(
        curves=curves,
        offsets=offsets,
        rows=rows,
        ratios=dict(data.get("summary", {})),
        settings=dict(data.get("settings", {})),
        machine=dict(data.get("machine", {})),
        path=path,
    )


def ratio_lines(h: Headline) -> list:
    """One sentence per entry of the benchmark's summary ``X_vs_Y_<metric>``: the best error
    pipeline Y reached (``best``, at ``t_ref_s``), when pipeline X first reached it
    (``t_other_s``; None: never within the budget, X's own best is ``other_best``) and
    ``ratio = t_ref_s / t_other_s`` (> 1: X gets there sooner than Y itself)."""
    out = []
    for key, r in sorted(h.ratios.items()):
        x, rest = key.split("_vs_", 1)
        y, metric = rest.split("_", 1)
        what = "energy" if metric.startswith("energy") else "Hamiltonian"
        unit = "meV" if what == "energy" else "uHa"
        x_name, y_name = display_name(x), display_name(y)
        if r.get("ratio") is None:
            out.append(
                f"{x_name} never reached {y_name}'s best {what} error ({r['best']:.3g} {unit}); "
                f"its own best: {r['other_best']:.3g} {unit}"
            )
        else:
            out.append(
                f"{x_name} reached {y_name}'s best {what} error ({r['best']:.3g} {unit}) after "
                f"{r['t_other_s'] / 60:.0f} CPU min, {y_name} after {r['t_ref_s'] / 60:.0f}: "
                f"ratio {r['ratio']:.2f}"
            )
    return out


def best_l_lines(h: Headline) -> list:
    """The headline in a few sentences: per metric, the best label-then-train run, and for
    each label-free run the ratio at which it reaches that run's best error (> 1: sooner than
    L itself), or, when it never does, how much sooner L reaches the label-free run's best.
    Read from the benchmark's summary (`ratio_lines` lists every pair)."""
    from qpt_nb.analysis.timing import pipeline_of

    out = []
    for metric, what, unit in (
        ("energy_mae_mev", "energy", "meV"),
        ("hamiltonian_mae_uha", "Hamiltonian", "uHa"),
    ):
        ref = h.best_l(metric)
        row = next(r for r in h.rows if r["key"] == ref)
        out.append(f"best L on {what}: {display_name(ref)}, {row[f'best_{metric}']:.3g} {unit}")
        for r in h.rows:
            x = r["key"]
            if pipeline_of(x) == "L":
                continue
            c = h.ratios.get(f"{x}_vs_{ref}_{metric}")
            if c is None:
                continue
            if c.get("ratio"):
                out.append(
                    f"  {display_name(x)}: reaches it after {c['t_other_s'] / 60:.0f} CPU min: ratio {c['ratio']:.2f}"
                )
                continue
            back = h.ratios.get(f"{ref}_vs_{x}_{metric}") or {}
            line = f"  {display_name(x)}: never reaches it (own best {c['other_best']:.3g} {unit})"
            if back.get("ratio"):
                line += f"; converse: L reaches {c['other_best']:.3g} {unit} at ratio {back['ratio']:.2f}"
            out.append(line)
    return out
