"""One figure style for every plot of the bundle: fixed sizes, fonts and colours.

Fonts: DejaVu Sans, which ships with matplotlib, so figures render the same on every
machine. Sizes in inches; :data:`COLUMN_WIDTH` is a journal single column (85 mm).
"""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

#: Journal single-column and double-column widths in inches (85 mm and 180 mm).
COLUMN_WIDTH = 85 / 25.4
PAGE_WIDTH = 180 / 25.4

RC_PARAMS: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "svg.hashsalt": "mscmeta",
    "svg.fonttype": "path",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": False,
}

#: Colours (colour-blind safe, Okabe–Ito).
MSC_COLOUR = "#0072B2"
CONTROL_COLOUR = "#D55E00"
POOLED_COLOUR = "#000000"
GREY = "#7F7F7F"


#: The palette of the interval and overview plots (Okabe–Ito, colour-blind safe).
PALETTE = [MSC_COLOUR, CONTROL_COLOUR, "#009E73", "#CC79A7", "#E69F00", "#56B4E9", POOLED_COLOUR]


def use_style() -> None:
    """Apply the bundle's style (Agg-safe; call once per notebook/process): seaborn's "ticks"
    theme in its "paper" context with the Okabe–Ito palette, then the bundle's fixed sizes
    and fonts (:data:`RC_PARAMS`), so every figure -- forest plots included -- shares one look."""
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, font="DejaVu Sans")
    mpl.rcParams.update(RC_PARAMS)
