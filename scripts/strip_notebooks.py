"""Keep committed notebooks small: outputs stay, widget state and run metadata go.

    python scripts/strip_notebooks.py            # rewrites notebooks/*.ipynb in place
    python scripts/strip_notebooks.py --check    # exit 1 if any notebook needs stripping

Removed: the notebook-level ``metadata.widgets`` (ipywidgets' saved state), widget views
in outputs (``application/vnd.jupyter.widget-view+json``, which only a live kernel can
render), HTML outputs over `MAX_HTML` characters (3Dmol.js views that embed a whole cube
file) when the output has another representation to fall back on, and cell execution
metadata (timings). Execution counts stay: nbval treats a cell that has outputs but no
count as unrun. Text, images and small HTML outputs are kept,
so a reader sees the numbers and figures without running anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_HTML = 20_000  # characters; an embedded orbital cube is 100-200 k


def strip(nb) -> bool:
    """Strips `nb` (a NotebookNode) in place; returns True when anything changed."""
    changed = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        for key in ("execution", "collapsed", "scrolled"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            data = out.get("data")
            if data is not None and WIDGET_MIME in data:
                del data[WIDGET_MIME]
                changed = True
                if not data:
                    continue
            if data is not None and len("".join(data.get("text/html", ""))) > MAX_HTML and len(data) > 1:
                del data["text/html"]
                changed = True
            outputs.append(out)
        cell.outputs = outputs
    return changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="*", default=None, help="notebooks (default notebooks/*.ipynb)")
    p.add_argument("--check", action="store_true", help="only report; exit 1 if any would change")
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    paths = [Path(x) for x in args.paths] or sorted((root / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if strip(nb):
            dirty.append(path)
            if not args.check:
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
