"""The mortality figures of notebook 03: the RevMan forest plot with the risk-of-bias column
and the funnel plot, drawn by :mod:`mscmeta.plots` from the review's results."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.results import MetaResult
from mscmeta.plots.axes import message_figure
from mscmeta.plots.forest import forest_plot
from mscmeta.plots.funnel import funnel_plot
from mscmeta.review.inputs import StageInputs
from mscmeta.review.mortality import ARM_COLUMNS, labels_of
from mscmeta.review.quality import overall_judgements


def rob_for_forest(rob: pd.DataFrame | None, data: pd.DataFrame) -> pd.DataFrame | None:
    """Overall risk-of-bias judgement per study (RoB 2 for randomised trials, ROBINS-I otherwise)
    as a one-column table for :func:`mscmeta.plots.forest.forest_plot`; ``None`` without assessments."""
    if rob is None:
        return None

    outcome = "mortality" if "mortality" in set(rob["outcome"]) else None
    overall = overall_judgements(rob, outcome)
    overall = overall[overall["study_id"].isin(data[ARM_COLUMNS["study"]].astype(str))]
    name = "Overall risk of bias (RoB 2 / ROBINS-I)"
    return pd.DataFrame({name: overall["overall"].to_numpy()}, index=overall["study_id"].astype(str).to_numpy())


def forest_figure(result: MetaResult | None, inputs: StageInputs, title: str | None = None) -> Figure:
    """The RevMan-style forest plot of *result* with study labels and the overall risk of
    bias beside it; a message figure when nothing could be pooled."""

    if result is None:
        return message_figure("Not estimable: no study has an estimable effect in this scenario")
    return forest_plot(result, labels=labels_of(inputs.data), rob=rob_for_forest(inputs.rob, inputs.data), title=title)


def funnel_figure(result: MetaResult | None, data: pd.DataFrame) -> Figure:
    """Contour-enhanced funnel plot of *result* (message figure when nothing was pooled)."""

    if result is None:
        return message_figure("Not estimable: no funnel plot")
    return funnel_plot(result, labels=labels_of(data))
