"""Secondary outcomes: the analyses of one outcome and the stage's report container.

The rule (:func:`analyse_outcome`): an outcome is pooled when at least two studies report
comparable arm-level data, otherwise it is "descriptive only" with the reason. Continuous
outcomes: mean difference when all studies use the same unit, else the standardised mean
difference (Hedges' g); random effects by default (designs differ). Binary outcomes
(adverse events, ventilation, imaging): Mantel-Haenszel odds ratio and risk difference
with RevMan's 0.5 zero-cell correction and without correction ("exact", metafor
``rma.mh`` default), plus an inverse-variance random-effects odds ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.continuous import meta_continuous
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import NotEstimableError
from mscmeta.review import schema_secondary as SS
from mscmeta.review.secondary_inputs import binary_input, continuous_input, sheet_of
from mscmeta.review.secondary_sheets import AE_FILE, SECONDARY_FILE, SecondaryData
from mscmeta.review.sheets import ARM_COLUMNS


@dataclass(frozen=True)
class Analysis:
    """One pooled analysis of one outcome."""

    name: str
    measure: str
    model: str
    result: MetaResult | None
    primary: bool = False
    note: str = ""


@dataclass(frozen=True)
class OutcomeAnalysis:
    """All there is to say about one outcome.

    Attributes
    ----------
    outcome : str
    info : OutcomeInfo
    status : {"pooled", "descriptive only"}
    reason : str
        Why descriptive only (empty when pooled).
    inputs : DataFrame
        Per-study input (:func:`continuous_input` or :func:`binary_input`); empty for
        event counts, contrasts and narratives.
    analyses : tuple of Analysis
        The pooled analyses, primary first.
    conversion : str
        Conversion methods used (continuous outcomes).
    studies_with_data : tuple of str
        Every study with a primary row for the outcome (numbers or direction only).
    """

    outcome: str
    info: SS.OutcomeInfo
    status: str
    reason: str
    inputs: pd.DataFrame
    analyses: tuple[Analysis, ...] = ()
    conversion: str = ""
    studies_with_data: tuple[str, ...] = ()

    @property
    def primary(self) -> Analysis | None:
        return next((a for a in self.analyses if a.primary), None)

    @property
    def pooled_inputs(self) -> pd.DataFrame:
        if self.inputs.empty:
            return self.inputs
        return self.inputs[self.inputs["comparable"]].reset_index(drop=True)


def _describe_others(inputs: pd.DataFrame, others: Sequence[str]) -> str:
    parts = []
    if not inputs.empty:
        for reason, group in inputs[~inputs["comparable"]].groupby("reason", sort=True):
            parts.append(f"{', '.join(group['study_id'])}: {reason}")
    if others:
        parts.append(f"{', '.join(others)}: direction only or between-arm statistic only")
    return "; ".join(parts)


def _studies_with_rows(df: pd.DataFrame, outcome: str) -> tuple[str, ...]:
    rows = df[(df["outcome"] == outcome) & (df["use"] == "primary")]
    return tuple(sorted(rows["study_id"].unique()))


def _conversion_text(inputs: pd.DataFrame) -> str:
    methods = pd.concat([inputs["method_t"], inputs["method_c"]])
    counts = methods[methods != ""].value_counts()
    if counts.empty:
        return ""
    return "; ".join(f"{m} ({c} arm{'s' if c != 1 else ''})" for m, c in sorted(counts.items()))


def _continuous_analyses(inputs: pd.DataFrame, model: str, tau2_method: str, source: str) -> tuple[list[Analysis], str]:

    units = sorted(set(inputs["unit"]))
    measure = "MD" if len(units) == 1 else "SMD"
    note = (f"all studies in {units[0]}" if measure == "MD"
            else f"units differ ({', '.join(units)}): standardised mean difference (Hedges' g)")
    frame = inputs.rename(columns={"study_id": "study"})
    label = f"{measure}, {model}" + (f" ({tau2_method})" if model == "random" else "")
    analyses = [Analysis(label, measure, model, meta_continuous(frame, measure=measure, model=model,
                                                                tau2_method=tau2_method, source=source),
                         primary=True, note=note)]
    if measure == "MD":
        analyses.append(Analysis(f"SMD, {model}" + (f" ({tau2_method})" if model == "random" else ""), "SMD", model,
                                 meta_continuous(frame, measure="SMD", model=model, tau2_method=tau2_method,
                                                 source=source),
                                 note="Hedges' g, for the overview figure"))
    return analyses, note


def _binary_analyses(inputs: pd.DataFrame, model: str, tau2_method: str, source: str) -> list[Analysis]:

    frame = inputs[list(ARM_COLUMNS.values())].astype({c: "int64" for c in list(ARM_COLUMNS.values())[1:]})
    specs = [
        ("MH OR, RevMan", "OR", "MH", "fixed", "revman", True,
         "RevMan 5: 0.5 added to every cell of zero-cell studies, also inside the MH estimator"),
        ("MH OR, exact", "OR", "MH", "fixed", "none", False,
         "no continuity correction inside the MH estimator (metafor rma.mh)"),
        ("MH RD, RevMan", "RD", "MH", "fixed", "revman", False, "RevMan 5; Greenland-Robins variance"),
        ("MH RD, exact", "RD", "MH", "fixed", "none", False,
         "no continuity correction; Sato-Greenland-Robins variance (metafor rma.mh)"),
    ]
    if model == "random":
        specs.append((f"IV OR, random ({tau2_method})", "OR", "IV", "random", "revman", False,
                      "inverse variance, random effects, RevMan zero-cell correction (sensitivity analysis)"))
    out = []
    for name, measure, method, mod, zero, primary, note in specs:
        try:
            result = meta_binary(frame, measure=measure, method=method, model=mod, tau2_method=tau2_method,
                                 zero_cell=zero, columns=ARM_COLUMNS, source=source)
        except NotEstimableError:
            out.append(Analysis(name, measure, mod, None, primary, note=f"{note}; not estimable (no study with events)"))
            continue
        out.append(Analysis(name, measure, mod, result, primary, note))
    return out


def analyse_outcome(
    data: SecondaryData, outcome: str, model: str = "random", tau2_method: str = "REML"
) -> OutcomeAnalysis:
    """Pool one outcome if at least two studies report comparable arm-level data.

    The rule: an outcome is pooled when >= 2 studies have usable data in *both* arms
    (events and n; or mean, SD and n, after converting medians). Otherwise it is shown
    "descriptive only" and :attr:`OutcomeAnalysis.reason` says why (how many studies have
    comparable data, and what the others report).
    """
    info = SS.OUTCOMES[outcome]
    sheet = sheet_of(data, outcome)
    source = AE_FILE if outcome in SS.AE_OUTCOMES else SECONDARY_FILE
    with_data = _studies_with_rows(sheet, outcome)
    if info.kind in ("events", "contrast", "narrative"):
        what = {"events": "numbers of events without a denominator", "contrast": "between-arm estimates only",
                "narrative": "direction-only statements"}[info.kind]
        reason = (f"descriptive only: {len(with_data)} stud{'y reports' if len(with_data) == 1 else 'ies report'} {what}"
                  if with_data else "no data located")
        return OutcomeAnalysis(outcome, info, "descriptive only", reason, pd.DataFrame(), (), "", with_data)
    inputs = continuous_input(data, outcome) if info.kind == "continuous" else binary_input(data, outcome)
    listed = set(inputs["study_id"]) if not inputs.empty else set()
    others = [s for s in with_data if s not in listed]
    k = int(inputs["comparable"].sum()) if not inputs.empty else 0
    conversion = _conversion_text(inputs[inputs["comparable"]]) if info.kind == "continuous" and k else ""
    if k < 2:
        comparable = ", ".join(inputs.loc[inputs["comparable"], "study_id"]) if k else ""
        head = (f"descriptive only: {k} stud{'y' if k == 1 else 'ies'} with comparable data in both arms"
                + (f" ({comparable})" if comparable else "") + "; pooling needs at least 2")
        rest = _describe_others(inputs, others)
        reason = head + (f"; {rest}" if rest else "") if with_data else "no data located"
        return OutcomeAnalysis(outcome, info, "descriptive only", reason, inputs, (), conversion, with_data)
    pooled = inputs[inputs["comparable"]].reset_index(drop=True)
    if info.kind == "continuous":
        analyses, _ = _continuous_analyses(pooled, model, tau2_method, source)
    else:
        analyses = _binary_analyses(pooled, model, tau2_method, source)
    rest = _describe_others(inputs, others)
    return OutcomeAnalysis(outcome, info, "pooled", f"not pooled: {rest}" if rest else "", inputs, tuple(analyses),
                           conversion, with_data)


def analysis_inputs(oa: OutcomeAnalysis, analysis: Analysis) -> pd.DataFrame:
    """The per-study inputs that entered *analysis* (double-zero studies of an OR left out)."""
    pooled = oa.pooled_inputs
    if analysis.result is None:
        return pooled.iloc[0:0]
    estimable = analysis.result.studies["estimable"].to_numpy(dtype=bool)
    return pooled[estimable].reset_index(drop=True) if len(estimable) == len(pooled) else pooled


def analysis_n(oa: OutcomeAnalysis, analysis: Analysis) -> tuple[float, float]:
    """Patients in the MSC and control arms of the studies that entered *analysis*."""
    used = analysis_inputs(oa, analysis)
    cols = ("n_t", "n_c") if oa.info.kind == "continuous" else ("n_msc", "n_control")
    return float(used[cols[0]].sum()), float(used[cols[1]].sum())


@dataclass(frozen=True)
class SecondaryReport:
    """Everything notebook 05 shows and writes."""

    analyses: Mapping[str, OutcomeAnalysis]
    secondary_pooled: pd.DataFrame
    ae_pooled: pd.DataFrame
    per_study: pd.DataFrame
    ae_kinds: pd.DataFrame
    claims: pd.DataFrame
    options: Mapping[str, object] = field(default_factory=dict)

    def pooled(self) -> list[OutcomeAnalysis]:
        """Outcomes with a pooled estimate, in :data:`mscmeta.review.schema_secondary.OUTCOMES` order."""
        return [oa for oa in self.analyses.values() if oa.status == "pooled"]


def int_counts(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("n_msc", "n_control"):
        frame[col] = pd.array(frame[col].round(), dtype="Int64")
    return frame
