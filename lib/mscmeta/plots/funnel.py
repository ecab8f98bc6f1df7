"""Contour-enhanced funnel plots (Peters JL et al., J Clin Epidemiol 2008;61:991-996).

Each study is plotted at its effect estimate (x, analysis scale: log OR / log RR / RD)
against its standard error (y, inverted so that large studies are at the top), as
metafor's ``funnel(res, level=c(90, 95, 99), shade=..., refline=0)`` does. The lines
come from :func:`mscmeta.engine.bias.funnel_contours`. The shaded contours mark where a
study's two-sided Wald test against the null (effect 0 on the analysis scale) is
significant: p < 0.01, 0.01 ≤ p < 0.05, 0.05 ≤ p < 0.10 (white: p ≥ 0.10). The pooled
estimate is drawn as a vertical line with its pseudo 95% confidence limits
(estimate ± 1.96·SE), the classical funnel.

The x axis is labelled on the ratio scale for OR and RR (ticks at round ratios), and
the figure carries a caveat when fewer than 10 studies contribute: the Cochrane
Handbook (v6, §13.3.5.4) advises against asymmetry assessments with fewer.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from mscmeta.engine.bias import funnel_contours
from mscmeta.plots import style
from mscmeta.plots.axes import tick_label

#: Significance levels of the contours (two-sided p; metafor ``level=c(90, 95, 99)``).
CONTOUR_LEVELS = (0.10, 0.05, 0.01)
#: Shades from the smallest p (darkest) to the largest level.
CONTOUR_SHADES = ("#9E9E9E", "#C4C4C4", "#E6E6E6")
#: Fewest studies for a meaningful funnel-plot asymmetry assessment (Cochrane Handbook v6 §13.3.5.4).
MIN_STUDIES_FOR_TESTS = 10


def funnel_points(result) -> pd.DataFrame:
    """Studies that enter the funnel plot: finite estimate and positive variance.

    Returns
    -------
    DataFrame
        ``study, yi, vi`` on the analysis scale, in input order.
    """
    studies = result.studies
    yi = studies["yi"].to_numpy(float)
    vi = studies["vi"].to_numpy(float)
    ok = np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    return studies.loc[ok, ["study", "yi", "vi"]].reset_index(drop=True)


def funnel_caveat(k: int) -> str:
    """The caveat printed under the plot (empty when k ≥ 10)."""
    if k >= MIN_STUDIES_FOR_TESTS:
        return ""
    return (
        f"Only {k} stud{'y' if k == 1 else 'ies'} with an estimable effect (fewer than "
        f"{MIN_STUDIES_FOR_TESTS}): funnel-plot asymmetry cannot be assessed reliably "
        "(Cochrane Handbook v6 §13.3.5.4)."
    )


def contours_for(result):
    """:func:`mscmeta.engine.bias.funnel_contours` for the estimable studies of *result*.

    ``None`` when no study has an estimable effect.
    """
    pts = funnel_points(result)
    if pts.empty:
        return None
    return funnel_contours(
        pts["yi"].to_numpy(float),
        pts["vi"].to_numpy(float),
        float(result.estimate),
        studies=pts["study"].astype(str).tolist(),
        p_levels=CONTOUR_LEVELS,
        se_max=float(np.sqrt(pts["vi"].max())) * 1.08,
    )


def _ratio_ticks(x_extent: float) -> tuple[float, ...]:
    """Round ratios for a log axis spanning ±x_extent (natural-log units)."""
    if x_extent > math.log(30):
        return (0.001, 0.01, 0.1, 1, 10, 100, 1000)
    if x_extent > math.log(6):
        return (0.1, 0.2, 0.5, 1, 2, 5, 10)
    return (0.25, 0.5, 1, 2, 4)


def _wrap(text: str, width_in: float) -> str:
    return "\n".join(textwrap.wrap(text, width=max(30, int(width_in * 22))))


def funnel_plot(
    result,
    *,
    contours=None,
    labels: Mapping[str, str] | None = None,
    label_points: bool = True,
    width: float = style.COLUMN_WIDTH,
    height: float | None = None,
    title: str | None = None,
):
    """Draw a contour-enhanced funnel plot of a pooled result.

    Parameters
    ----------
    result : MetaResult
        Output of :func:`mscmeta.engine.binary.meta_binary`; the study estimates ``yi`` and
        variances ``vi`` of ``result.studies`` are plotted (with the result's zero-cell
        convention).
    contours : FunnelContours, optional
        Output of :func:`mscmeta.engine.bias.funnel_contours` (default: computed from *result*
        by :func:`contours_for`).
    labels : mapping, optional
        Study → label printed next to each point.
    label_points : bool
        Print study labels next to the points.
    width, height : float
        Figure size in inches (default: one journal column, nearly square).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    contours = contours if contours is not None else contours_for(result)
    height = height if height is not None else width * 0.95
    fig, ax = plt.subplots(figsize=(width, height))
    if contours is None:
        k, sei_max, x_extent, levels = 0, 1.0, 1.0, tuple(sorted(CONTOUR_LEVELS))
        ax.text(0.5, 0.5, "No study with an estimable effect", ha="center", va="center", transform=ax.transAxes)
    else:
        k, sei_max, x_extent, levels = _draw_funnel(ax, contours)
        if label_points:
            _label_points(ax, contours.points, labels, sei_max, x_extent)
    ax.set_ylim(sei_max, 0)
    ax.set_xlim(-x_extent, x_extent)
    ax.set_ylabel("Standard error")
    _x_axis(ax, result, x_extent)
    if title:
        ax.set_title(title)
    _legend_and_caveat(fig, levels, funnel_caveat(k), width, height, title)
    return fig


def _draw_funnel(ax, contours) -> tuple[int, float, float, tuple[float, ...]]:
    """Shaded significance contours, the pooled line, pseudo-CI and study points."""
    pts = contours.points
    sei_max = float(contours.se_max)
    lines = contours.contours
    levels = tuple(sorted(float(p) for p in lines["p_level"].unique()))
    widest = float((lines["high"] - contours.center).abs().max())
    x_extent = max(float(np.max(np.abs(pts["yi"]))) * 1.15, widest * 1.02)
    # Shade the whole panel as "p < smallest level", then successively narrower
    # funnels (larger p levels) with lighter shades; the innermost region is white.
    ax.fill_between([-x_extent, x_extent], 0, sei_max, color=CONTOUR_SHADES[0], lw=0, zorder=0)
    for p_level, shade in zip(levels, (*CONTOUR_SHADES[1:], "white"), strict=False):
        band = lines[np.isclose(lines["p_level"], p_level)]
        ax.fill_betweenx(band["se"], band["low"], band["high"], color=shade, lw=0, zorder=0)
    est = float(contours.estimate)
    ax.plot([est, est], [0, sei_max], color=style.POOLED_COLOUR, lw=0.8, zorder=2)
    ax.plot(contours.pseudo_ci["low"], contours.pseudo_ci["se"], color=style.POOLED_COLOUR, lw=0.6, ls="--", zorder=2)
    ax.plot(contours.pseudo_ci["high"], contours.pseudo_ci["se"], color=style.POOLED_COLOUR, lw=0.6, ls="--", zorder=2)
    ax.axvline(float(contours.center), color=style.GREY, lw=0.5, ls=":", zorder=1)
    ax.scatter(pts["yi"], pts["se"], s=14, color=style.MSC_COLOUR, edgecolor="black", linewidths=0.4, zorder=3)
    return len(pts), sei_max, x_extent, levels


def _label_points(ax, pts: pd.DataFrame, labels: Mapping[str, str] | None, sei_max: float, x_extent: float) -> None:
    placed: list[tuple[float, float]] = []
    for row in pts.sort_values(["se", "yi"], kind="mergesort").itertuples(index=False):
        text = str(labels.get(str(row.study), row.study)) if labels is not None else str(row.study)
        # a label near an earlier one (labels are wide: 15% of the x range either side) goes below its point
        crowded = any(abs(row.se - s0) < 0.04 * sei_max and abs(row.yi - y0) < 0.3 * x_extent for y0, s0 in placed)
        ax.annotate(text, (row.yi, row.se), xytext=(3, -7 if crowded else 2), textcoords="offset points",
                    fontsize=5, zorder=4)
        placed.append((row.yi, row.se))


def _x_axis(ax, result, x_extent: float) -> None:
    """Ratio measures: log-scale positions labelled with round ratios; RD as it is."""
    measure = str(result.measure).upper()
    if result.is_ratio():
        ticks = [t for t in _ratio_ticks(x_extent) if abs(math.log(t)) <= x_extent]
        ax.set_xticks([math.log(t) for t in ticks])
        ax.set_xticklabels([tick_label(t) for t in ticks])
        name = {"OR": "Odds ratio", "RR": "Risk ratio"}.get(measure, measure)
        ax.set_xlabel(f"{name} (log scale)")
    else:
        ax.set_xlabel("Risk difference" if measure == "RD" else measure)


def _legend_and_caveat(fig, levels: tuple[float, ...], caveat: str, width: float, height: float,
                       title: str | None) -> None:
    lv = list(levels) + [np.nan] * (3 - len(levels))
    handles = [
        Patch(facecolor=CONTOUR_SHADES[0], label=f"p < {lv[0]:g}"),
        Patch(facecolor=CONTOUR_SHADES[1], label=f"{lv[0]:g} ≤ p < {lv[1]:g}"),
        Patch(facecolor=CONTOUR_SHADES[2], label=f"{lv[1]:g} ≤ p < {lv[2]:g}"),
        Patch(facecolor="white", edgecolor=style.GREY, lw=0.4, label=f"p ≥ {lv[2]:g}"),
    ]
    caveat_lines = _wrap(caveat, width).count("\n") + 1 if caveat else 0
    bottom_in = 0.42 + 0.2 + caveat_lines * 0.1  # axis labels + legend + caveat
    fig.subplots_adjust(left=0.14, right=0.97, top=0.95 if title else 0.98, bottom=bottom_in / height)
    fig.legend(handles=handles, loc="lower center", ncol=4, bbox_to_anchor=(0.55, (0.04 + caveat_lines * 0.1) / height),
               frameon=False, fontsize=5.5, handlelength=1.2, columnspacing=0.8)
    if caveat:
        fig.text(0.01, 0.01 / height, _wrap(caveat, width), fontsize=5.5, va="bottom", ha="left")
