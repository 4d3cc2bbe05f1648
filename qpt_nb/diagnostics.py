"""`doctor()`: what is installed and how JAX is configured (run it first when something breaks).

>>> import qpt_nb.diagnostics; qpt_nb.diagnostics.doctor()          # doctest: +SKIP
qpt_nb 0.1.0 doctor
  python              3.11.2
  jax                 0.10.2
  ...
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Optional

from qpt_nb.analysis.timing import cpu_model

__all__ = ["doctor", "collect", "machine_info", "PACKAGES"]

# distribution name -> import name (for packages without metadata)
PACKAGES = (
    ("jax", "jax"),
    ("jaxlib", "jaxlib"),
    ("dm-haiku", "haiku"),
    ("optax", "optax"),
    ("pyscf", "pyscf"),
    ("numpy", "numpy"),
    ("ipywidgets", "ipywidgets"),
    ("jupyterlab_widgets", "jupyterlab_widgets"),
    ("py3Dmol", "py3Dmol"),
    ("matplotlib", "matplotlib"),
    ("jupyterlab", "jupyterlab"),
    ("ipykernel", "ipykernel"),
)


def _version(dist: str, module: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "installed (version unknown)"))
    except Exception:
        return None


def machine_info() -> dict:
    """Where and when a measurement ran, the one description of the machine (benchmarks
    record it beside every figure): date, host, platform, python, cpu_count, cpu_model,
    load_avg_1m, and jax (version), jax_backend, jax_devices, pyscf when importable."""
    import datetime

    info = dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        host=platform.node(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
    )
    info["cpu_model"] = cpu_model()
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    try:
        import jax

        info["jax"] = jax.__version__
        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = [d.device_kind for d in jax.devices()]
    except Exception as exc:  # noqa: BLE001
        info["jax"] = f"unavailable: {exc}"
    try:
        import pyscf

        info["pyscf"] = pyscf.__version__
    except Exception:  # noqa: BLE001
        pass
    return info


def collect() -> dict:
    """The facts `doctor` prints, as a dict: versions (None = not installed),
    JAX devices and backend, whether x64 is on, the 3Dmol.js source, smoke mode."""
    import qpt_nb

    info = dict(
        qpt_nb=qpt_nb.__version__,
        python=platform.python_version(),
        platform=platform.platform(terse=True),
        versions={dist: _version(dist, mod) for dist, mod in PACKAGES},
    )
    try:
        import jax

        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = [
            f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()
        ]
        info["x64"] = bool(jax.config.jax_enable_x64)
        import jax.numpy as jnp

        info["default_float"] = str(jnp.zeros(()).dtype)
    except Exception as exc:  # pragma: no cover - broken jax
        info["jax_error"] = f"{type(exc).__name__}: {exc}"
    try:
        from qpt_nb.viz.threedmol import get_3dmol_js

        src = get_3dmol_js()
        info["3dmol_js"] = src["path"] if src["kind"] == "inline" else src["url"]
        info["3dmol_js_kind"] = src["kind"]
    except Exception as exc:
        info["3dmol_js"] = f"error: {exc}"
        info["3dmol_js_kind"] = "error"
    from qpt_nb.settings import smoke_mode

    info["smoke_mode"] = smoke_mode()
    machine = machine_info()
    info.update(cpu_count=machine["cpu_count"], cpu_model=machine["cpu_model"])
    return info


def doctor(file=None) -> dict:
    """Prints package versions (jax, jaxlib, dm-haiku, pyscf, ipywidgets,
    jupyterlab_widgets, py3Dmol, ...), the JAX devices and whether float64 (x64)
    is on, plus hints for what is missing.  Returns the `collect` dict."""
    out = file or sys.stdout
    info = collect()
    w = 22
    print(f"qpt_nb {info['qpt_nb']} doctor", file=out)
    print(f"  {'python':{w}s}{info['python']} ({info['platform']}, {info['cpu_count']} CPUs)", file=out)
    for dist, ver in info["versions"].items():
        print(f"  {dist:{w}s}{ver if ver else 'NOT INSTALLED'}", file=out)
    if "jax_error" in info:
        print(f"  {'JAX':{w}s}ERROR {info['jax_error']}", file=out)
    else:
        print(f"  {'JAX backend':{w}s}{info['jax_backend']}", file=out)
        print(f"  {'JAX devices':{w}s}{', '.join(info['jax_devices'])}", file=out)
        print(
            f"  {'x64 (float64)':{w}s}{'on' if info['x64'] else 'OFF'} "
            f"(default float {info['default_float']})",
            file=out,
        )
    print(f"  {'3Dmol.js':{w}s}{info['3dmol_js_kind']}: {info['3dmol_js']}", file=out)
    print(f"  {'smoke mode':{w}s}{'on (QPT_NB_SMOKE)' if info['smoke_mode'] else 'off'}", file=out)
    hints = []
    v = info["versions"]
    if not v.get("ipywidgets") or not v.get("jupyterlab_widgets"):
        hints.append("widgets need ipywidgets>=8 and jupyterlab_widgets: pip install 'qpt_nb[notebook]'")
    if not v.get("py3Dmol"):
        hints.append("3D views need py3Dmol: pip install py3Dmol")
    if info.get("x64") is False:
        hints.append("float64 is off: import qpt_nb before creating any JAX array")
    if info["3dmol_js_kind"] == "url" and info["3dmol_js"].startswith("https://cdn"):
        hints.append(
            "3D views load 3Dmol.js from a CDN; offline, set QPT_NB_3DMOL_JS to a local "
            "3Dmol-min.js (static slice images are shown meanwhile)"
        )
    for h in hints:
        print(f"  hint: {h}", file=out)
    return info
