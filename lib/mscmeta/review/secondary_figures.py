"""Figures of notebook 05: a forest plot per pooled secondary outcome and one overview figure.

Both are deliberately plain: one row per study (or outcome), a point with its 95% CI, a
diamond for the pooled estimate, a line of no effect, and the direction that favours MSC
written under the axis. Sizes are fixed in inches (width :data:`mscmeta.plots.style.PAGE_WIDTH`,
a fixed height per row), fonts come from :func:`mscmeta.plots.style.use_style`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.plots import style
from mscmeta.plots.axes import set_ticks, ticks_within
from mscmeta.review.claims import short_reason
from mscmeta.review.secondary_analyses import Analysis, OutcomeAnalysis, SecondaryReport, analysis_n

#: Height of one table row in inches, and fixed space above/below the rows.
ROW_HEIGHT = 0.24
HEADER_HEIGHT = 0.45
FOOTER_HEIGHT = 1.0
#: Space between the panels of the overview figure and height of a descriptive-only line.
PANEL_GAP = 0.95
DESC_LINE = 0.15
LAST_GAP = 0.6

MEASURE_LABELS = {
    "OR": "Odds ratio (log scale)",
    "RD": "Risk difference",
    "MD": "Mean difference",
    "SMD": "Standardised mean difference (Hedges' g)",
}


def _favours(better: str, measure: str) -> tuple[str, str]:
    """Texts under the left and right half of the axis."""
    lower_good = better == "lower"
    left = "favours MSC" if lower_good else "favours control"
    right = "favours control" if lower_good else "favours MSC"
    return f"← {left}", f"{right} →"


def _fmt(x: float, digits: int = 2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _arm_cells(oa: OutcomeAnalysis, row: pd.Series) -> tuple[str, str]:
    if oa.info.kind == "binary":
        return f"{int(row['events_msc'])}/{int(row['n_msc'])}", f"{int(row['events_control'])}/{int(row['n_control'])}"
    return (f"{row['mean_t']:.1f} ({row['sd_t']:.1f}), {int(row['n_t'])}",
            f"{row['mean_c']:.1f} ({row['sd_c']:.1f}), {int(row['n_c'])}")


def _limits(values: np.ndarray, ratio: bool) -> tuple[float, float]:
    """Symmetric axis limits around no effect (ratio: 10^±0.5 steps, at most 0.01-100)."""
    finite = values[np.isfinite(values)]
    if ratio:
        finite = finite[finite > 0]
        lo, hi = (float(np.min(finite)), float(np.max(finite))) if finite.size else (0.5, 2.0)
        span = max(abs(math.log10(lo)), abs(math.log10(hi)), math.log10(2.0))
        exp = min(math.ceil(span * 2) / 2, 2.0)
        return 10 ** -exp, 10 ** exp
    m = float(np.max(np.abs(finite))) if finite.size else 1.0
    m = m * 1.1 if m > 0 else 1.0
    return -m, m


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
    """Forest plot of one pooled outcome (its primary analysis unless *analysis* is given).

    Columns: study, MSC arm, control arm (events/n, or mean (SD), n after any conversion),
    weight and estimate with 95% CI; the plot shows squares sized by weight with CI
    lines, the pooled diamond and the line of no effect. The footnote names the
    analysis, heterogeneity and, for continuous outcomes, the median-to-mean
    conversion method.
    """
    analysis = analysis or oa.primary
    if analysis is None or analysis.result is None:
        raise ValueError(f"outcome {oa.outcome!r} has no pooled analysis to plot ({oa.reason})")
    res = analysis.result
    k_rows = len(res.studies)
    fig, ax_t, ax_p, ax_w, height = _forest_frame(k_rows)
    est, lo, hi, weights = _study_values(res)
    _forest_headers(ax_t, ax_w, oa)
    _forest_study_rows(ax_t, ax_p, ax_w, oa, labels or {}, (est, lo, hi, weights), res.is_ratio())
    d = res.to_dict()
    _forest_pooled_row(ax_t, ax_p, ax_w, d, analysis_n(oa, analysis), k_rows + 1.3)
    _forest_axis(ax_p, oa, analysis, np.concatenate([lo, hi, [d["ci_low"], d["ci_high"]]]), res.is_ratio())
    fig.text(0.01, 0.06 / height, _forest_footnote(oa, analysis, d), va="bottom", fontsize=6, color=style.GREY)
    return fig


_COLUMN_X = (0.01, 0.42, 0.72)


def _forest_frame(k_rows: int):
    """Figure with three panels sharing the row coordinates: table, plot, weight/estimate."""
    height = HEADER_HEIGHT + ROW_HEIGHT * (k_rows + 2) + FOOTER_HEIGHT
    fig = plt.figure(figsize=(style.PAGE_WIDTH, height))
    ax_t = fig.add_axes([0.0, FOOTER_HEIGHT / height, 0.58, (height - FOOTER_HEIGHT) / height])
    ax_p = fig.add_axes([0.60, FOOTER_HEIGHT / height, 0.26, (height - FOOTER_HEIGHT) / height])
    ax_w = fig.add_axes([0.87, FOOTER_HEIGHT / height, 0.13, (height - FOOTER_HEIGHT) / height])
    for ax in (ax_t, ax_p, ax_w):
        ax.set_ylim(k_rows + 2 + 0.2, -0.9)
    for ax in (ax_t, ax_w):
        ax.set_xlim(0, 1)
        ax.axis("off")
    return fig, ax_t, ax_p, ax_w, height


def _study_values(res) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    studies = res.studies
    scale = np.exp if res.is_ratio() else (lambda v: v)
    return (scale(np.asarray(studies["yi"], dtype=float)), scale(np.asarray(studies["ci_low"], dtype=float)),
            scale(np.asarray(studies["ci_high"], dtype=float)), np.asarray(studies["weight"], dtype=float))


def _forest_headers(ax_t, ax_w, oa: OutcomeAnalysis) -> None:
    unit = "events/n" if oa.info.kind == "binary" else "mean (SD), n"
    for x, h, s in zip(_COLUMN_X, ("Study", "MSC", "Control"), ("", unit, unit)):
        ax_t.text(x, -0.55, h, fontweight="bold", va="center")
        ax_t.text(x, -0.1, s, va="center", color=style.GREY, fontsize=6.5)
    ax_w.text(0.0, -0.55, "Weight  Estimate [95% CI]", fontweight="bold", va="center", fontsize=6.5)


def _forest_study_rows(ax_t, ax_p, ax_w, oa: OutcomeAnalysis, labels: Mapping[str, str], values, ratio: bool) -> None:
    est, lo, hi, weights = values
    xs = _COLUMN_X
    for i, row in enumerate(oa.pooled_inputs.itertuples(index=False)):
        y = i + 1
        sid = row.study_id
        msc, ctl = _arm_cells(oa, pd.Series(row._asdict()))
        ax_t.text(xs[0], y, labels.get(sid, sid), va="center")
        ax_t.text(xs[1], y, msc, va="center")
        ax_t.text(xs[2], y, ctl, va="center")
        w = weights[i]
        cell = (f"{w:.1f}%  {_fmt(est[i])} [{_fmt(lo[i])}, {_fmt(hi[i])}]" if np.isfinite(w) and np.isfinite(est[i])
                else "—  not estimable")
        ax_w.text(0.0, y, cell, va="center", fontsize=6.5)
        if np.isfinite(est[i]):
            size = 3 + 7 * math.sqrt(w / 100) if np.isfinite(w) else 3
            ax_p.plot([lo[i], hi[i]], [y, y], color=style.POOLED_COLOUR, lw=0.8)
            ax_p.plot([est[i]], [y], marker="s", ms=size, color=style.MSC_COLOUR, lw=0)
        else:
            ax_p.text(1.0 if ratio else 0.0, y, "not estimable", ha="center", va="center", fontsize=6, color=style.GREY)


def _forest_pooled_row(ax_t, ax_p, ax_w, d: Mapping, n_arms: tuple[float, float], yp: float) -> None:
    xs = _COLUMN_X
    ax_t.text(xs[0], yp, "Pooled", fontweight="bold", va="center")
    ax_t.text(xs[1], yp, f"n = {int(n_arms[0])}", va="center")
    ax_t.text(xs[2], yp, f"n = {int(n_arms[1])}", va="center")
    ax_w.text(0.0, yp, f"100%  {_fmt(d['estimate'])} [{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}]",
              va="center", fontsize=6.5, fontweight="bold")
    ax_p.fill([d["ci_low"], d["estimate"], d["ci_high"], d["estimate"]], [yp, yp - 0.35, yp, yp + 0.35],
              color=style.POOLED_COLOUR, lw=0)


def _forest_axis(ax_p, oa: OutcomeAnalysis, analysis: Analysis, values: np.ndarray, ratio: bool) -> None:
    xmin, xmax = _limits(values, ratio)
    if ratio:
        _log_axis(ax_p, xmin, xmax)
    ax_p.set_xlim(xmin, xmax)
    ax_p.axvline(1.0 if ratio else 0.0, color=style.GREY, lw=0.6)
    ax_p.set_yticks([])
    for side in ("left", "right", "top"):
        ax_p.spines[side].set_visible(False)
    left, right = _favours(oa.info.better, analysis.measure)
    unit = f" ({oa.pooled_inputs['unit'].iloc[0]})" if analysis.measure == "MD" else ""
    ax_p.set_xlabel(f"{MEASURE_LABELS.get(analysis.measure, analysis.measure)}{unit}\n{left}    {right}", fontsize=6.5)


def _forest_footnote(oa: OutcomeAnalysis, analysis: Analysis, d: Mapping) -> str:
    res = analysis.result
    het = f"Heterogeneity: I² = {d['I2']:.0f}%" if d["I2"] is not None else "Heterogeneity: not estimable"
    if res.model == "random":
        het += f", τ² = {d['tau2']:.3g} ({res.tau2_method})"
    if d.get("Q") is not None:
        het += f", Q = {d['Q']:.2f} (df = {d['Q_df']}, P = {_fmt(d['Q_p'], 3)})"
    test = f"Test for overall effect: P = {_fmt(d['p_value'], 3)}"
    foot = [f"{oa.info.label}: {analysis.name}. {het}. {test}.", analysis.note]
    if oa.info.kind == "continuous" and oa.conversion:
        foot.append(f"Medians/IQR converted to means/SDs: {oa.conversion} (metafor conv.fivenum).")
    if oa.reason:
        foot.append(oa.reason[:160] + ("…" if len(oa.reason) > 160 else ""))
    return "\n".join(f for f in foot if f)


def _overview_rows(report: SecondaryReport) -> tuple[list[dict], list[dict], list[OutcomeAnalysis]]:
    binary, continuous, descriptive = [], [], []
    for oa in report.analyses.values():
        if oa.status != "pooled":
            if oa.info.kind in ("binary", "continuous") or oa.studies_with_data:
                descriptive.append(oa)
            continue
        if oa.info.kind == "binary":
            a = oa.primary
            target = binary
        else:
            a = next((x for x in oa.analyses if x.measure == "SMD"), oa.primary)
            target = continuous
        if a is None or a.result is None:
            descriptive.append(oa)
            continue
        d = a.result.to_dict()
        target.append({"oa": oa, "analysis": a, "estimate": d["estimate"], "lo": d["ci_low"], "hi": d["ci_high"]})
    return binary, continuous, descriptive


def _point_direction(better: str, estimate: float, null: float) -> str:
    if not np.isfinite(estimate) or estimate == null:
        return ""
    lower = estimate < null
    return "favours MSC" if lower == (better == "lower") else "favours control"


def overview_plot(report: SecondaryReport) -> Figure:
    """One compact figure of every secondary outcome.

    Pooled binary outcomes: MH odds ratio (RevMan convention) on a log axis; pooled
    continuous outcomes: standardised mean difference (Hedges' g, the report's model), so
    that outcomes in different units share one axis. Each row names the outcome, k and
    the patients, the estimate with its 95% CI and which arm the point estimate favours
    (for some outcomes lower values favour MSC, for others higher values). Outcomes that
    could not be pooled are listed below with the number of studies reporting them.
    """
    binary, continuous, descriptive = _overview_rows(report)
    panels = [(binary, "OR"), (continuous, "SMD")]
    panels = [(rows, m) for rows, m in panels if rows]
    plot_rows = sum(len(r) + 0.6 for r, _ in panels)
    desc_lines = math.ceil(len(descriptive) / 2) + 1
    gaps = PANEL_GAP * max(len(panels) - 1, 0) + LAST_GAP
    height = HEADER_HEIGHT + 0.3 + ROW_HEIGHT * plot_rows + gaps + DESC_LINE * desc_lines + 0.15
    fig = plt.figure(figsize=(style.PAGE_WIDTH, height))
    top = 1.0 - 0.12 / height
    fig.text(0.01, top, "Secondary outcomes: MSC vs control", fontweight="bold", va="top")
    y_cursor = top - (HEADER_HEIGHT + 0.3) / height
    for number, (rows, measure) in enumerate(panels):
        h = ROW_HEIGHT * (len(rows) + 0.6) / height
        ax = fig.add_axes([0.36, y_cursor - h, 0.30, h])
        ax.set_ylim(len(rows) - 0.4, -0.6)
        ratio = measure == "OR"
        null = 1.0 if ratio else 0.0
        vals = np.array([v for r in rows for v in (r["lo"], r["hi"])], dtype=float)
        xmin, xmax = _limits(vals, ratio)
        for i, r in enumerate(rows):
            oa, a = r["oa"], r["analysis"]
            ax.plot([r["lo"], r["hi"]], [i, i], color=style.POOLED_COLOUR, lw=0.8)
            ax.plot([r["estimate"]], [i], marker="D", ms=4, color=style.MSC_COLOUR, lw=0)
            k = a.result.k
            n_t, n_c = analysis_n(oa, a)
            yfig = y_cursor - h + h * (len(rows) - 0.4 - i) / (len(rows) + 0.2)
            fig.text(0.01, yfig, f"{oa.info.label}", va="center", fontsize=6.5)
            fig.text(0.27, yfig, f"k={k}, {int(n_t)}/{int(n_c)}", va="center", fontsize=6, color=style.GREY)
            better = "lower is better" if oa.info.better == "lower" else "higher is better"
            fig.text(0.68, yfig, f"{r['estimate']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]", va="center", fontsize=6.5)
            fig.text(0.84, yfig, f"{_point_direction(oa.info.better, r['estimate'], null)} ({better})",
                     va="center", fontsize=6, color=style.GREY)
            if i == 0:
                yhead = y_cursor + 0.02 / height
                for x, head in ((0.01, "Outcome"), (0.27, "k, n MSC/control"), (0.68, "Estimate [95% CI]"),
                                (0.84, "Point estimate")):
                    fig.text(x, yhead, head, va="bottom", fontsize=6, fontweight="bold")
        if ratio:
            _log_axis(ax, xmin, xmax)
        ax.set_xlim(xmin, xmax)
        ax.axvline(null, color=style.GREY, lw=0.6)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        title = ("Binary outcomes: Mantel-Haenszel odds ratio (RevMan zero-cell convention)" if ratio
                 else f"Continuous outcomes: standardised mean difference (Hedges' g), "
                      f"{report.options.get('model', 'random')} effects")
        fig.text(0.01, y_cursor + 0.22 / height, title, fontsize=7, fontstyle="italic", va="bottom")
        ax.set_xlabel("← lower with MSC      higher with MSC →", fontsize=6.5)
        y_cursor -= h + (PANEL_GAP if number < len(panels) - 1 else LAST_GAP) / height
    fig.text(0.01, y_cursor, "Descriptive only (fewer than 2 studies with comparable arm-level data):",
             fontweight="bold", va="top", fontsize=6.5)
    per_column = math.ceil(len(descriptive) / 2)
    for j, oa in enumerate(descriptive):
        col, line = divmod(j, per_column)
        fig.text(0.02 + 0.5 * col, y_cursor - DESC_LINE * (line + 1) / height, f"{oa.info.label}: {short_reason(oa)}",
                 va="top", fontsize=5.8)
    return fig
