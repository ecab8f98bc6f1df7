"""The updated pooled estimate of stage 06: the Yao-era set beside the updated sets.

For every compared scenario two analyses (:func:`update_specs`): RevMan's Mantel-Haenszel
fixed-effect estimate with 0.5 added to every cell of a zero-cell study (the convention of
stage 03's primary analysis) and REML with the Hartung-Knapp-Sidik-Jonkman adjustment and a
prediction interval (metafor ``rma(method="REML", test="knha")``; ``predict``), both for the
measure of the notebook parameters. The rows follow ``pooled_mortality.csv``
(:func:`mscmeta.review.mortality.pooled_row`); ``updated_studies.csv`` holds the per-study
rows behind every analysis so anyone can re-pool them (e.g. ``metafor::rma.mh``).

The split-control sensitivity analysis (:func:`mscmeta.review.update_inputs.split_control_rows`)
enters each multi-arm trial as one comparison per cell arm against half of the shared control.

The forest plot (:func:`period_forest`) shows one scenario in RevMan's layout with a
"period" subgroup -- published up to 2021 (Yao's window) and 2022 onward -- and RevMan's
test for subgroup differences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.engine.subgroups import SubgroupResult, subgroup_analysis
from mscmeta.engine.validation import NotEstimableError
from mscmeta.plots.axes import message_figure
from mscmeta.plots.forest import subgroup_forest
from mscmeta.review.mortality import (
    POOLED_COLUMNS,
    AnalysisSpec,
    check_options,
    describe_options,
    labels_of,
    pooled_row,
    try_pool,
)
from mscmeta.review.quality import overall_judgements
from mscmeta.review.sheets import ARM_COLUMNS
from mscmeta.review.display import fmt_number
from mscmeta.review.text import fmt_ci
from mscmeta.review.update_inputs import UpdateInputs, split_control_rows

#: Variant of the per-study rows: the scenario as defined, or with multi-arm trials split.
AS_DEFINED = "as defined"
SPLIT_VARIANT = "split control"
#: The period subgroups of the forest plot (by publication year).
PERIODS = ("up to 2021", "2022 onward")


def update_specs(measure: str = "OR", zero_cell: str = "revman") -> list[AnalysisSpec]:
    """The two analyses of every scenario: MH fixed effect (RevMan) and REML + HKSJ with a PI."""
    mh = check_options(measure, "fixed", zero_cell, "REML").replace(method="MH", model="fixed", tau2_method=None)
    reml = mh.replace(method="IV", model="random", tau2_method="REML", hksj=True, prediction=True)
    return [AnalysisSpec("MH fixed", describe_options(mh), mh),
            AnalysisSpec("REML + HKSJ", describe_options(reml) + "; 95% prediction interval", reml)]


@dataclass(frozen=True)
class UpdatedAnalysis:
    """One scenario (or its split-control variant) with its analyses."""

    scenario: str
    variant: str
    data: pd.DataFrame
    results: Mapping[str, MetaResult | None]


def run_updated(inputs: UpdateInputs, specs: Sequence[AnalysisSpec]) -> list[UpdatedAnalysis]:
    """Every compared scenario as defined, then the split-control variants that exist."""
    runs = []
    for scenario, data in inputs.data.items():
        runs.append(UpdatedAnalysis(scenario, AS_DEFINED, data,
                                    {s.name: try_pool(data, s.options, source=f"scenario {scenario}") for s in specs}))
    for scenario in inputs.data:
        split = split_control_rows(inputs, scenario)
        if split is not None:
            runs.append(UpdatedAnalysis(scenario, SPLIT_VARIANT, split,
                                        {s.name: try_pool(split, s.options, source=f"scenario {scenario}")
                                         for s in specs}))
    return runs


def updated_pooled_table(runs: Sequence[UpdatedAnalysis], specs: Sequence[AnalysisSpec]) -> pd.DataFrame:
    """``updated_pooled.csv``: one row per scenario x variant x analysis (columns of
    ``pooled_mortality.csv`` plus ``variant``; ratio scale for OR/RR)."""
    rows = []
    for run in runs:
        for spec in specs:
            row = pooled_row(spec.name, run.results[spec.name], run.data, run.scenario, spec.description, spec.options)
            rows.append({**row, "variant": run.variant})
    columns = ["scenario", "variant", "analysis", *[c for c in POOLED_COLUMNS if c not in ("analysis", "scenario")]]
    return pd.DataFrame(rows).loc[:, columns]


STUDY_COLUMNS = ("scenario", "variant", "study_id", "label", "pub_date", "design", "events_msc", "n_msc",
                 "events_control", "n_control", "row_id", "source_level", "timepoint")


def updated_studies_table(runs: Sequence[UpdatedAnalysis]) -> pd.DataFrame:
    """``updated_studies.csv``: the per-study rows behind each analysis (one row per scenario x
    variant x study), e.g. for ``metafor::rma.mh(ai=events_msc, n1i=n_msc, ci=events_control,
    n2i=n_control)`` on the rows of one scenario and variant."""
    frames = []
    for run in runs:
        d = run.data.assign(scenario=run.scenario, variant=run.variant)
        frames.append(d.loc[:, list(STUDY_COLUMNS)])
    return pd.concat(frames, ignore_index=True)


def updated_markdown(table: pd.DataFrame) -> str:
    """The updated estimates in words: every scenario and analysis, numbers from *table*."""
    lines = []
    for (scenario, variant), rows in table.groupby(["scenario", "variant"], sort=False):
        first = rows.iloc[0]
        head = (f"- **{scenario}**" + (f" ({variant})" if variant != AS_DEFINED else "")
                + f": {int(first['events_msc'])}/{int(first['n_msc'])} deaths with MSCs vs "
                  f"{int(first['events_control'])}/{int(first['n_control'])} with control, "
                  f"{int(first['studies_in_table'])} studies")
        parts = []
        for r in rows.itertuples(index=False):
            if not np.isfinite(r.estimate):
                parts.append(f"{r.analysis}: not estimable")
                continue
            text = f"{r.analysis} {r.measure} {fmt_ci(r.estimate, r.ci_low, r.ci_high)}, k = {int(r.k)}"
            if np.isfinite(r.pi_low):
                text += f", 95% prediction interval {fmt_number(r.pi_low)} to {fmt_number(r.pi_high)}"
            if np.isfinite(r.I2):
                text += f", I² = {r.I2:.0f}%"
            parts.append(text)
        lines.append(head + ": " + "; ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def _period(data: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(data["year"].astype(int).to_numpy() <= 2021, PERIODS[0], PERIODS[1]), index=data.index)


def period_subgroups(data: pd.DataFrame, options: BinaryOptions, source: str | None = None
                     ) -> tuple[pd.DataFrame, SubgroupResult | None]:
    """*data* with a ``period`` column (sorted by period, then study) and the subgroup analysis
    by period (``None`` when fewer than two periods are present or nothing is estimable)."""
    d = data.assign(period=_period(data))
    d = d.assign(_rank=d["period"].map({p: i for i, p in enumerate(PERIODS)}))
    d = d.sort_values(["_rank", "study_id"], kind="mergesort").drop(columns="_rank").reset_index(drop=True)
    if d["period"].nunique() < 2:
        return d, None
    try:
        return d, subgroup_analysis(d, "period", columns=ARM_COLUMNS, source=source, options=options)
    except NotEstimableError:
        return d, None


def period_rows(scenario: str, sg: SubgroupResult | None) -> pd.DataFrame:
    """The subgroup summary of the period forest (ratio scale), with the scenario named."""
    if sg is None:
        return pd.DataFrame({"scenario": [scenario], "subgroup": ["overall"], "note": ["fewer than two periods"]})
    out = sg.summary_frame()
    out.insert(0, "scenario", scenario)
    return out


def _rob_column(rob: pd.DataFrame | None, data: pd.DataFrame) -> pd.DataFrame | None:
    """Overall judgement per study of *data* (mortality assessments of stage 02) as the forest's
    risk-of-bias column; the pseudo-studies of a split-control analysis carry their trial's."""
    if rob is None:
        return None
    overall = overall_judgements(rob, "mortality" if "mortality" in set(rob["outcome"]) else None)
    judged = dict(zip(overall["study_id"], overall["overall"], strict=True))
    rows = {sid: judged.get(str(row_id).split("-")[0]) for sid, row_id in zip(data["study_id"], data["row_id"], strict=True)}
    rows = {s: j for s, j in rows.items() if j is not None}
    return pd.DataFrame({"Overall risk of bias (RoB 2 / ROBINS-I)": list(rows.values())}, index=list(rows))


def period_forest(inputs: UpdateInputs, scenario: str, data: pd.DataFrame, sg: SubgroupResult | None) -> Figure:
    """RevMan-layout forest plot of *scenario* by period, with the overall risk of bias."""
    if sg is None:
        return message_figure(f"Scenario {scenario}: fewer than two periods with data, no period comparison")
    rob = _rob_column(inputs.rob, data)
    return subgroup_forest(sg, labels=labels_of(data), data=data, study_column=ARM_COLUMNS["study"], rob=rob,
                           title=f"Mortality by period of publication (scenario {scenario})")
