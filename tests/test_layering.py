"""The package is layered: no import cycle anywhere, and no layer imports a higher one.

Layers, lowest first (a module may import its own layer and the layers below it):

    base       qpt_nb.units, .settings, .fileio, .validate, .aot: constants, environment,
               atomic files, argument checks, the compile cache (they import no other
               qpt_nb module)
    dft        physics and the PySCF bridge (no haiku, no optax)
    learn      the network, losses, conformers, training
    pretrained shipped models (loads a `learn.config.TrainConfig`)
    analysis   metrics, evaluation, guesses, predictions, run directories
    viz        drawing (pure functions returning figures)
    top        qpt_nb.widgets, qpt_nb.cli, qpt_nb.diagnostics and the package itself
               (``qpt_nb/__init__.py`` may import anything: it is the public API, and
               loads the learning names lazily)

The import graph is read from the source with `ast` (every ``import`` and ``from ...
import`` statement, at module level or inside functions, and ``importlib.import_module``
of a constant name), not from ``sys.modules``, so a function-level import counts as much as
a top-level one. An import of a module also runs the ``__init__`` of each package above it,
which is an edge too. Not edges: an import of a package that encloses the importing module
(Python has initialised it already), and imports under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import qpt_nb.dft

ROOT = Path(qpt_nb.dft.__file__).resolve().parents[1]  # the qpt_nb package folder

LAYERS = (
    ("base", ("qpt_nb.units", "qpt_nb.settings", "qpt_nb.fileio", "qpt_nb.validate", "qpt_nb.aot")),
    ("dft", ("qpt_nb.dft",)),
    ("learn", ("qpt_nb.learn",)),
    ("pretrained", ("qpt_nb.pretrained",)),
    ("analysis", ("qpt_nb.analysis",)),
    ("viz", ("qpt_nb.viz",)),
    ("top", ("qpt_nb.widgets", "qpt_nb.cli", "qpt_nb.diagnostics", "qpt_nb")),
)

# Known violations outside qpt_nb.dft, each to be removed when fixed. (importer, imported).
ALLOWED_LAYER_EDGES: set = set()  # none
ALLOWED_CYCLE_EDGES: set = set()  # none: every cycle is an error


def _modules() -> dict:
    """{dotted name: path} of every module and package of qpt_nb."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _owner(name: str, mods: dict):
    """The longest prefix of dotted `name` that is a qpt_nb module (None outside qpt_nb)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imported_names(tree, module: str, is_package: bool):
    """Dotted names `module`'s source imports (absolute; relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            yield src
            yield from (f"{src}.{a.name}" for a in node.names)  # `from pkg import module`
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict:
    """{module: set of qpt_nb modules it imports} (see the module docstring for what counts)."""
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for name in _imported_names(tree, mod, path.name == "__init__.py"):
            target = _owner(name, mods)
            while target:  # the module and the packages above it ...
                if not (mod == target or mod.startswith(target + ".")):  # ... not enclosing mod
                    edges.add(target)
                target = target.rpartition(".")[0]
        graph[mod] = edges
    return graph


def _layer(mod: str) -> int:
    best = None  # the longest matching prefix decides ('qpt_nb.dft.x' is dft, not top)
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (rank, len(p))
    assert best is not None, f"{mod} is in no layer: add it to LAYERS in {__file__}"
    return best[0]


def _cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_import_graph_sees_known_edges():
    g = import_graph()
    assert "qpt_nb.dft.kohn_sham" in g["qpt_nb.dft.scf"]
    assert "qpt_nb.dft.diis" in g["qpt_nb.dft.scf_device"]
    assert "qpt_nb.dft.memory" in g["qpt_nb.dft.tensors"]  # a top-level import
    assert "qpt_nb.dft.molecule" in g["qpt_nb.dft.memory"]  # a function-level import
    assert "qpt_nb.dft" in g["qpt_nb.learn.batch"]  # the __init__ of an imported package
    assert "qpt_nb" not in g["qpt_nb.learn.batch"]  # an enclosing package: no edge
    assert "qpt_nb" not in g["qpt_nb.diagnostics"]  # `import qpt_nb` inside the package


def test_no_import_cycles():
    g = import_graph()
    g = {m: {t for t in e if (m, t) not in ALLOWED_CYCLE_EDGES} for m, e in g.items()}
    assert _cycles(g) == []


def test_dft_modules_import_each_other_in_one_direction_only():
    """The pairs that used to import each other (memory <-> tensors, scf <-> scf_device)."""
    g = import_graph()
    for a, b in [("qpt_nb.dft.memory", "qpt_nb.dft.tensors"), ("qpt_nb.dft.scf", "qpt_nb.dft.scf_device")]:
        assert not (b in g[a] and a in g[b]), f"{a} and {b} import each other"
    assert "qpt_nb.dft.scf" not in g["qpt_nb.dft.scf_device"]
    assert "qpt_nb.dft.tensors" not in g["qpt_nb.dft.memory"]


def test_no_layer_imports_a_higher_one():
    g = import_graph()
    bad = sorted(
        (m, t)
        for m, targets in g.items()
        for t in targets
        if _layer(t) > _layer(m) and (m, t) not in ALLOWED_LAYER_EDGES
    )
    assert bad == [], "imports of a higher layer: " + ", ".join(f"{m} -> {t}" for m, t in bad)


def test_allow_lists_are_current():
    """An allowed edge that is gone must leave the allow-list (so it cannot come back)."""
    g = import_graph()
    stale = sorted(e for e in ALLOWED_LAYER_EDGES | ALLOWED_CYCLE_EDGES if e[1] not in g.get(e[0], ()))
    assert stale == []
    assert not any(m.startswith("qpt_nb.dft") for m, _ in ALLOWED_LAYER_EDGES | ALLOWED_CYCLE_EDGES)


def test_every_module_is_in_a_layer():
    for mod in import_graph():
        _layer(mod)


def test_dft_never_imports_learning_code():
    names = sorted(f"qpt_nb.dft.{m.name}" for m in pkgutil.iter_modules(qpt_nb.dft.__path__))
    assert "qpt_nb.dft.kohn_sham" in names and len(names) >= 9
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m in ('haiku', 'optax') or m.startswith("
        "('haiku.', 'optax.', 'qpt_nb.learn', 'qpt_nb.analysis', 'qpt_nb.widgets', 'qpt_nb.cli')))\n"
        "print(json.dumps(bad))\n"
    )
    # import the subpackage without running qpt_nb/__init__.py's public API imports
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_no_public_name_shadows_a_module():
    import importlib

    import qpt_nb

    for sub in ("dft", "learn", "analysis", "viz", "widgets", "cli"):
        pkg = importlib.import_module(f"qpt_nb.{sub}")
        for m in pkgutil.iter_modules(pkg.__path__):
            full = f"qpt_nb.{sub}.{m.name}"
            mod = importlib.import_module(full)
            assert getattr(pkg, m.name) is mod, f"{full} is shadowed by a non-module attribute"
    for name in ("units", "settings", "fileio", "diagnostics"):
        assert type(getattr(qpt_nb, name, importlib.import_module(f"qpt_nb.{name}"))).__name__ == "module"
