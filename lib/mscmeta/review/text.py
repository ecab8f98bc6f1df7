"""Number formats of the review's generated prose (one place, so every report reads the same)."""

from __future__ import annotations

import numpy as np


def fmt_ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    if not np.isfinite(est):
        return "not estimable"
    return f"{est:.{digits}f} (95% CI {lo:.{digits}f} to {hi:.{digits}f})"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "P not defined"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"
