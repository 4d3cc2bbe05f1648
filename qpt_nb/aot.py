"""Ahead-of-time compiled JAX functions, cached: the one cache of `jit(...).lower().compile()`.

`jax.jit` caches by itself, but only once a call has traced and compiled. Two paths need
the compiled executable in hand: the SCF device loop compiles in a background thread while
the integrals are computed (`qpt_nb.dft.scf_device.compile_in_background`), and
`qpt_nb.analysis.predict` reports the seconds spent compiling apart from the seconds spent
predicting. Both keep their executables here, keyed by the jitted function, its static
arguments and the shapes and dtypes of its array arguments (so ``jax.ShapeDtypeStruct``
placeholders and real arrays of the same shapes share an entry).

    >>> import jax.numpy as jnp
    >>> cache = AheadOfTime(size=4)
    >>> f = jax.jit(lambda x, n: x * n, static_argnames="n")
    >>> exe, seconds = cache.compile(f, jnp.ones(3), n=2)      # compiles
    >>> cache.compile(f, jnp.zeros(3), n=2)[1]                  # cached: no seconds spent
    0.0
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Optional

import jax

__all__ = ["AheadOfTime"]


def _spec(x):
    """(shape, dtype) of an array, a ShapeDtypeStruct or a Python/NumPy scalar."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape), str(x.dtype)
    return (), type(x).__name__


class AheadOfTime:
    """An LRU cache (at most `size` entries, thread-safe) of compiled executables."""

    def __init__(self, size: int = 16):
        self.size = int(size)
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(fn, args: tuple, static: dict) -> tuple:
        """The cache key of ``fn(*args, **static)``: the function, the static keyword
        arguments, the pytree structure and each leaf's shape and dtype."""
        leaves, tree = jax.tree_util.tree_flatten(args)
        return (fn, tuple(sorted(static.items())), tree, tuple(_spec(x) for x in leaves))

    def get(self, fn, *args, **static) -> Optional[Any]:
        """The compiled executable for these shapes, or None."""
        k = self.key(fn, args, static)
        with self._lock:
            exe = self._cache.get(k)
            if exe is not None:
                self._cache.move_to_end(k)
            return exe

    def compile(self, fn, *args, **static):
        """(compiled `fn` for these argument shapes and statics, seconds spent compiling
        now: 0.0 when it was cached). `fn` must be a ``jax.jit``-wrapped function whose
        static arguments are passed as keywords."""
        exe = self.get(fn, *args, **static)
        if exe is not None:
            return exe, 0.0
        t0 = time.perf_counter()
        exe = fn.lower(*args, **static).compile()
        seconds = time.perf_counter() - t0
        with self._lock:
            self._cache[self.key(fn, args, static)] = exe
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return exe, seconds

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._cache

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
