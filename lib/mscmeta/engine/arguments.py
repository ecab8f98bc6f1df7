"""Checks of numeric arguments (levels, fractions, choices) for the sequential-analysis and
GRADE modules; every message is one line naming the parameter and the value given.

Data tables are validated by :mod:`mscmeta.engine.validation`; these helpers check the
scalar and vector *arguments* of a call (``alpha``, ``power``, information fractions, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mscmeta.engine.validation import DataError

__all__ = ["check_open_unit", "check_nonnegative_fraction", "check_choice", "as_finite_1d", "check_fractions"]


def _show(value: Any) -> str:
    """Short, one-line representation of a value for an error message."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def check_open_unit(name: str, value: Any) -> float:
    """``value`` as a float if it lies in the open interval (0, 1), else :class:`DataError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number in (0, 1), got {_show(value)}") from None
    if not 0.0 < number < 1.0:
        raise DataError(f"{name} must be in (0, 1), got {_show(value)}")
    return number


def check_nonnegative_fraction(name: str, value: Any) -> float:
    """``value`` as a float if it lies in [0, 1), else :class:`DataError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number in [0, 1), got {_show(value)}") from None
    if not 0.0 <= number < 1.0:
        raise DataError(f"{name} must be in [0, 1), got {_show(value)}")
    return number


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else :class:`DataError` listing them."""
    allowed = tuple(choices)
    if value not in allowed:
        raise DataError(f"{name} must be one of {allowed}, got {_show(value)}")
    return value


def as_finite_1d(name: str, values: Any, *, allow_nan: bool = False) -> np.ndarray:
    """A non-empty 1-D float array (a copy), rejecting infinities (and NaN unless allowed)."""
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numeric, got {_show(values)}") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D sequence, got {_show(values)}")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        raise DataError(f"{name} must be finite, got {_show(values)}")
    return array


def check_fractions(name: str, values: Any) -> np.ndarray:
    """Positive, strictly increasing, finite 1-D array (information fractions or information)."""
    array = as_finite_1d(name, values)
    if (array <= 0).any():
        raise DataError(f"{name} must be > 0, got {_show(values)}")
    if (np.diff(array) <= 0).any():
        raise DataError(f"{name} must be strictly increasing, got {_show(values)}")
    return array
