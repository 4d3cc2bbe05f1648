"""Argument checks for integers and ranges: the one place they are written.

Every user-facing setting that must be a whole number (grid levels, step counts, batch
sizes, seeds, worker counts) or a number in a range (learning rates, mixing weights) goes
through `check_int` or `check_number`, so that every bad value gets the same kind of
one-line message naming the setting, before any JAX tracing starts.

The error raised for a value of the wrong type is `InvalidSetting`, which is both a
`TypeError` and a `ValueError` (as NumPy's ``AxisError`` is both a ValueError and an
IndexError): callers may catch either. A value of the right type outside its range
raises ValueError.

    >>> check_int(3, "grid_level", low=0, high=9)
    3
    >>> check_int(2.5, "reuse", low=1)
    Traceback (most recent call last):
    ...
    qpt_nb.validate.InvalidSetting: reuse must be an integer >= 1, got 2.5
"""

from __future__ import annotations

import math
import operator
from typing import Optional

import numpy as np

__all__ = ["InvalidSetting", "check_int", "check_number"]


class InvalidSetting(TypeError, ValueError):
    """A setting of the wrong type (a float, a bool or a string where an integer belongs)."""


def _range_text(low, high, low_inclusive=True) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>=' if low_inclusive else '>'} {low}"
    if low is None:
        return f" <= {high}"
    if low == high:
        return f" equal to {low}"
    return f" in {low}..{high}" if low_inclusive else f" > {low} and <= {high}"


def check_int(
    value, what: str, *, low: Optional[int] = None, high: Optional[int] = None, hint: str = ""
) -> int:
    """`value` as a Python int in ``[low, high]`` (either bound None: open).

    Accepts Python and NumPy integers (and integral objects with ``__index__``); refuses
    bools, floats (also 3.0), strings and traced values with `InvalidSetting`, and values
    out of range with ValueError. `hint` is appended to the message (a reason or advice).
    """
    rng = _range_text(low, high)
    if isinstance(value, (bool, np.bool_)):
        raise InvalidSetting(f"{what} must be an integer{rng}{hint}, got {value!r}")
    try:
        iv = int(operator.index(value))
    except TypeError:
        raise InvalidSetting(f"{what} must be an integer{rng}{hint}, got {value!r}") from None
    if (low is not None and iv < low) or (high is not None and iv > high):
        raise ValueError(f"{what} must be{rng}{hint}, got {iv}")
    return iv


def check_number(
    value,
    what: str,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_inclusive: bool = True,
    hint: str = "",
) -> float:
    """`value` as a finite float in its range: ``low <= value`` (``low < value`` when not
    `low_inclusive`) and ``value <= high``. `InvalidSetting` for a non-number (a bool, a
    string), ValueError for NaN, infinity or out of range."""
    rng = _range_text(low, high, low_inclusive)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidSetting(f"{what} must be a number{rng}{hint}, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v >= low if low_inclusive else v > low
    if ok and high is not None:
        ok = v <= high
    if not ok:
        raise ValueError(f"{what} must be finite{' and' + rng if rng else ''}{hint}, got {value}")
    return v
