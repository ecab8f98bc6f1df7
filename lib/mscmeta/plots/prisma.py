"""PRISMA 2020 flow diagram drawn from ``data/raw/search.csv``.

Layout follows the PRISMA 2020 flow diagram for new systematic reviews that searched
databases and registers only (Page MJ et al. BMJ 2021;372:n71, Figure 1): a main
column (identified → screened → sought → assessed → included) with the exclusion box
of each step to its right, and the stages Identification / Screening / Included
labelled on the left. Counts that the sources do not report are drawn as
"n = not reported"; nothing is estimated.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from mscmeta.engine.prisma_flow import PRISMA_BOXES
from mscmeta.plots.style import GREY, PAGE_WIDTH

__all__ = ["FIGURE_SIZE", "PRISMA_BOXES", "count_text", "prisma_flow", "study_flow_diagram"]

#: Figure size in inches (fixed, journal double column).
FIGURE_SIZE = (PAGE_WIDTH, 5.6)

#: Box centres in axes coordinates (0..1): (x, y) and the box width/height.
_MAIN_X, _SIDE_X = 0.34, 0.77
_W_MAIN, _W_SIDE, _H = 0.40, 0.38, 0.105
_POSITIONS: dict[str, tuple[float, float, float]] = {
    "records_identified": (_MAIN_X, 0.90, _W_MAIN),
    "records_removed_before_screening": (_SIDE_X, 0.90, _W_SIDE),
    "records_screened": (_MAIN_X, 0.69, _W_MAIN),
    "records_excluded": (_SIDE_X, 0.69, _W_SIDE),
    "reports_sought": (_MAIN_X, 0.54, _W_MAIN),
    "reports_not_retrieved": (_SIDE_X, 0.54, _W_SIDE),
    "reports_assessed": (_MAIN_X, 0.39, _W_MAIN),
    "reports_excluded": (_SIDE_X, 0.39, _W_SIDE),
    "studies_included": (_MAIN_X, 0.13, _W_MAIN),
}
#: Stages drawn as vertical bands on the left: (label, y_top, y_bottom).
_STAGES = (("Identification", 0.97, 0.80), ("Screening", 0.76, 0.31), ("Included", 0.24, 0.03))
#: Arrows between boxes (from, to).
_ARROWS = (
    ("records_identified", "records_removed_before_screening"),
    ("records_identified", "records_screened"),
    ("records_screened", "records_excluded"),
    ("records_screened", "reports_sought"),
    ("reports_sought", "reports_not_retrieved"),
    ("reports_sought", "reports_assessed"),
    ("reports_assessed", "reports_excluded"),
    ("reports_assessed", "studies_included"),
)
_WRAP = 42


def count_text(count: object) -> str:
    """``"n = 3644"`` for a count, ``"n = not reported"`` for a missing one."""
    if count is None or pd.isna(count):
        return "n = not reported"
    return f"n = {int(count)}"


def _box_text(label: str, count: object) -> str:
    return "\n".join(textwrap.wrap(str(label), _WRAP)) + f"\n({count_text(count)})"


def prisma_flow(search: pd.DataFrame, title: str | None = "PRISMA 2020 flow diagram") -> Figure:
    """Draw the PRISMA 2020 flow diagram.

    Parameters
    ----------
    search : DataFrame
        ``search.csv`` as loaded by :func:`mscmeta.review.sheets.load_raw`: columns ``box``
        (one row per PRISMA box of :data:`PRISMA_BOXES`), ``label`` and
        ``count`` (missing = not reported).
    title : str or None
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Size :data:`FIGURE_SIZE` inches.

    Raises
    ------
    ValueError
        If a PRISMA box is missing from *search* or appears twice.
    """
    boxes = list(search["box"])
    missing = [b for b in PRISMA_BOXES if b not in boxes]
    dupes = sorted({b for b in boxes if boxes.count(b) > 1})
    if missing or dupes:
        raise ValueError(f"search table: missing PRISMA boxes {missing}, duplicated boxes {dupes}")
    row = search.set_index("box")

    fig = plt.figure(figsize=FIGURE_SIZE)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        ax.text(0.5, 0.995, title, ha="center", va="top", fontsize=9, fontweight="bold")

    for label, top, bottom in _STAGES:
        ax.add_patch(
            FancyBboxPatch((0.015, bottom), 0.05, top - bottom, boxstyle="round,pad=0.003",
                           facecolor="#DCE9F5", edgecolor=GREY, linewidth=0.6)
        )
        ax.text(0.04, (top + bottom) / 2, label, rotation=90, ha="center", va="center", fontsize=8,
                fontweight="bold")

    def draw(name: str, text: str, x: float, y: float, w: float, h: float) -> None:
        ax.add_patch(
            FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.004",
                           facecolor="white", edgecolor="black", linewidth=0.7)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=6.8, gid=f"prisma-{name}")

    for name, (x, y, w) in _POSITIONS.items():
        if name == "studies_included":
            text = "\n".join(
                [_box_text(row.at["studies_included", "label"], row.at["studies_included", "count"]),
                 _box_text(row.at["reports_included", "label"], row.at["reports_included", "count"])]
            )
            draw(name, text, x, y, w, 0.17)
        else:
            draw(name, _box_text(row.at[name, "label"], row.at[name, "count"]), x, y, w, _H)

    def anchor(name: str, side: str) -> tuple[float, float]:
        x, y, w = _POSITIONS[name]
        h = 0.17 if name == "studies_included" else _H
        return {"right": (x + w / 2, y), "left": (x - w / 2, y), "bottom": (x, y - h / 2), "top": (x, y + h / 2)}[side]

    for start, end in _ARROWS:
        sideways = _POSITIONS[end][0] > _POSITIONS[start][0]
        a = anchor(start, "right" if sideways else "bottom")
        b = anchor(end, "left" if sideways else "top")
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=8, linewidth=0.7, color="black"))

    ax.text(0.99, 0.005, "n = not reported: count not given in the sources located (never estimated).",
            ha="right", va="bottom", fontsize=6, color=GREY, style="italic")
    return fig


def study_flow_diagram(flow: pd.DataFrame, title: str | None = None) -> Figure:
    """A PRISMA 2020-style flow of studies: a main column with, to its right, the studies
    that leave the flow at each step.

    Parameters
    ----------
    flow : DataFrame
        One row per step, top to bottom: ``label``, ``count`` (main box), ``side_label``
        and ``side_count`` (the box to the right; empty label for none).
    title : str or None
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Page width, 1.05 inches per step.
    """
    n = len(flow)
    fig = plt.figure(figsize=(PAGE_WIDTH, 0.5 + 1.05 * n))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        ax.text(0.5, 0.995, title, ha="center", va="top", fontsize=9, fontweight="bold")
    step = (0.93 - 0.04) / n
    h = step * 0.62
    for i, r in enumerate(flow.itertuples(index=False)):
        y = 0.93 - step * (i + 0.5)
        ax.add_patch(FancyBboxPatch((_MAIN_X - _W_MAIN / 2, y - h / 2), _W_MAIN, h, boxstyle="round,pad=0.004",
                                    facecolor="white", edgecolor="black", linewidth=0.7))
        ax.text(_MAIN_X, y, _box_text(r.label, r.count), ha="center", va="center", fontsize=6.8)
        if i < n - 1:
            ax.add_patch(FancyArrowPatch((_MAIN_X, y - h / 2), (_MAIN_X, y - step + h / 2), arrowstyle="-|>",
                                         mutation_scale=8, linewidth=0.7, color="black"))
        if isinstance(r.side_label, str) and r.side_label:
            ax.add_patch(FancyBboxPatch((_SIDE_X - _W_SIDE / 2, y - h / 2), _W_SIDE, h, boxstyle="round,pad=0.004",
                                        facecolor="white", edgecolor="black", linewidth=0.7))
            ax.text(_SIDE_X, y, _box_text(r.side_label, r.side_count), ha="center", va="center", fontsize=6.3)
            ax.add_patch(FancyArrowPatch((_MAIN_X + _W_MAIN / 2, y), (_SIDE_X - _W_SIDE / 2, y), arrowstyle="-|>",
                                         mutation_scale=8, linewidth=0.7, color="black"))
    return fig
