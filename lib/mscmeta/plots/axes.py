"""Axis helpers shared by every figure: ticks on ratio axes, tick labels, message figures.

Written once here; the figures choose their candidate tick sets (RevMan's forest offers
its own scales) but set and label them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from mscmeta.plots.style import COLUMN_WIDTH

#: Round ratios offered on the log axis of interval plots (sensitivity, cumulative).
RATIO_TICKS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 100, 1000)


def tick_label(value: float) -> str:
    """Shortest decimal form (``%g``) with a typographic minus sign."""
    return f"{value:g}".replace("-", "\u2212")


def ticks_within(candidates: Iterable[float], lo: float, hi: float, slack: float = 0.0) -> list[float]:
    """The candidates between *lo* and *hi* (each widened by the relative *slack*)."""
    return [t for t in candidates if lo * (1 - slack) <= t <= hi * (1 + slack)]


def set_ticks(ax, ticks: Sequence[float], fontsize: float | None = None) -> None:
    """Fixed x ticks at *ticks*, labelled by :func:`tick_label`, no minor ticks."""
    ax.set_xticks(list(ticks))
    ax.set_xticklabels([tick_label(t) for t in ticks], **({} if fontsize is None else {"fontsize": fontsize}))
    ax.xaxis.set_minor_locator(NullLocator())


def ratio_limits(values: np.ndarray, at_least: tuple[float, float] = (0.5, 2.0),
                 bounds: tuple[float, float] = (1e-3, 1e3)) -> tuple[float, float]:
    """Limits of a ratio axis that show every finite positive value, at least *at_least*,
    within *bounds* (0.1-10 when there is nothing to show)."""
    finite = values[np.isfinite(values) & (values > 0)]
    lo = min(at_least[0], float(finite.min())) if finite.size else 0.1
    hi = max(at_least[1], float(finite.max())) if finite.size else 10.0
    return max(lo, bounds[0]), min(hi, bounds[1])


def log_ratio_axis(ax, lo: float, hi: float) -> None:
    """A log x axis from *lo* to *hi* (padded by 10%) with the :data:`RATIO_TICKS` inside."""
    ax.set_xscale("log")
    ticks = ticks_within(RATIO_TICKS, lo, hi, slack=0.001)
    ax.set_xlim(lo * 0.9, hi * 1.1)
    set_ticks(ax, ticks)


def message_figure(text: str, width: float = COLUMN_WIDTH) -> Figure:
    """A small figure carrying only *text* (when a plot cannot be drawn, e.g. nothing estimable)."""
    fig, ax = plt.subplots(figsize=(width, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig
