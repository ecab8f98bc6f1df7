"""Cumulative forest by publication date, with reference points beside it.

One row per added study (top = earliest): its label and publication date on the left, the
running pooled estimate with its confidence interval in the middle (log axis for ratios),
the estimate, interval and number of pooled studies on the right. A dashed rule marks a
date between two rows (e.g. when the review being updated was published). Under the
cumulative rows, reference points -- pooled results published by other syntheses, each in
its own measure -- are drawn as hollow diamonds in a separate block, so the two kinds of
number are never read as one series.

:func:`cumulative_forest` takes tidy tables (the review decides what goes in them).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from mscmeta.plots import style
from mscmeta.plots.axes import log_ratio_axis, ratio_limits

_RUNNING = {"marker": "s", "ms": 3.5, "color": style.MSC_COLOUR}
_REFERENCE = {"marker": "D", "ms": 4.0, "mfc": "white", "color": style.GREY}


def _value_text(estimate: float, low: float, high: float, suffix: str) -> str:
    if not np.isfinite(estimate):
        return "not estimable" + suffix
    return f"{estimate:.2f} [{low:.2f}, {high:.2f}]{suffix}"


def _draw_interval(ax, y: float, row, kind: dict) -> None:
    if np.isfinite(row.estimate):
        ax.plot([row.ci_low, row.ci_high], [y, y], color=kind["color"], lw=0.9)
        ax.plot([row.estimate], [y], linestyle="none", **kind)


def _block(ax, rows: pd.DataFrame, start: int, kind: dict, text_at, suffix) -> list[str]:
    labels = []
    for i, row in enumerate(rows.itertuples(index=False)):
        _draw_interval(ax, start + i, row, kind)
        ax.text(1.02, start + i, _value_text(row.estimate, row.ci_low, row.ci_high, suffix(row)),
                transform=text_at, fontsize=5.5, va="center", ha="left")
        labels.append(row.label)
    return labels


def _marker(ax, y: float, text: str, text_at) -> None:
    ax.axhline(y, color=style.CONTROL_COLOUR, lw=0.8, ls="--")
    ax.text(0.01, y - 0.12, text, transform=text_at, fontsize=5.5, color=style.CONTROL_COLOUR, va="bottom")


def cumulative_forest(
    table: pd.DataFrame,
    references: pd.DataFrame | None = None,
    *,
    measure: str = "OR",
    marker_before: int | None = None,
    marker_label: str = "",
    reference_title: str = "Published pooled results (as printed)",
    title: str | None = None,
    width: float = style.PAGE_WIDTH,
) -> Figure:
    """Draw the cumulative forest.

    Parameters
    ----------
    table : DataFrame
        One row per step, in order: ``label`` (e.g. "+ Bowdish 2023 (2023-02-01)"),
        ``estimate``, ``ci_low``, ``ci_high`` (ratio scale for ratio measures) and ``k``.
    references : DataFrame, optional
        Reference points: ``label``, ``measure``, ``estimate``, ``ci_low``, ``ci_high``.
    measure : str
        Measure of the cumulative estimates ("OR", "RR" on a log axis; else linear).
    marker_before : int, optional
        Draw the dashed date rule above this row of *table* (``len(table)`` = below the last).
    marker_label : str
        Text of the rule.
    reference_title : str
        Heading of the reference block.

    Returns
    -------
    matplotlib.figure.Figure
    """
    references = references if references is not None else pd.DataFrame(
        columns=["label", "measure", "estimate", "ci_low", "ci_high"])
    n, m = len(table), len(references)
    gap = 1 if m else 0
    rows = n + gap + m
    fig, ax = plt.subplots(figsize=(width, 0.8 + 0.19 * max(rows, 1)))
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    labels = _block(ax, table, 0, _RUNNING, text_at, lambda r: f"  k = {int(r.k)}" if np.isfinite(r.estimate) else "")
    if m:
        labels.append(reference_title)
        labels += _block(ax, references, n + gap, _REFERENCE, text_at, lambda r: f"  {r.measure}")
    ratio = measure in ("OR", "RR")
    ax.axvline(1.0 if ratio else 0.0, color="black", lw=0.6)
    values = pd.concat([table[["ci_low", "ci_high"]], references[["ci_low", "ci_high"]]]).to_numpy(float)
    if ratio:
        log_ratio_axis(ax, *ratio_limits(values, at_least=(0.1, 2.0)))
    ax.set_xlabel(f"Cumulative {measure} (95% CI)" + (", log scale" if ratio else "")
                  + ("; reference points in their own measure" if m else ""))
    if marker_before is not None:
        _marker(ax, marker_before - 0.5, marker_label, text_at)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(labels, fontsize=6)
    if m:
        ax.get_yticklabels()[n].set_fontweight("bold")
    ax.set_ylim(rows - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig
