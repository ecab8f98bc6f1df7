"""Risk-of-bias figures in the style of robvis (McGuinness LA, Higgins JPT, Res Syn Meth
2021;12:55-61; R package ``robvis``, functions ``rob_traffic_light`` and ``rob_summary``).

* :func:`traffic_light` - study x domain grid of coloured circles carrying a symbol,
  an ``Overall`` column on a light-grey background, grey header strips, a legend of
  the judgements present and the domain captions below.
* :func:`summary_bar` - one horizontal bar per domain (``Overall`` last, in bold),
  split into the share of studies (or of analysis weight) in each judgement.
* :func:`rob_columns_for_forest` - per-study symbols and colours for a risk-of-bias
  column beside a forest plot (as robvis ``rob_forest`` and RevMan draw it).

Colours and symbols are robvis's "cochrane" palette and shapes
(``R/helpers.R``: ``get_colour``; ``R/rob_traffic_light.R``: ``scale_shape_manual``):
low ``+`` green, some concerns / moderate ``−`` yellow, high / serious ``X`` red,
critical ``!`` dark red, no information ``?`` blue. Figure sizes are fixed by the
number of studies; fonts are DejaVu Sans (:mod:`mscmeta.plots.style`).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from mscmeta.engine.rob_tools import OVERALL, ROB2, ROBINS_I, ToolSpec, tool_spec
from mscmeta.plots.style import PAGE_WIDTH

#: robvis "cochrane" colours per tool and judgement.
ROB_COLOURS: dict[str, dict[str, str]] = {
    ROB2.name: {"low": "#02C100", "some concerns": "#E2DF07", "high": "#BF0000"},
    ROBINS_I.name: {
        "low": "#02C100",
        "moderate": "#E2DF07",
        "serious": "#BF0000",
        "critical": "#820000",
        "no information": "#4EA1F7",
    },
}

#: Symbol drawn inside each circle (robvis shapes 43 "+", 45 "-", 120 "x", 33 "!", 63 "?").
ROB_SYMBOLS: dict[str, dict[str, str]] = {
    ROB2.name: {"low": "+", "some concerns": "\u2212", "high": "X"},
    ROBINS_I.name: {
        "low": "+",
        "moderate": "\u2212",
        "serious": "X",
        "critical": "!",
        "no information": "?",
    },
}

#: Legend labels (robvis ``scale_colour_manual`` labels).
ROB_LABELS: dict[str, dict[str, str]] = {
    ROB2.name: {"low": "Low", "some concerns": "Some concerns", "high": "High"},
    ROBINS_I.name: {
        "low": "Low",
        "moderate": "Moderate",
        "serious": "Serious",
        "critical": "Critical",
        "no information": "No information",
    },
}

#: Background of the header strips and of the Overall column (robvis theme_rob_tf).
STRIP_COLOUR = "#a9a9a9"
OVERALL_BACKGROUND = "#d3d3d3"
GRID_COLOUR = "#bebebe"

# Layout of the traffic-light plot, in inches.
_CELL_W = 0.42
_ROW_H = 0.34
_LABEL_W = 1.45
_HEADER_H = 0.26
_TITLE_H = 0.22
_CAPTION_LINE = 0.15
_MARGIN = 0.08


def _tool_rows(df: pd.DataFrame, spec: ToolSpec, outcome: str | None) -> pd.DataFrame:
    rows = df[df["tool"] == spec.name]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    if rows.empty:
        raise ValueError(f"no {spec.name} assessments to plot" + (f" for outcome {outcome!r}" if outcome else ""))
    outcomes = sorted(rows["outcome"].unique())
    if len(outcomes) > 1:
        raise ValueError(f"{spec.name} assessments cover several outcomes ({', '.join(outcomes)}); pass outcome=")
    bad = sorted(set(rows["judgement"]) - set(spec.judgements))
    if bad:
        raise ValueError(f"{spec.name}: judgement(s) {', '.join(map(repr, bad))} not on the tool's scale")
    return rows


def _wide(rows: pd.DataFrame, spec: ToolSpec, overall: bool) -> pd.DataFrame:
    columns = [*spec.domain_codes, OVERALL] if overall else list(spec.domain_codes)
    wide = rows.pivot(index="study_id", columns="domain", values="judgement").reindex(columns=columns)
    missing = wide.isna()
    if missing.any().any():
        gaps = [f"{s} {d}" for s, d in zip(*np.nonzero(missing.to_numpy()))]
        names = [f"{wide.index[i]} {columns[j]}" for i, j in zip(*np.nonzero(missing.to_numpy()))]
        raise ValueError(f"{spec.name}: missing judgement(s) for {', '.join(names or gaps)}")
    return wide


def _caption(spec: ToolSpec) -> str:
    return "Domains:\n" + "\n".join(f"{code}: {name}." for code, name in spec.domains)


def traffic_light(
    df: pd.DataFrame,
    tool: str,
    outcome: str | None = None,
    labels: Mapping[str, str] | None = None,
    overall: bool = True,
) -> Figure:
    """Traffic-light plot of one tool's assessments (robvis ``rob_traffic_light``).

    Parameters
    ----------
    df : DataFrame
        Validated assessments in the long format of ``risk_of_bias.csv``.
    tool : str
        ``"RoB 2"`` or ``"ROBINS-I"``; only that tool's studies are drawn.
    outcome : str, optional
        Outcome to draw when the table holds several.
    labels : mapping, optional
        Display label per ``study_id`` (e.g. ``"Shi 2021"``); default the id itself.
    overall : bool
        Draw the Overall column.

    Returns
    -------
    Figure
        Width fixed by the tool's number of domains, height by the number of studies.
        Studies are in alphabetical order of their label (case-insensitive).
    """
    spec = tool_spec(tool)
    wide = _wide(_tool_rows(df, spec, outcome), spec, overall)
    names = {s: (labels or {}).get(s, s) for s in wide.index}
    wide = wide.loc[sorted(wide.index, key=lambda s: (names[s].casefold(), s))]
    present = [j for j in spec.judgements if (wide.to_numpy() == j).any()]
    fig, ax, bottom_h = _traffic_light_frame(wide.shape, len(spec.domains), len(present))
    _traffic_light_grid(ax, wide.shape, overall)
    _traffic_light_labels(ax, wide, names)
    _traffic_light_marks(ax, wide, spec)
    _traffic_light_key(fig, spec, present, bottom_h)
    return fig


def _traffic_light_frame(shape: tuple[int, int], n_domains: int, n_present: int) -> tuple[Figure, object, float]:
    """Figure sized by the grid (cells of fixed size) and the caption/legend below it."""
    n_rows, n_cols = shape
    legend_h = (n_present + 1) * _CAPTION_LINE
    bottom_h = max((n_domains + 1) * _CAPTION_LINE, legend_h) + 0.15
    grid_w, grid_h = n_cols * _CELL_W, n_rows * _ROW_H
    fig_w = max(PAGE_WIDTH * 0.62, _MARGIN + 0.2 + _LABEL_W + grid_w + _MARGIN)
    fig_h = _MARGIN + _TITLE_H + _HEADER_H + grid_h + bottom_h + _MARGIN
    left = fig_w - _MARGIN - grid_w - 0.05
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes(
        (left / fig_w, (bottom_h + _MARGIN) / fig_h, grid_w / fig_w, grid_h / fig_h),
        label="traffic_light",
    )
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_axis_off()
    return fig, ax, bottom_h


def _traffic_light_grid(ax, shape: tuple[int, int], overall: bool) -> None:
    n_rows, n_cols = shape
    if overall:
        ax.add_patch(Rectangle((n_cols - 1, 0), 1, n_rows, facecolor=OVERALL_BACKGROUND, edgecolor="none", zorder=0))
    for i in range(n_rows + 1):
        ax.plot([0, n_cols], [i, i], color=GRID_COLOUR, lw=0.6, zorder=1, solid_capstyle="butt")
    for j in range(n_cols + 1):
        ax.plot([j, j], [0, n_rows], color=GRID_COLOUR, lw=0.6, zorder=1, solid_capstyle="butt")


def _traffic_light_labels(ax, wide: pd.DataFrame, names: Mapping[str, str]) -> None:
    """Domain strips above the grid, study strips to its left."""
    n_rows, n_cols = wide.shape
    header_units = _HEADER_H / _ROW_H
    label_units = _LABEL_W / _CELL_W
    for j, code in enumerate(wide.columns):
        ax.add_patch(
            Rectangle((j, -header_units), 1, header_units, facecolor=STRIP_COLOUR, edgecolor="white", lw=0.6, clip_on=False)
        )
        ax.text(j + 0.5, -header_units / 2, code, ha="center", va="center", fontsize=7.5, clip_on=False)
    ax.text(n_cols / 2, -header_units - 0.12, "Risk of bias domains", ha="center", va="bottom", fontsize=8, clip_on=False)
    for i, study in enumerate(wide.index):
        ax.add_patch(
            Rectangle((-label_units, i), label_units, 1, facecolor=STRIP_COLOUR, edgecolor="white", lw=0.6, clip_on=False)
        )
        ax.text(-0.15, i + 0.5, names[study], ha="right", va="center", fontsize=7.5, clip_on=False)
    ax.text(-label_units - 0.25, n_rows / 2, "Study", rotation=90, ha="center", va="center", fontsize=8, clip_on=False)


def _traffic_light_marks(ax, wide: pd.DataFrame, spec: ToolSpec) -> None:
    """One coloured disc with the robvis symbol per judgement."""
    colours, symbols = ROB_COLOURS[spec.name], ROB_SYMBOLS[spec.name]
    diameter_pt = 0.78 * min(_CELL_W, _ROW_H) * 72
    for level in spec.judgements:
        ii, jj = np.nonzero(wide.to_numpy() == level)
        if len(ii) == 0:
            continue
        ax.scatter(jj + 0.5, ii + 0.5, s=diameter_pt**2, c=colours[level], edgecolors="black", linewidths=0.6, zorder=2,
                   label=f"_{level}", gid=f"rob-{level.replace(' ', '-')}")
        for i, j in zip(ii, jj):
            ax.text(j + 0.5, i + 0.5, symbols[level], ha="center", va="center", fontsize=8, fontweight="bold",
                    color="black", zorder=3, gid="rob-symbol")


def _traffic_light_key(fig: Figure, spec: ToolSpec, present: list[str], bottom_h: float) -> None:
    """The domain caption (bottom left) and the judgement legend (bottom right)."""
    fig_w, fig_h = fig.get_figwidth(), fig.get_figheight()
    colours, symbols = ROB_COLOURS[spec.name], ROB_SYMBOLS[spec.name]
    fig.text(_MARGIN / fig_w, (bottom_h - 0.05) / fig_h, _caption(spec), ha="left", va="top", fontsize=6.5, linespacing=1.35)
    handles = [
        Line2D([], [], marker="o", linestyle="none", markersize=9, markerfacecolor=colours[level],
               markeredgecolor="black", markeredgewidth=0.6)
        for level in present
    ]
    legend = fig.legend(
        handles, [f"{symbols[level]}  {ROB_LABELS[spec.name][level]}" for level in present], title="Judgement",
        loc="upper right", bbox_to_anchor=(1 - _MARGIN / fig_w, (bottom_h - 0.02) / fig_h), frameon=False,
        fontsize=6.5, title_fontsize=7, handletextpad=0.4, labelspacing=0.35,
    )
    legend.set_gid("rob-legend")


def _normalised_weights(studies: pd.Index, weights: Mapping[str, float] | pd.Series | None) -> tuple[pd.Series, str]:
    if weights is None:
        return pd.Series(1.0, index=studies), "Share of studies (unweighted)"
    w = pd.Series(weights, dtype=float)
    if w.isna().any() or (w < 0).any() or not np.isfinite(w.to_numpy()).all():
        raise ValueError("weights must be finite and non-negative")
    w = w.reindex(studies)
    if w.isna().all() or w.fillna(0).sum() <= 0:
        raise ValueError("none of the assessed studies has a positive weight")
    return w, "Share of analysis weight"


def summary_bar(
    df: pd.DataFrame,
    tool: str,
    weights: Mapping[str, float] | pd.Series | None = None,
    outcome: str | None = None,
    overall: bool = True,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Summary bar plot of one tool's assessments (robvis ``rob_summary``).

    Parameters
    ----------
    df : DataFrame
        Validated assessments in the long format of ``risk_of_bias.csv``.
    tool : str
        ``"RoB 2"`` or ``"ROBINS-I"``.
    weights : mapping or Series, optional
        Weight of each ``study_id`` (e.g. its weight in the primary mortality
        analysis). Proportions are then shares of the total weight of the studies
        that have one; assessed studies without a weight are left out and the
        figure says how many (as for studies with weight 0, e.g. double-zero
        studies). Without weights every study counts once.
    outcome : str, optional
        Outcome to draw when the table holds several.
    overall : bool
        Add a bar for the overall judgement (last, in bold).
    labels : mapping, optional
        Display label per ``study_id``, for the note naming studies without weight.

    Returns
    -------
    Figure
        Fixed size (page width x a height set by the tool's number of domains).
    """
    spec = tool_spec(tool)
    rows = _tool_rows(df, spec, outcome)
    wide = _wide(rows, spec, overall)
    w, xlabel = _normalised_weights(wide.index, weights)
    used = w[w > 0].index
    note = ""
    if weights is not None:
        note = f"{len(used)} of {len(wide)} assessed studies carry weight in the analysis"
        if len(used) < len(wide):
            unweighted = sorted((labels or {}).get(s, s) for s in set(wide.index) - set(used))
            note += f"; no weight: {', '.join(unweighted)}"
    wide, w = wide.loc[used], w.loc[used]
    total = w.sum()
    colours = ROB_COLOURS[spec.name]
    full_names = spec.domain_names

    n_bars = wide.shape[1]
    fig_h = 0.55 + 0.3 * n_bars + 0.55
    fig = plt.figure(figsize=(PAGE_WIDTH, fig_h))
    ax = fig.add_axes((0.42, 0.5 / fig_h + 0.05, 0.55, (0.3 * n_bars) / fig_h), label="summary_bar")
    present = [j for j in spec.judgements if (wide.to_numpy() == j).any()]
    for pos, domain in enumerate(wide.columns):
        y = pos
        start = 0.0
        for level in spec.judgements:
            share = float(w[wide[domain] == level].sum() / total)
            if share <= 0:
                continue
            ax.barh(
                y, share, left=start, height=0.7, color=colours[level], edgecolor="black", linewidth=0.6,
                gid=f"rob-bar-{domain}-{level.replace(' ', '-')}",
            )
            start += share
    ax.set_ylim(n_bars - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_yticks(range(n_bars))
    ax.set_yticklabels([full_names[d] for d in wide.columns], fontsize=7.5)
    for label, domain in zip(ax.get_yticklabels(), wide.columns):
        if domain == OVERALL:
            label.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.set_xticks(np.linspace(0, 1, 5))
    ax.set_xticklabels([f"{int(round(x * 100))}%" for x in np.linspace(0, 1, 5)])
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=7.5)
    handles = [Patch(facecolor=colours[lvl], edgecolor="black", linewidth=0.6) for lvl in present]
    legend = fig.legend(
        handles,
        [ROB_LABELS[spec.name][lvl] + (" risk" if lvl not in ("some concerns", "no information") else "") for lvl in present],
        loc="lower center",
        ncol=len(present),
        bbox_to_anchor=(0.5, 0.0),
        frameon=True,
        edgecolor="black",
        fontsize=7,
        handlelength=1.2,
    )
    legend.set_gid("rob-legend")
    legend.get_frame().set_linewidth(0.6)
    title = f"{spec.name}: {len(wide)} stud{'y' if len(wide) == 1 else 'ies'}"
    fig.text(0.02, 1 - 0.08 / fig_h, title, ha="left", va="top", fontsize=8, fontweight="bold")
    if note:
        fig.text(0.02, 1 - 0.26 / fig_h, note, ha="left", va="top", fontsize=6.5)
    return fig


def rob_columns_for_forest(
    df: pd.DataFrame,
    tool: str | None = None,
    outcome: str | None = None,
    style_columns: bool = True,
) -> pd.DataFrame:
    """Per-study judgement, symbol and colour of every domain, for a risk-of-bias
    column beside a forest plot (robvis ``rob_forest``, RevMan's risk-of-bias legend).

    Parameters
    ----------
    df : DataFrame
        Validated assessments.
    tool : str, optional
        Restrict to one tool. By default every study with its own tool: RoB 2 studies
        then have empty D6/D7 cells, and a domain code means different things in the
        two tools (D1 is randomisation in RoB 2, confounding in ROBINS-I), so a mixed
        forest plot should show the ``Overall`` column only or label domains by tool.
    outcome : str, optional
        Restrict to one outcome.
    style_columns : bool
        Add ``tool`` and the ``X_symbol`` / ``X_colour`` columns. With ``False`` the
        frame holds only the judgement columns, the form
        ``mscmeta.plots.forest.forest(..., rob=...)`` takes (index ``study_id``, one
        column per domain, judgement text).

    Returns
    -------
    DataFrame
        Indexed by ``study_id`` (sorted), with ``tool`` and, for each domain code
        ``X`` of the tool(s) and ``Overall``: ``X`` (judgement), ``X_symbol`` and
        ``X_colour`` (robvis colour, hex). Cells of domains a tool lacks are empty
        strings.
    """
    rows = df
    if tool is not None:
        rows = rows[rows["tool"] == tool_spec(tool).name]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    if rows.empty:
        raise ValueError("no assessments to tabulate")
    specs = [tool_spec(t) for t in sorted(rows["tool"].unique())]
    codes = sorted({c for s in specs for c in s.domain_codes}) + [OVERALL]
    records = []
    for study, group in rows.groupby("study_id", sort=True):
        name = group["tool"].iloc[0]
        by_domain = dict(zip(group["domain"], group["judgement"]))
        record: dict[str, str] = {"study_id": study, "tool": name}
        for code in codes:
            judgement = by_domain.get(code, "")
            record[code] = judgement
            record[f"{code}_symbol"] = ROB_SYMBOLS[name].get(judgement, "")
            record[f"{code}_colour"] = ROB_COLOURS[name].get(judgement, "")
        records.append(record)
    table = pd.DataFrame.from_records(records).set_index("study_id")
    return table if style_columns else table[codes]
