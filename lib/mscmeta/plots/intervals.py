"""Interval plots: one row per analysis (sensitivity analyses, models for sparse data) or
per step (cumulative meta-analysis), each an estimate with its confidence (or credible)
interval.

Both take a tidy table and read the columns named in their docstrings; ratio measures
(OR, RR) are drawn on a log axis (:func:`mscmeta.plots.axes.log_ratio_axis`). Only rows
on the scale of the axis are drawn: a row of another effect measure (an RR beside a
primary OR) keeps its label and its value in the right-hand column but no mark on the
axis. The points are drawn with seaborn on the bundle's theme
(:func:`mscmeta.plots.style.use_style`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

import seaborn as sns

from mscmeta.plots import style
from mscmeta.plots.axes import log_ratio_axis, ratio_limits

RATIO_SCALE = ("OR", "RR")


def _same_scale(table: pd.DataFrame, measure: str) -> pd.Series:
    """Rows on the axis' scale: the same effect measure only (an OR axis is not an RR axis)."""
    return table["measure"] == measure


def _difference_axis(ax, table: pd.DataFrame, same_scale: pd.Series) -> None:
    vals = table.loc[same_scale, ["ci_low", "ci_high"]].to_numpy(float)
    vals = np.append(vals[np.isfinite(vals)], 0.0)
    pad = 0.08 * max(float(vals.max() - vals.min()), 1e-3)
    ax.set_xlim(float(vals.min()) - pad, float(vals.max()) + pad)


def _draw_sensitivity_rows(ax, table: pd.DataFrame, same_scale: pd.Series, primary_measure: str, text_at) -> None:
    drawn = []
    for y, r, ok in zip(np.arange(len(table)), table.itertuples(index=False), same_scale, strict=True):
        if ok and np.isfinite(r.estimate):
            colour = style.POOLED_COLOUR if r.group == "primary" else style.MSC_COLOUR
            ax.plot([r.ci_low, r.ci_high], [y, y], color=colour, lw=0.8)
            drawn.append({"y": y, "estimate": r.estimate, "kind": "primary" if r.group == "primary" else "analysis"})
        else:
            why = f"{r.measure}: other scale, not drawn" if not ok else "not estimable"
            ax.text(0.5, y, why, fontsize=5.5, color=style.GREY, va="center", ha="center", transform=text_at)
    if drawn:
        sns.scatterplot(data=pd.DataFrame(drawn), x="estimate", y="y", style="kind", markers={"primary": "D", "analysis": "o"},
                        hue="kind", palette={"primary": style.POOLED_COLOUR, "analysis": style.MSC_COLOUR}, s=14,
                        linewidth=0, legend=False, ax=ax, zorder=3)


def _value_column(ax, table: pd.DataFrame, text_at, with_k: str, primary_measure: str | None = None) -> None:
    for y, r in enumerate(table.itertuples(index=False)):
        txt = f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.estimate) else "not estimable"
        txt = txt.replace("-0.00", "0.00")
        if primary_measure is not None and getattr(r, "measure", primary_measure) != primary_measure:
            txt = f"{r.measure} {txt}"
        if with_k == "always" or np.isfinite(r.estimate):
            txt = f"{txt}  k = {int(r.k)}"
        ax.text(1.02, y, txt, transform=text_at, fontsize=5.5, va="center", ha="left")


def _row_labels(ax, labels: list[str], n: int) -> None:
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_ylabel("")
    ax.tick_params(axis="y", length=0)


def sensitivity_plot(table: pd.DataFrame, width: float = style.PAGE_WIDTH) -> Figure:
    """Summary plot of sensitivity analyses: one row each, estimate with CI.

    Reads ``group`` (``"primary"`` for the primary analysis), ``analysis``, ``measure``,
    ``estimate``, ``ci_low``, ``ci_high`` (ratio scale for OR/RR) and ``k``. The primary
    analysis is drawn as a vertical dashed line with its CI shaded; rows of another effect
    measure (an RR or RD beside a primary OR) are listed with their value but not drawn.
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
    _value_column(ax, table, text_at, with_k="always", primary_measure=primary["measure"])
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
    points = []
    for y, r in enumerate(table.itertuples(index=False)):
        if np.isfinite(r.estimate):
            ax.plot([r.ci_low, r.ci_high], [y, y], color=style.MSC_COLOUR, lw=0.8)
            points.append({"y": y, "estimate": r.estimate})
    if points:
        sns.scatterplot(data=pd.DataFrame(points), x="estimate", y="y", color=style.MSC_COLOUR, s=10, linewidth=0,
                        legend=False, ax=ax, zorder=3)
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
    points = []
    for y, r in enumerate(table.itertuples(index=False)):
        if not np.isfinite(r.estimate):
            ax.text(0.5, y, "not estimable", fontsize=5.5, color=style.GREY, va="center", ha="center", transform=text_at)
            continue
        primary = r.group == "primary"
        ax.plot([r.ci_low, r.ci_high], [y, y], color=style.POOLED_COLOUR if primary else style.MSC_COLOUR, lw=0.8)
        points.append({"y": y, "estimate": r.estimate, "kind": "primary" if primary else str(r.family)})
        if primary:
            ax.axvspan(r.ci_low, r.ci_high, color=style.GREY, alpha=0.15, lw=0)
    if points:
        kinds = sorted({p["kind"] for p in points})
        sns.scatterplot(data=pd.DataFrame(points), x="estimate", y="y", style="kind", hue="kind", s=14, linewidth=0,
                        markers={k: "D" if k == "primary" else FAMILY_MARKERS.get(k, "o") for k in kinds},
                        palette={k: style.POOLED_COLOUR if k == "primary" else style.MSC_COLOUR for k in kinds},
                        legend=False, ax=ax, zorder=3)
    ax.axvline(1.0, color="black", lw=0.6)
    measure = str(table["measure"].iloc[0]) if n else "OR"
    log_ratio_axis(ax, *ratio_limits(table[["ci_low", "ci_high"]].to_numpy(float)))
    ax.set_xlabel(f"{measure} (log scale; circles: MH/Peto, squares: GLMMs, triangles: Bayesian credible intervals)")
    _value_column(ax, table, text_at, with_k="estimable")
    _row_labels(ax, [str(m) for m in table["model"]], n)
    fig.tight_layout()
    return fig
