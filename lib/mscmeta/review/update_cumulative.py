"""Cumulative meta-analysis by publication date (2020 -> 2025) with the later syntheses beside it.

Studies are added in order of ``pub_date`` as written in ``studies.csv`` (ISO dates, possibly
partial): the order of stage 03's cumulative table
(:func:`mscmeta.review.sensitivity.cumulative_table`), in which a study dated by year only
sorts before the dated studies of that year and ties keep the ``study_id`` order. Each step
re-runs the analysis with the same options (metafor ``cumul``; Lau et al., N Engl J Med
1992;327:248). The figure marks when Yao et al. was published (``later_syntheses.csv``,
role ``index review``) and draws the pooled results of later syntheses -- each in its own
measure, as printed, with its citation in ``later_syntheses.csv`` -- as reference points.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.options import BinaryOptions
from mscmeta.plots.axes import message_figure
from mscmeta.plots.cumulative import cumulative_forest
from mscmeta.review.mortality import try_pool
from mscmeta.review.sensitivity import cumulative_table
from mscmeta.review.update_inputs import UpdateInputs

CUMULATIVE_COLUMNS = ("scenario", "step", "study_id", "label", "pub_date", "k", "cum_events_msc", "cum_n_msc",
                      "cum_events_control", "cum_n_control", "measure", "estimate", "ci_low", "ci_high", "p_value",
                      "I2", "note")


def date_order(data: pd.DataFrame) -> pd.DataFrame:
    """*data* in publication order: ``pub_date`` as text (a year-only date first within its
    year), ties in ``study_id`` order -- the order of :func:`cumulative_table`."""
    d = data.sort_values("study_id", kind="mergesort")
    return d.assign(_date=d["pub_date"].astype(str)).sort_values("_date", kind="mergesort").drop(
        columns="_date").reset_index(drop=True)


def _one_scenario(scenario: str, data: pd.DataFrame, options: BinaryOptions) -> pd.DataFrame:
    result = try_pool(data, options, source=f"scenario {scenario}")
    table = cumulative_table(result, data)
    if result is None or "estimate" not in table.columns or len(table) != len(data):
        return pd.DataFrame({"scenario": [scenario], "note": ["not computed: nothing estimable"]})
    ordered = date_order(data)
    if list(ordered["study_id"]) != list(table["study_id"]):
        raise RuntimeError(f"scenario {scenario}: cumulative order differs from the publication order")
    sums = ordered[["events_msc", "n_msc", "events_control", "n_control"]].cumsum()
    table = table.assign(scenario=scenario, measure=result.measure,
                         **{f"cum_{c}": sums[c].to_numpy() for c in sums.columns})
    return table


def cumulative_by_date(inputs: UpdateInputs, scenarios: Iterable[str], options: BinaryOptions) -> pd.DataFrame:
    """``cumulative_by_date.csv``: one row per scenario and step (ratio scale for OR/RR)."""
    frames = [_one_scenario(s, inputs.data[s], options) for s in scenarios]
    out = pd.concat(frames, ignore_index=True)
    for column in CUMULATIVE_COLUMNS:
        if column not in out.columns:
            out[column] = np.nan
    return out.loc[:, list(CUMULATIVE_COLUMNS)]


def index_review(inputs: UpdateInputs) -> pd.Series | None:
    """The ``index review`` row of ``later_syntheses.csv`` (Yao et al. 2022), if present."""
    rows = inputs.syntheses[inputs.syntheses["role"] == "index review"]
    return rows.iloc[0] if len(rows) else None


def reference_points(inputs: UpdateInputs) -> pd.DataFrame:
    """Reference points of the figure: Yao's published estimate (``published_results.csv``,
    flagged where its passage was not located) and the later syntheses, by publication date."""
    rows = []
    pub = inputs.raw.published_results
    yao = pub[(pub["quantity"] == "mortality_or") & (pub["subgroup"] == "overall")]
    index = index_review(inputs)
    if len(yao) and index is not None:
        r = yao.iloc[0]
        flag = "" if r["quote_status"] == "verbatim" else "; passage not located"
        rows.append({"label": f"{index['label']} ({index['pub_date']}{flag})", "measure": r["measure"],
                     "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "date": "0"})
    later = inputs.syntheses[inputs.syntheses["role"] == "later synthesis"]
    for r in later.itertuples(index=False):
        rows.append({"label": f"{r.label}, {r.pub_date}", "measure": r.measure, "estimate": float(r.estimate),
                     "ci_low": float(r.ci_low), "ci_high": float(r.ci_high), "date": str(r.pub_date)})
    out = pd.DataFrame(rows, columns=["label", "measure", "estimate", "ci_low", "ci_high", "date"])
    return out.sort_values(["date", "label"], kind="mergesort").drop(columns="date").reset_index(drop=True)


def cumulative_figure(inputs: UpdateInputs, table: pd.DataFrame, scenario: str) -> Figure:
    """The cumulative forest of *scenario* with Yao's publication marked and the reference points."""
    rows = table[(table["scenario"] == scenario) & table["step"].notna()].reset_index(drop=True)
    if rows.empty:
        return message_figure(f"Scenario {scenario}: nothing estimable, no cumulative meta-analysis")
    shown = rows.assign(label=[f"+ {r.label} ({r.pub_date})" for r in rows.itertuples(index=False)])
    index = index_review(inputs)
    marker, text = None, ""
    if index is not None:
        marker = int((rows["pub_date"].astype(str) < str(index["pub_date"])).sum())
        text = f"{index['label']} ({index['pub_date']})"
    return cumulative_forest(shown, reference_points(inputs), measure=str(rows["measure"].iloc[0]),
                             marker_before=marker, marker_label=text,
                             title=f"Cumulative meta-analysis by publication date (scenario {scenario})")
