"""Environment variables: the one place each is read, with one meaning each.

=========================  ===========================================================
``QPT_NB_SMOKE``           Smoke mode: any value but '', '0', 'false', 'no', 'off'
                           shrinks step counts (notebooks, ``qpt-nb demo``, tests).
``QPT_NB_CACHE``           Root of qpt_nb's disk caches (default ``~/.cache/qpt_nb``):
                           PySCF labels in ``labels/``, Hessians in ``hessians/``.
``QPT_NB_JAX_CACHE``       JAX persistent compilation cache folder (default
                           ``$QPT_NB_CACHE/jax``); '0'/'off' disables it.
``QPT_NB_LABEL_THREADS``   OpenMP threads for PySCF labels (default: half the cores).
``QPT_NB_TBLITE_THREADS``  OpenMP threads for GFN2-xTB in the MD sampler (default 1).
``QPT_NB_3DMOL_JS``        Path or URL of 3Dmol.js for offline notebooks.
=========================  ===========================================================

Functions here read the environment when called (never at import), so a test or a
notebook can change a variable and see the effect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

SMOKE_ENV = "QPT_NB_SMOKE"
CACHE_ENV = "QPT_NB_CACHE"
JAX_CACHE_ENV = "QPT_NB_JAX_CACHE"
LABEL_THREADS_ENV = "QPT_NB_LABEL_THREADS"
TBLITE_THREADS_ENV = "QPT_NB_TBLITE_THREADS"
THREEDMOL_JS_ENV = "QPT_NB_3DMOL_JS"

# A compile shorter than this is not written to the persistent cache (seconds).
COMPILE_CACHE_MIN_SECONDS = 0.5

_FALSE = ("", "0", "false", "no", "off")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSE


def smoke_mode() -> bool:
    """True when ``QPT_NB_SMOKE`` is set to anything but '', '0', 'false', 'no', 'off'."""
    return _flag(SMOKE_ENV)


def steps(full, smoke):
    """``smoke`` in smoke mode (``QPT_NB_SMOKE=1``, the notebook tests), else ``full``.

    Works for any value: step counts, test-set sizes, molecule lists.
    Example: ``trainer.run(steps(2000, 5))``.
    """
    return smoke if smoke_mode() else full


def cache_root() -> Path:
    """``$QPT_NB_CACHE`` if set, else ``~/.cache/qpt_nb``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "qpt_nb"


def cache_dir(kind: str) -> Path:
    """The cache folder of one kind of data: ``cache_root() / kind`` ('labels', 'hessians')."""
    return cache_root() / kind


def label_threads() -> int:
    """OpenMP threads for PySCF labels: ``$QPT_NB_LABEL_THREADS``, else half the cores.

    On a small shared machine (2 cores, JAX training beside it) PySCF's default of
    all cores oversubscribes them: water/STO-3G took 2 s instead of 0.08 s."""
    env = os.environ.get(LABEL_THREADS_ENV, "").strip()
    if env:
        try:
            return max(int(env), 1)
        except ValueError:
            raise ValueError(f"{LABEL_THREADS_ENV} must be an integer, got {env!r}.") from None
    return max((os.cpu_count() or 1) // 2, 1)


def tblite_threads() -> str:
    """OpenMP threads for tblite (GFN2-xTB): ``$QPT_NB_TBLITE_THREADS``, default '1'."""
    return os.environ.get(TBLITE_THREADS_ENV, "").strip() or "1"


def threedmol_js() -> Optional[str]:
    """``$QPT_NB_3DMOL_JS`` (a path or URL of 3Dmol.js) or None."""
    return os.environ.get(THREEDMOL_JS_ENV, "").strip() or None


def jax_cache_dir() -> Optional[Path]:
    """The compilation-cache folder ``$QPT_NB_JAX_CACHE`` (default ``cache_root()/jax``),
    or None when the variable is '0', 'off', 'no' or 'false'."""
    env = os.environ.get(JAX_CACHE_ENV, "").strip()
    if env.lower() in _FALSE[1:]:
        return None
    return Path(env).expanduser() if env else cache_root() / "jax"


def enable_compile_cache(path=None) -> Optional[str]:
    """Turns on JAX's persistent compilation cache (the CLI and `setup_notebook` call it).

    A second process that compiles the same functions for the same shapes loads them
    from disk (water/STO-3G training: ~25 s -> ~5 s of compiling). `path` overrides
    `jax_cache_dir()`; a folder already configured in JAX is kept. Returns the folder
    in use, or None (disabled, unwritable, or an older JAX).
    """
    import jax

    folder = Path(path).expanduser() if path is not None else jax_cache_dir()
    if folder is None:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    try:
        folder.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", COMPILE_CACHE_MIN_SECONDS)
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()  # re-read the folder even after earlier compiles
    except Exception:  # unwritable folder or an older JAX: no cache
        return None
    return str(folder)
