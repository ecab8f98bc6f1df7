"""RevMan-style forest plots for binary outcomes.

The layout follows the forest plots of Cochrane's Review Manager 5 (RevMan 5.4; see
the RevMan 5 user guide, "Forest plots", and the Cochrane Handbook 5.1 §9.4.10/§9.6.3):

* one row per study with events/total per arm, the study's weight in percent and its
  effect estimate with 95% CI as text, and a square (area proportional to the weight)
  with a CI line on the plot;
* studies whose effect cannot be estimated (RevMan: double-zero studies for OR/RR) are
  listed with their counts and "Not estimable";
* a "Total (95% CI)" row with the summed totals per arm, the pooled estimate as text and
  as a diamond, then "Total events", then the lines
  ``Heterogeneity: Tau² = …; Chi² = …, df = … (P = …); I² = …%`` (Tau² only for random
  effects) and ``Test for overall effect: Z = … (P = …)`` (``t = …, df = …`` when the
  Hartung–Knapp–Sidik–Jonkman adjustment is used, as in RevMan Web);
* a logarithmic x axis for ratio measures (linear for the risk difference), the line of
  no effect, and "Favours …" labels under the axis.

Optional extras: a prediction-interval bar (RevMan Web), a risk-of-bias column and
:func:`subgroup_forest` with subgroup headers, subtotal diamonds and the line
``Test for subgroup differences: Chi² = …, df = … (P = …), I² = …%``.

The figure has a fixed size in inches: its width is chosen by the caller (default the
journal page width, :data:`mscmeta.plots.style.PAGE_WIDTH`) and its height grows linearly with
the number of rows, so every row has the same height in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Polygon

from mscmeta.plots import style
from mscmeta.plots.axes import set_ticks
from mscmeta.plots.robplots import ROB_COLOURS, ROB_SYMBOLS

#: Effect-measure names as RevMan writes them in the column header.
MEASURE_NAMES = {"OR": "Odds Ratio", "RR": "Risk Ratio", "RD": "Risk Difference", "MD": "Mean Difference",
                 "SMD": "Std. Mean Difference"}
#: Pooling-method names as RevMan abbreviates them.
METHOD_NAMES = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}

_MEASURE_SHORT = {"Odds Ratio": "OR", "Risk Ratio": "RR", "Risk Difference": "RD", "Mean Difference": "MD",
                  "Std. Mean Difference": "SMD"}
#: Measures of continuous outcomes: per arm "Mean (SD)" and "Total" instead of "Events" and "Total".
CONTINUOUS_MEASURES = ("MD", "SMD")

#: Symmetric axis limits RevMan offers for ratio measures (upper limits; lower = 1/upper).
RATIO_LIMITS = (2.0, 5.0, 10.0, 100.0, 1000.0)
#: Symmetric axis limits for differences (risk differences stay within 1; mean differences
#: take the larger ones).
DIFFERENCE_LIMITS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)

#: Risk-of-bias judgements → (colour, symbol), as robvis draws them (McGuinness & Higgins,
#: Res Syn Meth 2021): + low, − some concerns/moderate, X high/serious, ! critical, ? no information.
#: One palette for the whole bundle: taken from the traffic-light plots (mscmeta.plots.robplots),
#: plus RoB 1's "unclear" for assessments made with the older tool.
ROB_STYLE = {
    judgement: (ROB_COLOURS[tool][judgement], ROB_SYMBOLS[tool][judgement])
    for tool in ROB_COLOURS
    for judgement in ROB_COLOURS[tool]
} | {"unclear": (ROB_COLOURS["RoB 2"]["some concerns"], "?")}


# ---------------------------------------------------------------------------
# Number formatting (RevMan conventions)
# ---------------------------------------------------------------------------


def format_p_revman(p: float) -> str:
    """Format a P value the way RevMan 5 prints it in forest plots.

    Two decimals from 0.01 up (so 0.998 prints as ``1.00``), three below 0.01, four
    below 0.001, then ``< 0.0001`` and ``< 0.00001``.

    Returns the text after "P", e.g. ``"= 0.007"`` or ``"< 0.00001"``.
    """
    if p is None or not np.isfinite(p):
        return "= NA"
    if p < 1e-5:
        return "< 0.00001"
    if p < 1e-4:
        return "< 0.0001"
    if p < 1e-3:
        return f"= {p:.4f}"
    if p < 0.01:
        return f"= {p:.3f}"
    return f"= {p:.2f}"


def format_effect(est: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"0.62 [0.57, 0.68]"`` (RevMan: estimate and 95% CI with two decimals)."""
    if not all(np.isfinite(v) for v in (est, lo, hi)):
        return "Not estimable"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_weight(weight: float) -> str:
    """``"12.3%"`` (RevMan: one decimal); empty when the study carries no weight."""
    if weight is None or not np.isfinite(weight):
        return ""
    return f"{weight:.1f}%"


def _is_hksj(result) -> bool:
    return bool(getattr(result, "hksj", False))


def heterogeneity_text(result) -> str:
    """RevMan's heterogeneity line for a pooled result.

    ``Heterogeneity: Chi² = 2.34, df = 9 (P = 0.98); I² = 0%`` for a fixed-effect model and
    ``Heterogeneity: Tau² = 0.00; Chi² = …`` for a random-effects model (RevMan 5 prints
    Cochran's Q as "Chi²", I² as an integer percentage and τ² with two decimals).
    ``Not applicable`` when fewer than two studies were pooled.
    """
    k = int(getattr(result, "k", 0) or 0)
    q_df = getattr(result, "Q_df", None)
    if k < 2 or q_df is None or not np.isfinite(q_df) or q_df < 1:
        return "Heterogeneity: Not applicable"
    parts = []
    if getattr(result, "model", "fixed") == "random":
        parts.append(f"Tau² = {result.tau2:.2f}; ")
    i2 = max(0.0, float(result.I2))
    parts.append(f"Chi² = {result.Q:.2f}, df = {int(q_df)} (P {format_p_revman(result.Q_p)}); I² = {i2:.0f}%")
    return "Heterogeneity: " + "".join(parts)


def overall_effect_text(result) -> str:
    """RevMan's ``Test for overall effect: Z = 2.68 (P = 0.007)`` line.

    With the Hartung–Knapp–Sidik–Jonkman adjustment the statistic is a t statistic on
    k − 1 degrees of freedom and is printed as ``t = …, df = …`` (RevMan Web wording).
    The statistic is printed as an absolute value, as RevMan does.
    """
    stat = getattr(result, "statistic", np.nan)
    if stat is None or not np.isfinite(stat):
        return "Test for overall effect: Not applicable"
    if _is_hksj(result):
        return f"Test for overall effect: t = {abs(stat):.2f}, df = {int(result.df)} (P {format_p_revman(result.p_value)})"
    return f"Test for overall effect: Z = {abs(stat):.2f} (P {format_p_revman(result.p_value)})"


def subgroup_difference_text(subgroup_result) -> str:
    """RevMan's ``Test for subgroup differences: Chi² = 0.01, df = 1 (P = 0.92), I² = 0%``.

    I² for subgroup differences is (Q_between − df)/Q_between (Borenstein & Higgins 2013,
    as printed by RevMan 5), truncated at 0.
    """
    q = getattr(subgroup_result, "Q_between", np.nan)
    df = getattr(subgroup_result, "df_between", np.nan)
    p = getattr(subgroup_result, "p_between", np.nan)
    if q is None or df is None or not np.isfinite(q) or not np.isfinite(df) or df < 1:
        return "Test for subgroup differences: Not applicable"
    i2 = max(0.0, (q - df) / q * 100.0) if q > 0 else 0.0
    return f"Test for subgroup differences: Chi² = {q:.2f}, df = {int(df)} (P {format_p_revman(p)}), I² = {i2:.1f}%"


def effect_column_title(result) -> str:
    """RevMan's column title, e.g. ``"Odds Ratio\\nM-H, Fixed, 95% CI"``.

    Random-effects models other than DerSimonian–Laird and the HKSJ adjustment are added
    in brackets (``"IV, Random (REML, HKSJ), 95% CI"``), so the header names the method.
    """
    measure = MEASURE_NAMES.get(str(result.measure).upper(), str(result.measure))
    method = METHOD_NAMES.get(str(result.method).upper(), str(result.method))
    model = "Random" if result.model == "random" else "Fixed"
    extras = []
    tau2_method = str(getattr(result, "tau2_method", None) or "DL")
    if result.model == "random" and not tau2_method.upper().startswith("DL"):
        extras.append(tau2_method)
    if _is_hksj(result):
        extras.append("HKSJ")
    extra = f" ({', '.join(extras)})" if extras else ""
    level = int(round(100 * float(getattr(result, "level", 0.95))))
    return f"{measure}\n{method}, {model}{extra}, {level}% CI"


# ---------------------------------------------------------------------------
# Row model (what the plot shows, independent of drawing)
# ---------------------------------------------------------------------------


@dataclass
class ForestRow:
    """One row of a forest plot.

    ``kind`` is one of ``"header"`` (subgroup title), ``"study"``, ``"total"`` (pooled
    estimate or subtotal), ``"events"`` (total events), ``"text"`` (a statistics line),
    ``"pi"`` (prediction interval) or ``"blank"``. Numbers are on the display scale (ratio
    scale for OR/RR).
    """

    kind: str
    label: str
    events_t: str = ""
    n_t: str = ""
    events_c: str = ""
    n_c: str = ""
    weight: str = ""
    effect: str = ""
    est: float = np.nan
    lo: float = np.nan
    hi: float = np.nan
    weight_value: float = np.nan
    rob: dict[str, str] = field(default_factory=dict)


def _to_display(result, values):
    """Analysis scale → display scale (exp for ratio measures)."""
    arr = np.asarray(values, dtype=float)
    if result.is_ratio():
        with np.errstate(over="ignore"):
            return np.exp(arr)
    return arr


def _int_text(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return str(int(value))


def _study_rows(result, weights: Mapping[str, float] | None = None, rob=None, labels: Mapping[str, str] | None = None) -> list[ForestRow]:
    studies = result.studies
    est = _to_display(result, studies["yi"])
    lo = _to_display(result, studies["ci_low"])
    hi = _to_display(result, studies["ci_high"])
    rows = []
    for i, s in enumerate(studies.itertuples(index=False)):
        weight = float(s.weight) if weights is None else float(weights.get(s.study, np.nan))
        estimable = bool(getattr(s, "estimable", True)) and np.isfinite(est[i]) and np.isfinite(lo[i]) and np.isfinite(hi[i])
        rows.append(
            ForestRow(
                kind="study",
                label=_label(labels, s.study),
                events_t=_int_text(s.events_t),
                n_t=_int_text(s.n_t),
                events_c=_int_text(s.events_c),
                n_c=_int_text(s.n_c),
                weight=format_weight(weight) if estimable or (np.isfinite(weight) and weight > 0) else "",
                effect=format_effect(est[i], lo[i], hi[i]) if estimable else "Not estimable",
                est=est[i] if estimable else np.nan,
                lo=lo[i] if estimable else np.nan,
                hi=hi[i] if estimable else np.nan,
                weight_value=weight if estimable else np.nan,
                rob=_rob_for(rob, str(s.study)),
            )
        )
    return rows


def _label(labels: Mapping[str, str] | None, study) -> str:
    return str(labels.get(str(study), study)) if labels is not None else str(study)


def _rob_for(rob, study: str) -> dict[str, str]:
    if rob is None:
        return {}
    if study not in rob.index:
        return {c: "" for c in rob.columns}
    return {c: "" if pd.isna(v) else str(v) for c, v in rob.loc[study].items()}


def _total_rows(result, label: str, weight_total: float, show_pi: bool) -> list[ForestRow]:
    studies = result.studies
    est, lo, hi = _to_display(result, [result.estimate, result.ci_low, result.ci_high])
    estimable = result.k >= 1 and all(np.isfinite(v) for v in (est, lo, hi))
    rows = [
        ForestRow(
            kind="total",
            label=f"{label} ({int(round(100 * result.level))}% CI)",
            n_t=_int_text(studies["n_t"].sum()),
            n_c=_int_text(studies["n_c"].sum()),
            weight=format_weight(weight_total) if estimable else "",
            effect=format_effect(est, lo, hi) if estimable else "Not estimable",
            est=est if estimable else np.nan,
            lo=lo if estimable else np.nan,
            hi=hi if estimable else np.nan,
        ),
        ForestRow(
            kind="events",
            label="Total events",
            events_t=_int_text(studies["events_t"].sum()),
            events_c=_int_text(studies["events_c"].sum()),
        ),
    ]
    pi_low = getattr(result, "pi_low", np.nan)
    pi_high = getattr(result, "pi_high", np.nan)
    if show_pi and pi_low is not None and np.isfinite(pi_low) and np.isfinite(pi_high):
        p_lo, p_hi = _to_display(result, [pi_low, pi_high])
        rows.append(
            ForestRow(
                kind="pi",
                label=f"Prediction interval ({int(round(100 * result.level))}%)",
                effect=f"[{p_lo:.2f}, {p_hi:.2f}]",
                lo=p_lo,
                hi=p_hi,
            )
        )
    rows.append(ForestRow(kind="text", label=heterogeneity_text(result)))
    rows.append(ForestRow(kind="text", label=overall_effect_text(result)))
    return rows


def forest_rows(
    result, show_pi: bool | None = None, rob: pd.DataFrame | None = None, labels: Mapping[str, str] | None = None,
    arms: pd.DataFrame | None = None,
) -> list[ForestRow]:
    """The rows of the forest plot of *result* (see :func:`forest_plot`)."""
    _check_result(result)
    if show_pi is None:
        show_pi = result.model == "random"
    rows = _study_rows(result, rob=rob, labels=labels)
    rows.append(ForestRow(kind="blank", label=""))
    rows.extend(_total_rows(result, "Total", 100.0, show_pi))
    if str(result.measure).upper() in CONTINUOUS_MEASURES:
        rows = _continuous_cells(rows, result, arms)
    return rows


def _continuous_cells(rows: list[ForestRow], result, arms: pd.DataFrame | None) -> list[ForestRow]:
    """Rows of a continuous outcome: "mean (SD)" and the total per arm (RevMan's Mean, SD and
    Total columns, mean and SD in one cell); no "Total events" row.

    *arms* is indexed by the study identifier with columns ``mean_t, sd_t, n_t, mean_c, sd_c,
    n_c`` (the arm-level input of :func:`mscmeta.engine.continuous.meta_continuous`).
    """
    ids = [str(s) for s in result.studies["study"]]
    table = arms.copy() if arms is not None else pd.DataFrame(index=ids)
    table.index = table.index.astype(str)
    out, i = [], 0
    for r in rows:
        if r.kind == "events":
            continue
        if r.kind == "study" and arms is not None:
            a = table.loc[ids[i]]
            r.events_t, r.n_t = f"{a['mean_t']:.1f} ({a['sd_t']:.1f})", _int_text(a["n_t"])
            r.events_c, r.n_c = f"{a['mean_c']:.1f} ({a['sd_c']:.1f})", _int_text(a["n_c"])
        if r.kind == "study":
            i += 1
        if r.kind == "total" and arms is not None:
            r.n_t, r.n_c = _int_text(table.loc[ids, "n_t"].sum()), _int_text(table.loc[ids, "n_c"].sum())
        out.append(r)
    return out


def forest_table(result, show_pi: bool | None = None, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The text columns of the forest plot as a DataFrame (one row per plot row).

    Useful to check what the figure shows, and to print the plot as a table.
    """
    rows = forest_rows(result, show_pi=show_pi, labels=labels)
    return pd.DataFrame(
        [
            {
                "kind": r.kind,
                "label": r.label,
                "events_t": r.events_t,
                "n_t": r.n_t,
                "events_c": r.events_c,
                "n_c": r.n_c,
                "weight": r.weight,
                "effect": r.effect,
            }
            for r in rows
        ]
    )


def subgroup_forest_rows(
    subgroup_result,
    show_pi: bool = False,
    rob: pd.DataFrame | None = None,
    labels: Mapping[str, str] | None = None,
    data: pd.DataFrame | None = None,
    study_column: str = "study",
) -> list[ForestRow]:
    """The rows of a subgroup forest plot (see :func:`subgroup_forest`).

    Study weights are percentages of the overall analysis (as RevMan shows them); a
    subgroup's subtotal weight is the sum of its studies' weights. A subgroup that cannot
    be pooled (``None`` in ``subgroup_result.subgroups``) gets a "Not estimable" subtotal.
    """
    overall = subgroup_result.overall
    _check_result(overall)
    overall_weights = dict(zip(overall.studies["study"].astype(str), overall.studies["weight"].astype(float), strict=True))
    rows: list[ForestRow] = []
    for name, sub in subgroup_result.subgroups.items():
        rows.append(ForestRow(kind="header", label=str(name)))
        if sub is None:
            members = _members_of(subgroup_result, name, data, study_column)
            for study in members:
                s = overall.studies.loc[overall.studies["study"].astype(str) == study].iloc[0]
                rows.append(
                    ForestRow(
                        kind="study",
                        label=_label(labels, study),
                        events_t=_int_text(s["events_t"]),
                        n_t=_int_text(s["n_t"]),
                        events_c=_int_text(s["events_c"]),
                        n_c=_int_text(s["n_c"]),
                        effect="Not estimable",
                        rob=_rob_for(rob, study),
                    )
                )
            rows.append(ForestRow(kind="total", label="Subtotal (95% CI)", effect="Not estimable"))
            rows.append(ForestRow(kind="text", label="Heterogeneity: Not applicable"))
            rows.append(ForestRow(kind="text", label="Test for overall effect: Not applicable"))
        else:
            study_rows = _study_rows(sub, weights=overall_weights, rob=rob, labels=labels)
            rows.extend(study_rows)
            sub_weight = float(np.nansum([r.weight_value for r in study_rows]))
            rows.extend(_total_rows(sub, "Subtotal", sub_weight, show_pi))
        rows.append(ForestRow(kind="blank", label=""))
    rows.extend(_total_rows(overall, "Total", 100.0, show_pi))
    rows.append(ForestRow(kind="text", label=subgroup_difference_text(subgroup_result)))
    return rows


def _members_of(subgroup_result, name, data: pd.DataFrame | None, study_column: str) -> list[str]:
    """Studies of a subgroup that could not be pooled, from the analysed *data* (grouping
    column ``subgroup_result.by``); empty when *data* is not given."""
    by = getattr(subgroup_result, "by", None)
    if data is None or by not in data.columns or study_column not in data.columns:
        return []
    return [str(s) for s in data.loc[data[by].astype(str).str.strip() == str(name), study_column]]


def _check_result(result) -> None:
    needed = ("k", "estimate", "ci_low", "ci_high", "measure", "model", "studies", "is_ratio")
    missing = [a for a in needed if not hasattr(result, a)]
    if missing:
        raise TypeError(f"forest plot: expected a MetaResult, got {type(result).__name__} without {missing}")


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

#: Row height in inches at 7-pt text (scaled with the font size).
ROW_HEIGHT = 0.17
#: Header height (two lines of column titles) and footer height (axis + favours labels),
#: inches at 7-pt text (scaled with the font size).
HEADER_HEIGHT = 0.42
FOOTER_HEIGHT = 0.45
#: Narrowest plot panel (inches) that still shows an axis with readable tick labels.
MIN_PLOT_WIDTH = 0.9


def symmetric_limits(values: Sequence[float], ratio: bool) -> tuple[float, float]:
    """The bundle's one axis policy for estimates with intervals: symmetric around no effect,
    the smallest of RevMan's ranges (:data:`RATIO_LIMITS` on the log scale for ratios,
    :data:`DIFFERENCE_LIMITS` for differences) that shows every value given."""
    pts = [float(v) for v in values if v is not None and np.isfinite(v)]
    if ratio:
        pts = [p for p in pts if p > 0]
        need = max([abs(math.log10(p)) for p in pts], default=0.0)
        for lim in RATIO_LIMITS:
            if math.log10(lim) >= need * 1.02:
                return 1.0 / lim, lim
        return 1.0 / RATIO_LIMITS[-1], RATIO_LIMITS[-1]
    need = max([abs(p) for p in pts], default=0.0)
    for lim in DIFFERENCE_LIMITS:
        if lim >= need * 1.02:
            return -lim, lim
    return -DIFFERENCE_LIMITS[-1], DIFFERENCE_LIMITS[-1]


def _axis_limits(rows: Sequence[ForestRow], ratio: bool) -> tuple[float, float]:
    """Symmetric limits as RevMan offers them (:func:`symmetric_limits`): the smallest that
    shows every point estimate and the pooled CI (CI lines that go beyond end in an arrow)."""
    pts = [r.est for r in rows if r.kind in ("study", "total") and np.isfinite(r.est)]
    pts += [v for r in rows if r.kind == "total" for v in (r.lo, r.hi) if np.isfinite(v)]
    return symmetric_limits(pts, ratio)


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    lim = hi
    if lim == 2.0:
        return [0.5, 0.7, 1.0, 1.5, 2.0]
    if lim == 5.0:
        return [0.2, 0.5, 1.0, 2.0, 5.0]
    return [v for v in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0) if lo <= v <= hi]


def _rob_letter(j: int) -> str:
    """Column letters of the risk-of-bias panel (A, B, …), explained in a legend as in RevMan."""
    return chr(ord("A") + j)


def _text_width(text: str, fontsize: float, bold: bool = False) -> float:
    """Width of *text* in inches as the Agg renderer lays it out (DejaVu Sans)."""
    if not text:
        return 0.0
    renderer = RendererAgg(10, 10, 72)
    props = FontProperties(family="DejaVu Sans", size=fontsize, weight="bold" if bold else "normal")
    width, _, _ = renderer.get_text_width_height_descent(text, props, ismath=False)
    return width / 72


def _layout(rows, width: float, fontsize: float, compact: bool | None, n_rob: int, headers: dict) -> dict:
    """Column positions in inches (right edges of numbers, left edge of the effect text).

    The full RevMan layout has Events and Total columns per arm; the compact layout (used
    automatically when the full one does not fit *width*) prints "events/total" per arm.
    """
    char = fontsize / 72 * 0.56  # mean width of a DejaVu Sans character, inches (spacing unit)
    label_rows = [r for r in rows if r.kind in ("study", "total", "events", "header")]
    label_in = max(_text_width(r.label, fontsize, bold=r.kind in ("total", "header")) for r in label_rows)
    effect_in = max(_text_width(r.effect, fontsize, bold=r.kind == "total") for r in rows)

    def build(compact_: bool) -> dict:
        head = headers["compact" if compact_ else "full"]
        cols: dict[str, float] = {}
        x = max(label_in, _text_width(head["study"], fontsize, bold=True)) + char
        cells = [_cells(r, compact_) for r in rows]
        bold = [r.kind in ("total", "header") for r in rows]

        def col_width(key: str, title: str) -> float:
            widths = [_text_width(c[key], fontsize, bold=b) for c, b in zip(cells, bold, strict=True)]
            return max([_text_width(title, fontsize, bold=True), *widths]) + (1.2 if compact_ else 2.0) * char

        num = col_width("n_t", head["value"]) if not compact_ else 0.0
        if compact_:
            for key in ("arm_t", "arm_c"):
                x += col_width(key, "Control")
                cols[key] = x
        else:
            for key in ("events_t", "n_t", "events_c", "n_c"):
                x += max(num, col_width(key, head["value"]))
                cols[key] = x
        x += col_width("weight", "Weight") + (0.0 if compact_ else char)
        cols["weight"] = x
        x += 2.0 * char
        cols["effect"] = x
        x += max(effect_in, *(_text_width(t, fontsize, bold=True) for t in head["effect"])) + 1.5 * char
        rob_step = 2.6 * char
        rob_width = n_rob * rob_step + (1.5 * char if n_rob else 0.0)
        plot_width = width - x - rob_width - char
        return dict(
            cols=cols, plot_left=x, plot_width=plot_width, char=char, num=num, rob_step=rob_step, compact=compact_, head=head
        )

    layout = build(bool(compact))
    if compact is None and layout["plot_width"] < MIN_PLOT_WIDTH:
        layout = build(True)
    if layout["plot_width"] < MIN_PLOT_WIDTH:
        raise ValueError(
            f"forest plot: width {width:.2f} in is too narrow for these columns at {fontsize} pt "
            f"(needs at least {width - layout['plot_width'] + MIN_PLOT_WIDTH:.2f} in); "
            "pass a larger width or a smaller fontsize"
        )
    return layout


def _cells(r: ForestRow, compact: bool) -> dict[str, str]:
    """The right-aligned number cells of a row in the chosen layout."""
    if compact:
        arm_t = f"{r.events_t}/{r.n_t}" if r.events_t and r.n_t else (r.events_t or r.n_t)
        arm_c = f"{r.events_c}/{r.n_c}" if r.events_c and r.n_c else (r.events_c or r.n_c)
        return {"arm_t": arm_t, "arm_c": arm_c, "weight": r.weight}
    return {"events_t": r.events_t, "n_t": r.n_t, "events_c": r.events_c, "n_c": r.n_c, "weight": r.weight}


@dataclass(frozen=True)
class _Frame:
    """The figure of a forest plot: the text axes (inches across), the plot panel and geometry."""

    fig: object
    ax_text: object
    ax: object
    n: int
    height: float
    row_h: float
    axis_h: float
    scale: float


def _rob_domains(rows: Sequence[ForestRow]) -> list[str]:
    domains: list[str] = []
    for r in rows:
        for d in r.rob:
            if d not in domains:
                domains.append(d)
    return domains


def _rob_legend(domains: Sequence[str]) -> list[str]:
    if not domains:
        return []
    return ["Risk of bias: " + "; ".join(f"({_rob_letter(j)}) {d}" for j, d in enumerate(domains)),
            "+ low, − some concerns / moderate, X high / serious, ! critical, ? no information"]


def _headers(effect_title: str, value_header: str = "Events") -> dict:
    first, second = effect_title.split("\n", 1)
    short = f"{_MEASURE_SHORT.get(first, first)} [{second.rsplit(', ', 1)[-1]}]"
    return {
        "full": {"study": "Study or Subgroup", "effect": (first, second), "value": value_header},
        "compact": {"study": "Study", "effect": ("", short), "value": value_header},
    }


def _frame(n: int, n_legend: int, layout: dict, width: float, fontsize: float, title: str | None) -> _Frame:
    """The figure with its two axes: text across the whole width, the plot panel in its column."""
    scale = fontsize / 7.0
    row_h, header_h, footer_h = ROW_HEIGHT * scale, HEADER_HEIGHT * scale, FOOTER_HEIGHT * scale
    axis_h = footer_h
    footer_h += n_legend * row_h
    rows_height = n * row_h
    height = header_h + (0.25 * scale if title else 0.0) + rows_height + footer_h
    fig = plt.figure(figsize=(width, height))
    y0, h = footer_h / height, rows_height / height
    ax_text = fig.add_axes((0.0, y0, 1.0, h))
    ax_text.set_xlim(0, width)
    ax_text.set_ylim(n - 0.5, -0.5)
    ax_text.axis("off")
    ax = fig.add_axes((layout["plot_left"] / width, y0, layout["plot_width"] / width, h))
    ax.set_ylim(n - 0.5, -0.5)
    ax.patch.set_visible(False)  # long statistics lines may run under the plot panel
    return _Frame(fig, ax_text, ax, n, height, row_h, axis_h, scale)


def _x_axis(ax, rows: Sequence[ForestRow], ratio: bool, xlim, fontsize: float) -> tuple[float, float, float]:
    """Limits, ticks and spines of the plot panel; returns (low limit, high limit, line of no effect)."""
    lo_lim, hi_lim = xlim if xlim is not None else _axis_limits(rows, ratio)
    if ratio:
        ax.set_xscale("log")
        ticks, ref = _ratio_ticks(lo_lim, hi_lim), 1.0
    else:
        ticks, ref = list(np.linspace(lo_lim, hi_lim, 5)), 0.0
    ax.set_xlim(lo_lim, hi_lim)
    set_ticks(ax, ticks, fontsize=fontsize - 0.5)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=2.5, pad=1.5)
    return lo_lim, hi_lim, ref


def _column_headers(frame: _Frame, layout: dict, arm_labels: tuple[str, str], effect_title: str,
                    n_rob: int, fontsize: float, title: str | None) -> None:
    ax_text, cols_in, kw = frame.ax_text, layout["cols"], dict(fontsize=fontsize, va="center")
    head_y1, head_y2 = -2.2, -1.2
    ax_text.text(0.02, head_y2, layout["head"]["study"], fontweight="bold", **kw)
    if layout["compact"]:
        for key, arm in (("arm_t", arm_labels[0]), ("arm_c", arm_labels[1])):
            ax_text.text(cols_in[key], head_y1, arm, ha="right", fontweight="bold", **kw)
            ax_text.text(cols_in[key], head_y2, "n/N", ha="right", fontweight="bold", **kw)
    else:
        num = layout["num"]
        for a, b, arm in (("events_t", "n_t", arm_labels[0]), ("events_c", "n_c", arm_labels[1])):
            ax_text.text((cols_in[a] + cols_in[b]) / 2 - num / 2, head_y1, arm, ha="center", fontweight="bold", **kw)
        value = layout["head"]["value"]
        for key, text in (("events_t", value), ("n_t", "Total"), ("events_c", value), ("n_c", "Total")):
            ax_text.text(cols_in[key], head_y2, text, ha="right", fontweight="bold", **kw)
    ax_text.text(cols_in["weight"], head_y2, "Weight", ha="right", fontweight="bold", **kw)
    effect_head = layout["head"]["effect"]
    ax_text.text(cols_in["effect"], head_y1, effect_head[0], ha="left", fontweight="bold", **kw)
    ax_text.text(cols_in["effect"], head_y2, effect_head[1], ha="left", fontweight="bold", **kw)
    first, second = effect_title.split("\n", 1)
    plot_left, plot_width = layout["plot_left"], layout["plot_width"]
    plot_head = second
    if _text_width(plot_head, fontsize, bold=True) > plot_width and " (" in plot_head:
        plot_head = plot_head.split(" (")[0] + ", " + plot_head.rsplit(", ", 1)[-1]
    ax_text.text(plot_left + plot_width / 2, head_y1, first, ha="center", fontweight="bold", **kw)
    ax_text.text(plot_left + plot_width / 2, head_y2, plot_head, ha="center", fontweight="bold", **kw)
    for j in range(n_rob):
        ax_text.text(_rob_x(layout, j), head_y2, _rob_letter(j), ha="center", fontweight="bold", **kw)
    for t in ax_text.texts:
        t.set_clip_on(False)
    if title:
        frame.fig.text(0.01, 1 - 0.12 * frame.scale / frame.height, title, fontsize=fontsize + 1, fontweight="bold",
                       va="center", ha="left")


def _rob_x(layout: dict, j: int) -> float:
    """Centre (inches) of risk-of-bias column *j*, right of the plot panel."""
    rob_x0 = layout["plot_left"] + layout["plot_width"] + 1.5 * layout["char"]
    return rob_x0 + layout["rob_step"] * (j + 0.5)


def _row_text(frame: _Frame, i: int, r: ForestRow, layout: dict, rob_domains: Sequence[str], fontsize: float) -> None:
    """Label, number cells, effect text and risk-of-bias symbols of row *i*."""
    ax_text, cols_in, kw = frame.ax_text, layout["cols"], dict(fontsize=fontsize, va="center")
    weight_kw = {"fontweight": "bold"} if r.kind in ("total", "header") else {}
    if r.kind in ("study", "total", "events", "header", "pi"):
        ax_text.text(0.02, i, r.label, ha="left", **kw, **weight_kw)
    elif r.kind == "text":
        ax_text.text(0.02, i, r.label, ha="left", **kw)
    for key, value in _cells(r, layout["compact"]).items():
        if value:
            ax_text.text(cols_in[key], i, value, ha="right", **kw, **weight_kw)
    if r.effect:
        ax_text.text(cols_in["effect"], i, r.effect, ha="left", **kw, **weight_kw)
    for j, d in enumerate(rob_domains):
        judgement = r.rob.get(d, "")
        colour, symbol = ROB_STYLE.get(judgement.strip().lower(), (style.GREY, "") if judgement else (None, ""))
        if colour is not None and r.kind == "study":
            cx = _rob_x(layout, j)
            ax_text.scatter([cx], [i], s=(0.8 * layout["rob_step"] * 72) ** 2, marker="o", color=colour, zorder=3,
                            clip_on=False)
            ax_text.text(cx, i, symbol, ha="center", fontsize=fontsize - 1, va="center", color="black", zorder=4)


def _row_marks(ax, i: int, r: ForestRow, limits: tuple[float, float], max_weight: float, max_side_pt: float) -> None:
    """Square and CI of a study, diamond of a total, bar of a prediction interval."""
    lo_lim, hi_lim = limits
    if r.kind == "study" and np.isfinite(r.est):
        _draw_ci(ax, i, r.lo, r.hi, lo_lim, hi_lim, colour=style.MSC_COLOUR)
        side = max_side_pt * math.sqrt(max(r.weight_value, 0.0) / max_weight) if np.isfinite(r.weight_value) else 2.0
        side = max(side, 2.0)
        if lo_lim <= r.est <= hi_lim:
            ax.scatter([r.est], [i], s=side**2, marker="s", color=style.MSC_COLOUR, linewidths=0, zorder=3)
    elif r.kind == "total" and np.isfinite(r.est):
        d_lo, d_hi = max(r.lo, lo_lim), min(r.hi, hi_lim)
        ax.add_patch(Polygon([(d_lo, i), (r.est, i - 0.38), (d_hi, i), (r.est, i + 0.38)], closed=True,
                             facecolor=style.POOLED_COLOUR, edgecolor=style.POOLED_COLOUR, lw=0.5, zorder=3))
    elif r.kind == "pi" and np.isfinite(r.lo):
        _draw_ci(ax, i, r.lo, r.hi, lo_lim, hi_lim, colour=style.GREY, lw=2.2)


def _draw_rows(frame: _Frame, rows: Sequence[ForestRow], layout: dict, rob_domains: Sequence[str],
               limits: tuple[float, float], ref: float, fontsize: float) -> None:
    weights = [r.weight_value for r in rows if r.kind == "study" and np.isfinite(r.weight_value)]
    max_weight = max(weights, default=1.0) or 1.0
    max_side_pt = 0.62 * frame.row_h * 72
    span = [i for i, r in enumerate(rows) if r.kind in ("study", "total", "header")]
    if span:
        frame.ax.plot([ref, ref], [min(span) - 0.5, max(span) + 0.5], color="black", lw=0.6, zorder=1)
    for i, r in enumerate(rows):
        _row_text(frame, i, r, layout, rob_domains, fontsize)
        _row_marks(frame.ax, i, r, limits, max_weight, max_side_pt)


def _favours_and_legend(frame: _Frame, legend: Sequence[str], favours: tuple[str, str], ratio: bool,
                        limits: tuple[float, float], ref: float, fontsize: float) -> None:
    """The "Favours" labels under the axis and the risk-of-bias legend below them."""
    lo_lim, hi_lim = limits
    kw = dict(fontsize=fontsize, va="center")
    fav_y = -(frame.axis_h * 0.62) / (frame.n * frame.row_h)
    for j, line in enumerate(legend):
        frame.ax_text.text(0.02, frame.n - 0.5 + frame.axis_h / frame.row_h + 0.5 + j, line, ha="left", clip_on=False, **kw)
    if ratio:
        at = (math.log(ref) - math.log(lo_lim)) / (math.log(hi_lim) - math.log(lo_lim))
    else:
        at = (ref - lo_lim) / (hi_lim - lo_lim)
    frame.ax.text(at - 0.02, fav_y, f"Favours {favours[0]}", transform=frame.ax.transAxes, ha="right", va="center",
                  fontsize=fontsize)
    frame.ax.text(at + 0.02, fav_y, f"Favours {favours[1]}", transform=frame.ax.transAxes, ha="left", va="center",
                  fontsize=fontsize)


def _draw(
    rows: list[ForestRow],
    *,
    ratio: bool,
    effect_title: str,
    arm_labels: tuple[str, str],
    favours: tuple[str, str],
    width: float,
    fontsize: float,
    title: str | None,
    xlim: tuple[float, float] | None,
    compact: bool | None = None,
    value_header: str = "Events",
):
    rob_domains = _rob_domains(rows)
    legend = _rob_legend(rob_domains)
    layout = _layout(rows, width, fontsize, compact, len(rob_domains), _headers(effect_title, value_header))
    frame = _frame(len(rows), len(legend), layout, width, fontsize, title)
    lo_lim, hi_lim, ref = _x_axis(frame.ax, rows, ratio, xlim, fontsize)
    _column_headers(frame, layout, arm_labels, effect_title, len(rob_domains), fontsize, title)
    _draw_rows(frame, rows, layout, rob_domains, (lo_lim, hi_lim), ref, fontsize)
    _favours_and_legend(frame, legend, favours, ratio, (lo_lim, hi_lim), ref, fontsize)
    return frame.fig


def _draw_ci(ax, y: float, lo: float, hi: float, lo_lim: float, hi_lim: float, colour: str, lw: float = 0.8) -> None:
    """A CI line clipped to the axis, with an arrow head where it runs off the axis."""
    a, b = max(lo, lo_lim), min(hi, hi_lim)
    if b < lo_lim or a > hi_lim:
        return
    ax.plot([a, b], [y, y], color=colour, lw=lw, solid_capstyle="butt", zorder=2)
    if lo < lo_lim:
        ax.plot([lo_lim], [y], marker="<", color=colour, markersize=3.5, zorder=2, clip_on=False)
    if hi > hi_lim:
        ax.plot([hi_lim], [y], marker=">", color=colour, markersize=3.5, zorder=2, clip_on=False)


def _arm_and_favour_labels(arm_labels, favours):
    arms = tuple(arm_labels)
    fav = tuple(favours) if favours is not None else arms
    if len(arms) != 2 or len(fav) != 2:
        raise ValueError("forest plot: arm_labels and favours must each name two arms (treatment, control)")
    return arms, fav


def forest_plot(
    result,
    *,
    arm_labels: Sequence[str] = ("MSC", "Control"),
    favours: Sequence[str] | None = ("MSC", "control"),
    show_pi: bool | None = None,
    rob: pd.DataFrame | None = None,
    title: str | None = None,
    width: float = style.PAGE_WIDTH,
    fontsize: float = 7.0,
    xlim: tuple[float, float] | None = None,
    compact: bool | None = None,
    labels: Mapping[str, str] | None = None,
    arms: pd.DataFrame | None = None,
):
    """Draw a RevMan-style forest plot of a pooled analysis (binary or continuous outcome).

    Parameters
    ----------
    result : MetaResult
        Output of :func:`mscmeta.engine.binary.meta_binary`.
    arm_labels : (str, str)
        Column-group titles for the treatment and control arms.
    favours : (str, str)
        Under the axis: "Favours <treatment>" left of the line of no effect and
        "Favours <control>" right of it (for a harmful outcome such as death, a ratio
        below 1 favours the treatment).
    show_pi : bool, optional
        Draw the prediction interval under the pooled diamond (default: for random-effects
        models that report one).
    rob : DataFrame, optional
        Risk-of-bias judgements, index = study label, one column per domain; drawn as
        traffic-light circles right of the plot.
    title : str, optional
    width : float
        Figure width in inches (default: journal page width). The height is fixed per row.
    fontsize : float
        Text size in points (7 pt reads well at page width; use 5.5 at column width).
    xlim : (float, float), optional
        Axis limits on the display scale (default: the smallest symmetric RevMan range that
        shows every point estimate and the pooled CI).
    compact : bool, optional
        Print "events/total" in one column per arm instead of RevMan's separate Events and
        Total columns. Default: only when the full layout does not fit *width*.
    labels : mapping, optional
        Study identifier → label printed in the plot (e.g. ``"adas2021"`` → ``"Adas 2021"``).
        The risk-of-bias table is indexed by the identifiers.
    arms : DataFrame, optional
        For a continuous outcome (MD, SMD): the arm-level input indexed by study identifier
        (``mean_t, sd_t, n_t, mean_c, sd_c, n_c``), printed as "Mean (SD)" and "Total" per arm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    arm_names, fav = _arm_and_favour_labels(arm_labels, favours)
    rows = forest_rows(result, show_pi=show_pi, rob=rob, labels=labels, arms=arms)
    continuous = str(result.measure).upper() in CONTINUOUS_MEASURES
    return _draw(
        rows,
        ratio=result.is_ratio(),
        effect_title=effect_column_title(result),
        arm_labels=arm_names,
        favours=fav,
        width=width,
        fontsize=fontsize,
        title=title,
        xlim=xlim,
        compact=False if continuous and compact is None else compact,
        value_header="Mean (SD)" if continuous else "Events",
    )


def subgroup_forest(
    subgroup_result,
    *,
    arm_labels: Sequence[str] = ("MSC", "Control"),
    favours: Sequence[str] | None = ("MSC", "control"),
    show_pi: bool = False,
    rob: pd.DataFrame | None = None,
    title: str | None = None,
    width: float = style.PAGE_WIDTH,
    fontsize: float = 7.0,
    xlim: tuple[float, float] | None = None,
    compact: bool | None = None,
    labels: Mapping[str, str] | None = None,
    data: pd.DataFrame | None = None,
    study_column: str = "study",
):
    """Draw a RevMan-style forest plot with subgroups.

    Each subgroup gets a bold header, its study rows (weights as percentages of the
    overall analysis, as in RevMan), a "Subtotal (95% CI)" diamond with its own
    heterogeneity and overall-effect lines; then the overall "Total (95% CI)" and
    the test for subgroup differences. A subgroup that cannot be pooled (single
    double-zero study, all-zero subgroup) is shown as "Not estimable".

    Parameters are those of :func:`forest_plot`; *subgroup_result* is the output of
    :func:`mscmeta.engine.subgroups.subgroup_analysis`. Pass the analysed *data* (with the
    grouping column and the study column *study_column*) to list the studies of a
    subgroup that is not estimable by name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    arms, fav = _arm_and_favour_labels(arm_labels, favours)
    rows = subgroup_forest_rows(subgroup_result, show_pi=show_pi, rob=rob, labels=labels, data=data, study_column=study_column)
    overall = subgroup_result.overall
    return _draw(
        rows,
        ratio=overall.is_ratio(),
        effect_title=effect_column_title(overall),
        arm_labels=arms,
        favours=fav,
        width=width,
        fontsize=fontsize,
        title=title,
        xlim=xlim,
        compact=compact,
    )
