"""Figures that display themselves: the one place that creates matplotlib Figures.

`new_figure` returns a constrained-layout Figure with no pyplot state (safe in
background threads and headless), which renders as PNG in any Jupyter front end;
`figure_png` turns any Figure into PNG bytes with the Agg canvas.
"""

from __future__ import annotations

import io


def figure_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib Figure (Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _figure_class():
    from matplotlib.figure import Figure

    class QPTFigure(Figure):
        """A matplotlib Figure that displays itself in any Jupyter front end
        (``_repr_png_``), also without pyplot or the inline backend."""

        def _repr_png_(self):
            return figure_png(self, dpi=90)

    return QPTFigure


_FIGURE = None


def new_figure(figsize=(5, 3.5)):
    """An empty constrained-layout Figure (no pyplot state) that displays as PNG."""
    global _FIGURE
    if _FIGURE is None:
        _FIGURE = _figure_class()
    return _FIGURE(figsize=figsize, layout="constrained")
