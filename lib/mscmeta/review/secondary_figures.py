"""Figures of notebook 05: a forest plot per pooled secondary outcome and one overview figure.

The forest plots are the bundle's one forest style (:func:`mscmeta.plots.forest.forest_plot`,
RevMan's layout), titled, with the arms "MSC" and "Control". The overview draws every
pooled outcome on the scale of its own forest plot, one panel per scale, with seaborn on
the bundle's theme, and the forest plots' axis policy. Sizes are fixed in inches (width
:data:`mscmeta.plots.style.PAGE_WIDTH`, a fixed height per row), fonts come from
:func:`mscmeta.plots.style.use_style`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from mscmeta.plots import style
from mscmeta.plots.axes import set_ticks, ticks_within
from mscmeta.plots.forest import forest_plot, symmetric_limits
from mscmeta.review.claims import short_reason
from mscmeta.review.display import fmt_estimate
from mscmeta.review.secondary_analyses import Analysis, OutcomeAnalysis, SecondaryReport, analysis_n

#: Height of one overview row in inches, the space above a panel's rows and of a descriptive-only line.
ROW_HEIGHT = 0.24
HEADER_HEIGHT = 0.45
DESC_LINE = 0.15

MEASURE_LABELS = {
    "OR": "Odds ratio (Mantel–Haenszel, RevMan zero-cell correction), log scale",
    "RD": "Risk difference",
    "MD": "Mean difference",
    "SMD": "Standardised mean difference (Hedges' g)",
}


def _limits(values: np.ndarray, ratio: bool) -> tuple[float, float]:
    """The forest plots' axis policy (:func:`mscmeta.plots.forest.symmetric_limits`), here
    covering the whole intervals (the overview draws no arrows)."""
    return symmetric_limits(list(values), ratio)


def _log_axis(ax, xmin: float, xmax: float) -> None:
    ax.set_xscale("log")
    if xmax / xmin > 1000:
        candidates = (0.01, 0.1, 1, 10, 100)
    elif xmax / xmin > 30:
        candidates = (0.05, 0.2, 1, 5, 20) if xmax / xmin > 200 else (0.1, 0.2, 0.5, 1, 2, 5, 10)
    else:
        candidates = (0.2, 0.5, 1, 2, 5)
    set_ticks(ax, ticks_within(candidates, xmin, xmax))


def outcome_forest_plot(oa: OutcomeAnalysis, analysis: Analysis | None = None, labels: Mapping[str, str] | None = None) -> Figure:
    """Forest plot of one pooled outcome (its primary analysis unless *analysis* is given), in
    the bundle's one forest style: :func:`mscmeta.plots.forest.forest_plot` (RevMan layout),
    titled, arms "MSC" and "Control", "Favours …" under the axis on the side where the
    outcome is better (lower values for harms and length of stay, higher for oxygenation).

    Binary outcomes show events/total per arm; continuous outcomes mean (SD) and total per arm
    after any median-to-mean conversion (named in the caption the notebook prints).
    """
    analysis = analysis or oa.primary
    if analysis is None or analysis.result is None:
        raise ValueError(f"outcome {oa.outcome!r} has no pooled analysis to plot ({oa.reason})")
    arms = None
    if oa.info.kind == "continuous":
        arms = oa.pooled_inputs.set_index("study_id")[["mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c"]]
    favours = ("MSC", "control") if oa.info.better == "lower" else ("control", "MSC")
    return forest_plot(analysis.result, arm_labels=("MSC", "Control"), favours=favours, labels=labels or {},
                       title=f"{oa.info.label}{_unit(oa, analysis)}: {analysis.name}", arms=arms)


def _unit(oa: OutcomeAnalysis, analysis: Analysis) -> str:
    if analysis.measure != "MD" or oa.pooled_inputs.empty:
        return ""
    return f" ({oa.pooled_inputs['unit'].iloc[0]})"


# ---------------------------------------------------------------------------
# Overview: every outcome on the scale of its own forest plot, one panel per scale
# ---------------------------------------------------------------------------


def overview_rows(report: SecondaryReport) -> tuple[dict[str, list[dict]], list[OutcomeAnalysis]]:
    """Pooled outcomes grouped by the scale of their forest plot (``"OR"``, ``"MD (days)"``,
    ``"SMD"``...), and the outcomes that could not be pooled."""
    panels: dict[str, list[dict]] = {}
    descriptive = []
    for oa in report.analyses.values():
        a = oa.primary if oa.status == "pooled" else None
        if a is None or a.result is None:
            if oa.info.kind in ("binary", "continuous") or oa.studies_with_data:
                descriptive.append(oa)
            continue
        d = a.result.to_dict()
        key = a.measure + _unit(oa, a)
        n_t, n_c = analysis_n(oa, a)
        panels.setdefault(key, []).append({"oa": oa, "analysis": a, "estimate": d["estimate"], "lo": d["ci_low"],
                                           "hi": d["ci_high"], "k": a.result.k, "n": f"{int(n_t)}/{int(n_c)}"})
    return panels, descriptive


def _panel_axis(ax, rows: list[dict], measure: str) -> None:
    """Points (seaborn) and interval lines of one panel, on its own scale."""
    ratio = measure == "OR"
    frame = pd.DataFrame({"y": range(len(rows)), "estimate": [r["estimate"] for r in rows]})
    ax.hlines(frame["y"], [r["lo"] for r in rows], [r["hi"] for r in rows], color=style.POOLED_COLOUR, lw=0.9)
    sns.scatterplot(data=frame, x="estimate", y="y", marker="D", s=22, color=style.MSC_COLOUR, ax=ax, legend=False,
                    linewidth=0, zorder=3)
    vals = np.array([v for r in rows for v in (r["lo"], r["hi"])], dtype=float)
    xmin, xmax = _limits(vals, ratio)
    if ratio:
        _log_axis(ax, xmin, xmax)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.axvline(1.0 if ratio else 0.0, color=style.GREY, lw=0.6)
    ax.set_yticks([])
    ax.set_ylabel("")
    what = "odds" if ratio else "values"
    ax.set_xlabel(f"← lower {what} with MSC      higher {what} with MSC →", fontsize=6.5)
    sns.despine(ax=ax, left=True)


def _panel_text(fig, ax, rows: list[dict]) -> None:
    at = blended_transform_factory(fig.transFigure, ax.transData)
    for i, r in enumerate(rows):
        oa = r["oa"]
        better = "lower is better" if oa.info.better == "lower" else "higher is better"
        fig.text(0.01, i, oa.info.label, va="center", fontsize=6.5, transform=at)
        fig.text(0.25, i, f"k = {r['k']}, {r['n']}", va="center", fontsize=6, color=style.GREY, transform=at)
        fig.text(0.70, i, fmt_estimate(r["estimate"], r["lo"], r["hi"]), va="center", fontsize=6.5, transform=at)
        fig.text(0.86, i, better, va="center", fontsize=6, color=style.GREY, transform=at)


def overview_plot(report: SecondaryReport) -> Figure:
    """One figure of every secondary outcome, each on the scale of its own forest plot.

    One panel per scale (the Mantel–Haenszel odds ratio of the binary outcomes on a log axis;
    the mean difference of continuous outcomes in one unit, one panel per unit; standardised
    mean differences where units differ), so no row is drawn on an axis of another scale.
    Each row names the outcome, k and the patients per arm, the estimate with its 95% CI and
    whether lower or higher values are better; direction words appear only as axis labels.
    Outcomes that could not be pooled are listed below with the number of studies reporting
    them. The points are drawn with seaborn on the bundle's theme.
    """
    panels, descriptive = overview_rows(report)
    heights = [HEADER_HEIGHT + ROW_HEIGHT * (len(rows) + 0.6) + 0.35 for rows in panels.values()]
    desc_h = DESC_LINE * (math.ceil(len(descriptive) / 2) + 1) + 0.2
    height = 0.35 + sum(heights) + desc_h
    fig = plt.figure(figsize=(style.PAGE_WIDTH, height))
    fig.text(0.01, 1 - 0.1 / height, "Secondary outcomes: MSC vs control", fontweight="bold", va="top")
    top = height - 0.35
    for (key, rows), h in zip(panels.items(), heights, strict=True):
        measure = key.split(" ", 1)[0]
        body = ROW_HEIGHT * (len(rows) + 0.6)
        ax = fig.add_axes([0.40, (top - HEADER_HEIGHT - body) / height, 0.28, body / height])
        fig.text(0.01, (top - 0.12) / height, f"{MEASURE_LABELS.get(measure, measure)}{key[len(measure):]}",
                 fontsize=7, fontstyle="italic", va="top")
        for x, head in ((0.01, "Outcome"), (0.25, "k, n MSC/control"), (0.70, "Estimate [95% CI]"), (0.86, "")):
            fig.text(x, (top - HEADER_HEIGHT + 0.05) / height, head, va="bottom", fontsize=6, fontweight="bold")
        _panel_axis(ax, rows, measure)
        _panel_text(fig, ax, rows)
        top -= h
    fig.text(0.01, top / height, "Descriptive only (fewer than 2 studies with comparable arm-level data):",
             fontweight="bold", va="top", fontsize=6.5)
    per_column = max(math.ceil(len(descriptive) / 2), 1)
    for j, oa in enumerate(descriptive):
        col, line = divmod(j, per_column)
        fig.text(0.02 + 0.5 * col, (top - DESC_LINE * (line + 1)) / height, f"{oa.info.label}: {short_reason(oa)}",
                 va="top", fontsize=5.8)
    return fig
