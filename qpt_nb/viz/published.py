"""Published numbers for the uracil benchmark, and a table that puts ours beside them.

All published rows are label-trained models on MD17 uracil at def2-SVP, except the
QPT paper's own (label-free, arXiv 2402.04030).  They are quoted, not reproduced:
the tables mark them "published" and state the basis.  Units: Hamiltonian and
orbital-energy MAE in micro-Hartree (uHa), psi in percent, energy and HOMO/LUMO/gap MAE in meV
(none of the published rows reports HOMO/LUMO/gap errors: '-').
"""

from __future__ import annotations

import html
import math
from typing import Optional

__all__ = ["PUBLISHED_URACIL", "TABLE_COLUMNS", "comparison_rows", "comparison_table", "comparison_html"]

_FIELDS = (
    "method",
    "year",
    "training",
    "hamiltonian_mae_uha",
    "mo_energy_mae_occ_uha",
    "mo_energy_mae_all_uha",
    "psi_occ_percent",
    "energy_mae_mev",
)
_MD17, _FREE = "labels (MD17)", "label-free (DFT loss)"
# method, year, training, H MAE uHa, occupied eps MAE uHa, all eps MAE uHa, psi %, E MAE meV
_TABLE = (
    ("SchNOrb", 2019, _MD17, 227.8, 1760.0, None, 90.0, None),
    ("PhiSNet (QHNet re-run)", 2021, _MD17, 18.65, None, None, None, None),
    ("QHNet (float64)", 2023, _MD17, 20.12, 113.44, None, 99.89, None),
    ("QHFlow", 2025, _MD17, 3.68, None, None, None, None),
    ("QPT paper (31 h)", 2024, _FREE, 39.46, None, 409.21, None, 0.524),
)
PUBLISHED_URACIL = tuple({k: v for k, v in zip(_FIELDS, row) if v is not None} for row in _TABLE)

TABLE_COLUMNS = (
    ("hamiltonian_mae_uha", "H MAE (uHa)"),
    ("mo_energy_mae_occ_uha", "occ. eps MAE (uHa)"),
    ("mo_energy_mae_all_uha", "all eps MAE (uHa)"),
    ("psi_occ_percent", "psi (%)"),
    ("energy_mae_mev", "E MAE (meV)"),
    ("homo_mae_mev", "HOMO MAE (meV)"),
    ("lumo_mae_mev", "LUMO MAE (meV)"),
    ("gap_mae_mev", "gap MAE (meV)"),
)


def comparison_rows(ours: dict, *, basis: str, molecule: str = "uracil", published: bool = True) -> list:
    """Rows (dicts) of the comparison: ours ({name: metrics dict from
    `qpt_nb.analysis.evaluation`}, marked 'this run, <basis>') first, then the published ones
    (marked 'published, def2-SVP')."""
    rows = []
    for name, m in ours.items():
        rows.append(
            dict(
                method=name,
                source=f"this run ({molecule}, {basis})",
                **{k: m.get(k) for k, _ in TABLE_COLUMNS},
            )
        )
    if published:
        for p in PUBLISHED_URACIL:
            rows.append(
                dict(
                    method=f"{p['method']} ({p['year']})",
                    source=f"published, def2-SVP, {p['training']}",
                    **{k: p.get(k) for k, _ in TABLE_COLUMNS},
                )
            )
    return rows


def _fmt(v, key: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key == "psi_occ_percent":
        return f"{v:.3f}"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def comparison_table(ours: dict, *, basis: str, molecule: str = "uracil") -> str:
    """Plain-text table: our metrics beside the published uracil baselines."""
    rows = comparison_rows(ours, basis=basis, molecule=molecule)
    widths = [max(len(lab), 9) + 2 for _, lab in TABLE_COLUMNS]
    head = f"{'method':30s} {'source':42s}" + "".join(
        f"{lab:>{w}s}" for (_, lab), w in zip(TABLE_COLUMNS, widths)
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['method'][:30]:30s} {r['source'][:42]:42s}"
            + "".join(f"{_fmt(r[k], k):>{w}s}" for (k, _), w in zip(TABLE_COLUMNS, widths))
        )
    lines.append("published rows: quoted from the papers (MD17 uracil, def2-SVP); not rerun here.")
    return "\n".join(lines)


def comparison_html(
    ours: dict, *, basis: str, molecule: str = "uracil", caption: Optional[str] = None
) -> str:
    """The same table as HTML (published rows in grey italics)."""
    rows = comparison_rows(ours, basis=basis, molecule=molecule)
    th = "".join(f"<th>{html.escape(lab)}</th>" for _, lab in TABLE_COLUMNS)
    body = []
    for r in rows:
        pub = r["source"].startswith("published")
        style = " style='color:#666;font-style:italic'" if pub else ""
        cells = "".join(f"<td style='text-align:right'>{_fmt(r[k], k)}</td>" for k, _ in TABLE_COLUMNS)
        body.append(
            f"<tr{style}><td>{html.escape(r['method'])}</td><td>{html.escape(r['source'])}</td>{cells}</tr>"
        )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f"<table>{cap}<tr><th>method</th><th>source</th>{th}</tr>{''.join(body)}</table>"
        "<p style='font-size:small'>Grey rows are <b>published numbers</b> (MD17 uracil, "
        "def2-SVP, quoted from the papers), not reproduced here.</p>"
    )
