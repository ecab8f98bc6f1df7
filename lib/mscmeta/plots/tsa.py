"""Trial sequential analysis figure: cumulative Z-curve against the monitoring boundaries.

One panel per analysis (:class:`mscmeta.engine.tsa.TSAResult`), in the layout of the
Copenhagen Trial Unit's TSA program: the x axis is the cumulative number of patients (up to
the required information size, RIS, drawn as a vertical line), the y axis the cumulative Z
statistic. Drawn: the Lan-DeMets O'Brien-Fleming monitoring boundaries for benefit and harm
(solid), the inner-wedge futility boundaries (dashed, where defined), the conventional
single-test limits +-1.96 (dotted) and the Z-curve with one point per trial (hollow where the
look is not analysed under the TSA conventions). The panel title gives the verdict and the
information fraction reached.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mscmeta.engine.tsa import TSAResult, Verdict
from mscmeta.plots import style

_BOUNDARY = "#CC0000"
_WEDGE = "#E69F00"
_Z_LIMIT = 10.0


def _x(result: TSAResult, fractions: np.ndarray) -> np.ndarray:
    return np.asarray(fractions, dtype=float) * result.required_information_size


def _boundaries(ax, result: TSAResult) -> None:
    curve = result.curve
    x = _x(result, curve.information_fraction)
    ax.plot(x, np.clip(curve.upper, -_Z_LIMIT, _Z_LIMIT), color=_BOUNDARY, lw=1.0, label="monitoring boundary")
    ax.plot(x, np.clip(curve.lower, -_Z_LIMIT, _Z_LIMIT), color=_BOUNDARY, lw=1.0)
    if np.isfinite(curve.futility_upper).any():
        ax.plot(x, curve.futility_upper, color=_WEDGE, lw=1.0, ls="--", label="futility (inner wedge)")
        ax.plot(x, curve.futility_lower, color=_WEDGE, lw=1.0, ls="--")
    for z in (-1.96, 1.96):
        ax.axhline(z, color=style.GREY, lw=0.6, ls=":")
    ax.axhline(0.0, color="black", lw=0.5)


def _z_curve(ax, result: TSAResult) -> None:
    x = np.concatenate(([0.0], result.cumulative_n))
    z = np.concatenate(([0.0], result.z))
    ax.plot(x, np.clip(z, -_Z_LIMIT, _Z_LIMIT), color=style.MSC_COLOUR, lw=1.1, label="cumulative Z")
    analysed = result.analysed.astype(bool)
    ax.plot(result.cumulative_n[analysed], result.z[analysed], "o", ms=3, color=style.MSC_COLOUR)
    ax.plot(result.cumulative_n[~analysed], result.z[~analysed], "o", ms=3, mfc="white", color=style.MSC_COLOUR,
            label="look not analysed (TSA conventions)" if (~analysed).any() else None)


def _title(result: TSAResult, heading: str) -> str:
    verdict = result.verdict.value
    if result.verdict is Verdict.INCONCLUSIVE:
        verdict += f", information fraction {result.information_fraction_reached:.2f}"
    elif result.verdict_look is not None:
        verdict += f" at {result.labels[result.verdict_look]}"
    return f"{heading}\nRIS {result.required_information_size:,} patients; {verdict}"


def _panel(ax, result: TSAResult, heading: str) -> None:
    _boundaries(ax, result)
    _z_curve(ax, result)
    ris = result.required_information_size
    top = max(5.0, min(_Z_LIMIT, float(np.nanmax(np.abs(result.z))) + 1.5))
    ax.axvline(ris, color="black", lw=0.7, ls="-.")
    ax.text(ris, top * 0.97, "RIS ", fontsize=6, ha="right", va="top")
    ax.set_ylim(-top, top)
    ax.set_xlim(0, max(ris, float(result.cumulative_n[-1])) * 1.05)
    ax.set_xlabel("Cumulative number of patients")
    ax.set_ylabel("Cumulative Z (below 0 favours MSC)")
    ax.set_title(_title(result, heading), fontsize=7, loc="left")


def tsa_plot(panels: Sequence[tuple[str, TSAResult]], *, ncols: int = 2, width: float = style.PAGE_WIDTH) -> Figure:
    """Draw one TSA panel per ``(heading, result)``.

    Parameters
    ----------
    panels : sequence of (str, TSAResult)
        Heading (e.g. "updated-rcts, RRR 20%, power 90%") and the analysis.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(len(panels), 1)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.9 * nrows), squeeze=False)
    for ax, (heading, result) in zip(axes.flat, panels, strict=False):
        _panel(ax, result, heading)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=6, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
