"""Interval plots: one row per analysis (sensitivity analyses, models for sparse data) or
per step (cumulative meta-analysis), each an estimate with its confidence (or credible)
interval.

Both take a tidy table and read the columns named in their docstrings; ratio measures
(OR, RR) are drawn on a log axis (:func:`mscmeta.plots.axes.log_ratio_axis`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from mscmeta.plots import style
from mscmeta.plots.axes import log_ratio_axis, ratio_limits

RATIO_SCALE = ("OR", "RR")


def _same_scale(table: pd.DataFrame, measure: str) -> pd.Series:
    return table["measure"].isin(list(RATIO_SCALE)) if measure in RATIO_SCALE else table["measure"] == measure


def _difference_axis(ax, table: pd.DataFrame, same_scale: pd.Series) -> None:
    vals = table.loc[same_scale, ["ci_low", "ci_high"]].to_numpy(float)
    vals = np.append(vals[np.isfinite(vals)], 0.0)
    pad = 0.08 * max(float(vals.max() - vals.min()), 1e-3)
    ax.set_xlim(float(vals.min()) - pad, float(vals.max()) + pad)


def _draw_sensitivity_rows(ax, table: pd.DataFrame, same_scale: pd.Series, primary_measure: str, text_at) -> None:
    for y, r, ok in zip(np.arange(len(table)), table.itertuples(index=False), same_scale, strict=True):
        if ok and np.isfinite(r.estimate):
            colour = style.POOLED_COLOUR if r.group == "primary" else style.MSC_COLOUR
            marker = "D" if r.group == "primary" else ("o" if r.measure == primary_measure else "s")
            ax.plot([r.ci_low, r.ci_high], [y, y], color=colour, lw=0.8)
            ax.plot([r.estimate], [y], marker=marker, color=colour, ms=3.5)
        else:
            why = "other scale" if not ok else "not estimable"
            ax.text(0.5, y, why, fontsize=5.5, color=style.GREY, va="center", ha="center", transform=text_at)


def _value_column(ax, table: pd.DataFrame, text_at, with_k: str) -> None:
    for y, r in enumerate(table.itertuples(index=False)):
        txt = f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.estimate) else "not estimable"
        if with_k == "always" or np.isfinite(r.estimate):
            txt = f"{txt}  k = {int(r.k)}"
        ax.text(1.02, y, txt, transform=text_at, fontsize=5.5, va="center", ha="left")


def _row_labels(ax, labels: list[str], n: int) -> None:
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)


def sensitivity_plot(table: pd.DataFrame, width: float = style.PAGE_WIDTH) -> Figure:
    """Summary plot of sensitivity analyses: one row each, estimate with CI.

    Reads ``group`` (``"primary"`` for the primary analysis), ``analysis``, ``measure``,
    ``estimate``, ``ci_low``, ``ci_high`` (ratio scale for OR/RR) and ``k``. The primary
    analysis is drawn as a vertical dashed line with its CI shaded; rows on a different
    scale (e.g. RD when the primary is a ratio) are listed but not drawn.
    """
    primary = table[table["group"] == "primary"].iloc[0]
    ratio = primary["measure"] in RATIO_SCALE
    same_scale = _same_scale(table, primary["measure"])
    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.55 + 0.16 * n))
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    _draw_sensitivity_rows(ax, table, same_scale, primary["measure"], text_at)
    if np.isfinite(primary["estimate"]):
        ax.axvspan(primary["ci_low"], primary["ci_high"], color=style.GREY, alpha=0.15, lw=0)
        ax.axvline(primary["estimate"], color=style.POOLED_COLOUR, lw=0.6, ls="--")
    ax.axvline(1.0 if ratio else 0.0, color="black", lw=0.6)
    if ratio:
        log_ratio_axis(ax, *ratio_limits(table.loc[same_scale, ["ci_low", "ci_high"]].to_numpy(float)))
        ax.set_xlabel(f"{primary['measure']} (log scale; primary {primary['measure']} dashed, its CI shaded)")
    else:
        _difference_axis(ax, table, same_scale)
        ax.set_xlabel(f"{primary['measure']} (primary dashed, its CI shaded)")
    _value_column(ax, table, text_at, with_k="always")
    labels = [f"{r.group}: {r.analysis}" if r.group != "primary" else "PRIMARY ANALYSIS" for r in table.itertuples(index=False)]
    _row_labels(ax, labels, n)
    fig.tight_layout()
    return fig


def cumulative_plot(table: pd.DataFrame, measure: str, width: float = style.PAGE_WIDTH * 0.8) -> Figure:
    """Cumulative estimates with CIs, one row per added study (top = earliest).

    Reads ``label``, ``pub_date``, ``estimate``, ``ci_low``, ``ci_high`` (ratio scale for
    OR/RR) and ``k``.
    """
    ratio = measure in RATIO_SCALE
    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.6 + 0.17 * max(n, 1)))
    for y, r in enumerate(table.itertuples(index=False)):
        if np.isfinite(r.estimate):
            ax.plot([r.ci_low, r.ci_high], [y, y], color=style.MSC_COLOUR, lw=0.8)
            ax.plot([r.estimate], [y], "o", color=style.MSC_COLOUR, ms=3)
    ax.axvline(1.0 if ratio else 0.0, color="black", lw=0.6)
    if ratio:
        log_ratio_axis(ax, *ratio_limits(table[["ci_low", "ci_high"]].to_numpy(float)))
        ax.set_xlabel(f"Cumulative {measure} (log scale)")
    else:
        ax.set_xlabel(f"Cumulative {measure}")
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    _value_column(ax, table, text_at, with_k="estimable")
    _row_labels(ax, [f"+ {r.label} ({r.pub_date})" for r in table.itertuples(index=False)], n)
    fig.tight_layout()
    return fig


#: Marker of each model family in :func:`model_comparison_plot`.
FAMILY_MARKERS: dict[str, str] = {"Mantel-Haenszel": "o", "Peto": "o", "GLMM": "s", "exact conditional": "s",
                                  "Bayesian": "^"}


def model_comparison_plot(table: pd.DataFrame, width: float = style.PAGE_WIDTH * 0.8) -> Figure:
    """The pooled ratio under several models, one row each (top = first row), on a log axis.

    Reads ``model``, ``family`` (marker: :data:`FAMILY_MARKERS`), ``group`` (``"primary"``
    drawn as a diamond, its interval shaded behind all rows), ``measure``, ``estimate``,
    ``ci_low``, ``ci_high`` (ratio scale), ``interval`` (e.g. "95% CI", "95% CrI") and ``k``.
    """
    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.6 + 0.17 * max(n, 1)))
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    for y, r in enumerate(table.itertuples(index=False)):
        if not np.isfinite(r.estimate):
            ax.text(0.5, y, "not estimable", fontsize=5.5, color=style.GREY, va="center", ha="center", transform=text_at)
            continue
        primary = r.group == "primary"
        colour = style.POOLED_COLOUR if primary else style.MSC_COLOUR
        ax.plot([r.ci_low, r.ci_high], [y, y], color=colour, lw=0.8)
        ax.plot([r.estimate], [y], marker="D" if primary else FAMILY_MARKERS.get(r.family, "o"), color=colour, ms=3.5)
        if primary:
            ax.axvspan(r.ci_low, r.ci_high, color=style.GREY, alpha=0.15, lw=0)
    ax.axvline(1.0, color="black", lw=0.6)
    measure = str(table["measure"].iloc[0]) if n else "OR"
    log_ratio_axis(ax, *ratio_limits(table[["ci_low", "ci_high"]].to_numpy(float)))
    ax.set_xlabel(f"{measure} (log scale; circles: MH/Peto, squares: GLMMs, triangles: Bayesian credible intervals)")
    _value_column(ax, table, text_at, with_k="estimable")
    _row_labels(ax, [str(m) for m in table["model"]], n)
    fig.tight_layout()
    return fig
