"""Jupyter widgets for qpt_nb (ipywidgets + py3Dmol), and notebook helpers.

State lives in plain objects (dataclasses you can inspect and test), drawing in
the pure functions of `qpt_nb.viz`.

* `orbital_view(mol, mo_coeff, index, basis=...)` -> `OrbitalView`: 3Dmol.js
  isosurfaces of one molecular orbital, ``save_html(path)``, and a matplotlib
  slice (``slice_figure()``) as the static fallback.
* `MoleculeExplorer()`: molecule / basis / functional / grid -> SCF (and PySCF
  beside it), energies, level diagram, convergence and an orbital slider.
* `TrainingDashboard(trainer, test_set)`: Start / Pause / Step over
  `qpt_nb.learn.train.Trainer.run` in a background thread, live curves, per-conformer
  errors.
* `setup_notebook()`: JAX persistent compilation cache for notebooks.
* `smoke_mode()` / `steps(full, smoke)`: notebook step counts that shrink when
  the environment variable ``QPT_NB_SMOKE=1`` is set (the notebook tests).

Importing this package does not import ipywidgets; the widget classes do, on
first use.
"""

from __future__ import annotations

from qpt_nb.settings import enable_compile_cache, smoke_mode, steps

__all__ = [
    "smoke_mode",
    "steps",
    "setup_notebook",
    "orbital_view",
    "OrbitalView",
    "orbital_gallery",
    "MoleculeExplorer",
    "ExplorerState",
    "TrainingDashboard",
    "DashboardState",
]


def setup_notebook(*, compile_cache: bool = True, cache_dir=None) -> dict:
    """Call at the top of a notebook: enables JAX's persistent compilation cache
    (`qpt_nb.settings.enable_compile_cache`: ``$QPT_NB_JAX_CACHE``, default
    ``~/.cache/qpt_nb/jax``), so a second kernel that compiles the same functions for the
    same shapes loads them from disk (water/STO-3G training: ~25 s -> ~5 s). Only takes
    effect before the first compilation of the process. Also makes plain matplotlib
    Figures display as PNG without pyplot. Returns the settings used."""
    info = dict(compile_cache=None, smoke=smoke_mode())
    if compile_cache:
        info["compile_cache"] = enable_compile_cache(cache_dir)
    info["figure_formatter"] = _register_figure_png()
    return info


def _register_figure_png() -> bool:
    """Lets plain matplotlib Figures (no pyplot) display as PNG in IPython even
    without the inline backend (e.g. under MPLBACKEND=Agg)."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is None:
            return False
        from matplotlib.figure import Figure

        fmt = ip.display_formatter.formatters["image/png"]
        try:
            fmt.lookup_by_type(Figure)
            return True  # the inline backend already handles it
        except KeyError:
            from qpt_nb.viz import figure_png

            fmt.for_type(Figure, lambda fig: figure_png(fig, dpi=90))
            return True
    except Exception:
        return False


_LAZY = {
    "orbital_view": ".orbital",
    "OrbitalView": ".orbital",
    "orbital_gallery": ".orbital",
    "MoleculeExplorer": ".explorer",
    "ExplorerState": ".explorer",
    "TrainingDashboard": ".dashboard",
    "DashboardState": ".dashboard",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(_LAZY[name], __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
