"""Drawing for qpt_nb: pure functions that return matplotlib Figures, cube text or
py3Dmol views (no widget state; the widgets live in `qpt_nb.widgets`).

3Dmol.js source (offline machines): ``set_3dmol_js(path_or_url)`` or the
environment variable ``QPT_NB_3DMOL_JS``; see `qpt_nb.viz.threedmol`.
"""

from qpt_nb.viz.orbitals import (
    add_molecule,
    add_orbital,
    compact_cube,
    figure_png,
    molecule_plane,
    molecule_sketch_figure,
    orbital_cube,
    orbital_label,
    orbital_on_plane,
    orbital_slice_figure,
)
from qpt_nb.viz.plots import (
    energy_levels,
    error_distribution,
    new_figure,
    orbital_energy_comparison,
    per_conformer_errors,
    ratio_vs_budget,
    scf_convergence,
    sort_rows,
    training_curves,
    wall_clock_comparison,
)
from qpt_nb.viz.published import PUBLISHED_URACIL, comparison_html, comparison_table
from qpt_nb.viz.threedmol import ENV_VAR, default_3dmol_url, get_3dmol_js, new_view, set_3dmol_js, view_html

__all__ = [
    "add_molecule",
    "add_orbital",
    "compact_cube",
    "figure_png",
    "molecule_plane",
    "molecule_sketch_figure",
    "orbital_cube",
    "orbital_label",
    "orbital_on_plane",
    "orbital_slice_figure",
    "energy_levels",
    "orbital_energy_comparison",
    "per_conformer_errors",
    "scf_convergence",
    "sort_rows",
    "training_curves",
    "wall_clock_comparison",
    "ratio_vs_budget",
    "error_distribution",
    "new_figure",
    "PUBLISHED_URACIL",
    "comparison_table",
    "comparison_html",
    "ENV_VAR",
    "default_3dmol_url",
    "get_3dmol_js",
    "new_view",
    "set_3dmol_js",
    "view_html",
]
