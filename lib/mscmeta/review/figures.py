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
from mscmeta.review.mortality import ARM_COLUMNS, describe_options, labels_of
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


MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}


def _scale_words(measure: str) -> str:
    if measure == "RD":
        return "left of 0 means fewer deaths with MSC"
    return "left of 1 means fewer deaths with MSC (log scale)"


def forest_caption(options) -> str:
    """Caption of the primary forest plot: what it shows (the run's analysis) and how to read it."""
    name = MEASURE_NAMES.get(options.measure, options.measure)
    return (f"In-hospital mortality, MSC vs control: primary analysis ({describe_options(options)}), RevMan layout. "
            f"Each square is a study's {name} (area proportional to its weight) with its 95% CI; the diamond is the "
            f"pooled {name} and its CI; {_scale_words(options.measure)}. Studies without deaths in either arm are "
            "listed as not estimable; the last column is the overall risk of bias (RoB 2 / ROBINS-I).")


def sensitivity_caption(measure: str) -> str:
    """Caption of the sensitivity plot."""
    return (f"Sensitivity analyses of the primary {MEASURE_NAMES.get(measure, measure)}: one row per analysis "
            f"(estimate and 95% CI, k studies), the primary estimate dashed and its CI shaded; {_scale_words(measure)}. "
            "Rows on another scale (another effect measure) are listed with their values but not drawn on this axis.")


def cumulative_caption(measure: str) -> str:
    """Caption of the cumulative meta-analysis."""
    return (f"Cumulative meta-analysis by publication date: each row is the pooled {MEASURE_NAMES.get(measure, measure)} "
            f"(95% CI) after adding the study named; {_scale_words(measure)}.")


def funnel_caption(measure: str) -> str:
    """Caption of the funnel plot."""
    return (f"Contour-enhanced funnel plot: each study's {MEASURE_NAMES.get(measure, measure)} against its standard "
            "error; shaded where a study alone would be significant at 1%, 5% and 10%. Asymmetry can reflect "
            "small-study effects, but with few studies it is not interpretable.")
