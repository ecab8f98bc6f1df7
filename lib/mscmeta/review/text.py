"""Number formats of the review's generated prose (one place, so every report reads the same)."""

from __future__ import annotations

import numpy as np


def _num(x: float, digits: int) -> str:
    """*x* with *digits* decimals, never a negative zero."""
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    if not np.isfinite(est):
        return "not estimable"
    return f"{_num(est, digits)} (95% CI {_num(lo, digits)} to {_num(hi, digits)})"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "P not defined"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"
