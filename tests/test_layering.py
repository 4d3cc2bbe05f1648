"""The physics layer stands alone: importing all of qpt_nb.dft pulls in no learning code."""

import json
import pkgutil
import subprocess
import sys

import qpt_nb.dft


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
