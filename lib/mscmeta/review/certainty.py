"""GRADE summary of findings (stage 06): how certain is each finding?

The five outcomes of ``grade_judgements.csv`` (:data:`mscmeta.review.schema_update.SOF_OUTCOMES`):

* mortality, Yao-era set (scenario ``primary``) and randomised trials 2020-2025 (scenario
  ``updated-rcts``): the Mantel-Haenszel odds ratio of stage 06 (RevMan zero cells),
  heterogeneity I² and Q from it, the I² interval and the prediction interval from the REML +
  HKSJ fit;
* any adverse event and serious adverse events (binary) and length of hospital stay
  (continuous, days): the primary analyses of stage 05 (:func:`mscmeta.review.secondary.analyse_secondary`)
  over the review set of the secondary scenario (default ``updated-all``).

Each body of evidence is rated by the engine's stated rules (:mod:`mscmeta.engine.grade.domains`):
start high for randomised trials only and low otherwise; risk of bias from the share of the
analysis weight at high / low risk in stage 02's assessments (for the secondary outcomes the
mortality assessments stand in, as no outcome-specific assessment exists: stated in the
table's comments); inconsistency from I², Q, CI overlap and the point estimates;
imprecision from the CI against no effect and appreciable effects and the participants
against the optimal information size; publication bias not assessable below 10 studies;
indirectness not serious unless judged otherwise. Rows of ``grade_judgements.csv`` override a
rule for one outcome and domain and are shown as overrides, with the rule's rating kept.

Length of stay has no published minimal important difference (MID) for COVID-19 in the
sources reviewed; unless a MID is given, half the pooled control-arm SD is used (the
"half a standard deviation" rule: Norman GR, Sloan JA, Wyrwich KW. Med Care 2003;41:582-592;
GRADE Handbook 2013 §5.2.4.1 uses an effect size of 0.5 for continuous outcomes without a MID).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.engine.bias import egger_test
from mscmeta.engine.grade import (
    ContinuousEffect,
    EffectEstimate,
    EvidenceBody,
    Heterogeneity,
    Override,
    SofOutcome,
    SofTable,
    StudyEvidence,
    build_sof,
)
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import DataError
from mscmeta.review.scenarios import scenario_studies
from mscmeta.review.schema_update import SOF_OUTCOMES
from mscmeta.review.secondary import analyse_secondary, secondary_data
from mscmeta.review.secondary_analyses import OutcomeAnalysis, SecondaryReport
from mscmeta.review.sheets import RawData
from mscmeta.review.update_pool import UpdatedAnalysis

#: SoF row names of the sheet's outcomes.
SOF_NAMES: dict[str, str] = dict(zip(SOF_OUTCOMES, (
    "Mortality, Yao-era set (published to 2021)",
    "Mortality, randomised trials 2020-2025",
    "Any adverse event",
    "Serious adverse events",
    "Length of hospital stay",
), strict=True))
#: Domain names of the sheet -> the engine's domain keys.
DOMAIN_KEYS: dict[str, str] = {"risk of bias": "risk_of_bias", "inconsistency": "inconsistency",
                               "indirectness": "indirectness", "imprecision": "imprecision",
                               "publication bias": "publication_bias"}
#: ROBINS-I "no information" has no GRADE tier of its own: counted as some concerns.
ROB_TIER_OF = {"no information": "some concerns"}
INTERVENTION, COMPARATOR = "MSC", "standard care or placebo"


@dataclass(frozen=True)
class StudyFacts:
    """Per-study facts the GRADE rules need: design (RCT or NRS) and overall risk of bias."""

    design: Mapping[str, str]
    risk_of_bias: Mapping[str, str]
    labels: Mapping[str, str]


def study_facts(studies: pd.DataFrame, rob_overall: pd.DataFrame | None) -> StudyFacts:
    """Designs from ``studies.csv`` and overall judgements from stage 02's assessments."""
    design = {s: ("RCT" if d == "RCT" else "NRS") for s, d in zip(studies["study_id"], studies["design"], strict=True)}
    rob = {} if rob_overall is None else {
        s: ROB_TIER_OF.get(j, j) for s, j in zip(rob_overall["study_id"], rob_overall["overall"], strict=True)}
    return StudyFacts(design, rob, dict(zip(studies["study_id"], studies["label"], strict=True)))


def _rob_of(facts: StudyFacts, study: str, outcome: str) -> str:
    if study not in facts.risk_of_bias:
        raise DataError(f"{outcome}: study {study} has no overall risk-of-bias judgement in stage 02's "
                        "risk_of_bias.csv (run stage 02, or add the assessment to data/raw/risk_of_bias.csv)")
    return facts.risk_of_bias[study]


def _studies(result: MetaResult, facts: StudyFacts, outcome: str) -> tuple[StudyEvidence, ...]:
    ratio = result.is_ratio()
    out = []
    for r in result.studies.itertuples(index=False):
        est = (np.exp(r.yi), np.exp(r.ci_low), np.exp(r.ci_high)) if ratio else (r.yi, r.ci_low, r.ci_high)
        known = bool(r.estimable) and np.isfinite(est).all()
        weight = float(r.weight) if np.isfinite(r.weight) else 0.0
        out.append(StudyEvidence(facts.labels.get(r.study, r.study), facts.design[r.study],
                                 _rob_of(facts, r.study, outcome), weight,
                                 *((float(v) for v in est) if known else (None, None, None))))
    return tuple(out)


def _effect(result: MetaResult) -> EffectEstimate:
    d = result.to_dict()
    return EffectEstimate(result.measure, float(d["estimate"]), float(d["ci_low"]), float(d["ci_high"]))


def _heterogeneity(result: MetaResult, random: MetaResult | None) -> Heterogeneity:
    ratio = result.is_ratio()
    pi = None
    if random is not None and random.pi_low is not None and np.isfinite(random.pi_low):
        pi = (float(np.exp(random.pi_low)), float(np.exp(random.pi_high))) if ratio else (random.pi_low, random.pi_high)
    i2_ci = tuple(float(v) for v in random.I2_ci) if random is not None and random.I2_ci is not None else None
    q_p = float(result.Q_p) if np.isfinite(result.Q_p) else None
    return Heterogeneity(float(result.I2) if np.isfinite(result.I2) else None, i2_ci, q_p, pi)


def _egger_p(result: MetaResult, min_k: int = 10) -> float | None:
    """Egger's test p-value when at least *min_k* studies were pooled (else not used by the rule)."""
    est = result.studies[result.studies["estimable"].astype(bool)]
    if len(est) < min_k:
        return None
    return float(egger_test(est["yi"].to_numpy(float), est["vi"].to_numpy(float)).p_value)


def binary_evidence(name: str, result: MetaResult, random: MetaResult | None, arms: pd.DataFrame,
                    facts: StudyFacts) -> EvidenceBody:
    """The evidence body of a binary outcome from its pooled analysis and the per-study arms
    (columns ``events_msc, n_msc, events_control, n_control``; every study of the analysis)."""
    return EvidenceBody(
        outcome=name, studies=_studies(result, facts, name), effect=_effect(result),
        n_participants=int((arms["n_msc"] + arms["n_control"]).sum()),
        n_events=int((arms["events_msc"] + arms["events_control"]).sum()),
        control_risk=float(arms["events_control"].sum() / arms["n_control"].sum()),
        heterogeneity=_heterogeneity(result, random), egger_p=_egger_p(result),
    )


def pooled_control_sd(inputs: pd.DataFrame) -> float:
    """Pooled SD of the control arms: sqrt(sum((n-1) SD^2) / sum(n-1))."""
    n, sd = inputs["n_c"].to_numpy(float), inputs["sd_c"].to_numpy(float)
    return float(np.sqrt(((n - 1) * sd**2).sum() / (n - 1).sum()))


def continuous_evidence(name: str, oa: OutcomeAnalysis, facts: StudyFacts, mid: float | None = None
                        ) -> tuple[EvidenceBody, ContinuousEffect, str]:
    """The evidence body of a continuous outcome (stage 05's primary analysis), its SoF
    effect (control means as a range) and a sentence on the MID used."""
    result = oa.primary.result
    inputs = oa.pooled_inputs
    sd = pooled_control_sd(inputs)
    used = mid if mid is not None else 0.5 * sd
    how = (f"MID {used:.2f} given" if mid is not None
           else f"no published MID located: MID = half the pooled control SD, 0.5 × {sd:.2f} = {used:.2f}")
    unit = str(inputs["unit"].iloc[0]) if len(inputs) else ""
    evidence = EvidenceBody(
        outcome=name, studies=_studies(result, facts, name), effect=_effect(result),
        n_participants=int((inputs["n_t"] + inputs["n_c"]).sum()), heterogeneity=_heterogeneity(result, result),
        sd=sd, mid=used, thresholds=(-used, used),
    )
    means = inputs["mean_c"].to_numpy(float)
    text = f"ranged across control groups from {means.min():.1f} to {means.max():.1f} {unit}".rstrip()
    return evidence, ContinuousEffect(evidence.effect, None, unit, text, name[:1].lower() + name[1:]), how


def overrides_from(judgements: pd.DataFrame) -> list[Override]:
    """``grade_judgements.csv`` rows as engine overrides (outcome -> SoF row name)."""
    return [Override(SOF_NAMES[r.outcome], DOMAIN_KEYS[r.domain], r.rating, r.reason, r.source)
            for r in judgements.itertuples(index=False)]


def summary_of_findings(outcomes: Sequence[SofOutcome], judgements: pd.DataFrame) -> tuple[SofTable, list[str]]:
    """The SoF table (GRADEpro layout) with the sheet's overrides applied, and a note for each
    judgement whose outcome is not in the table (not pooled here)."""
    present = {o.name for o in outcomes}
    overrides = overrides_from(judgements)
    unused = [f"{o.outcome}: the {o.domain.replace('_', ' ')} judgement of grade_judgements.csv is not applied "
              "(outcome not in the table)." for o in overrides if o.outcome not in present]
    table = build_sof(outcomes, intervention=INTERVENTION, comparator=COMPARATOR,
                      overrides=[o for o in overrides if o.outcome in present])
    return table, unused


def sof_tidy(table: SofTable) -> pd.DataFrame:
    """``summary_of_findings.csv``: the engine's tidy rows plus each domain's reason and the
    rule's own rating (where an override replaced it)."""
    tidy = table.tidy.copy()
    for assessment in table.assessments:
        mask = tidy["outcome"] == assessment.outcome
        for rating in assessment.domains:
            tidy.loc[mask, f"{rating.domain}_reason"] = rating.reason
            tidy.loc[mask, f"{rating.domain}_rule"] = rating.rule_rating
        tidy.loc[mask, "start_reason"] = assessment.start_reason
    return tidy


def secondary_report(raw: RawData, scenario: str) -> SecondaryReport:
    """Stage 05's analyses (random effects, REML) over the review set of *scenario*."""
    ids = scenario_studies(raw, scenario)["study_id"]
    labels = dict(zip(raw.studies["study_id"], raw.studies["label"], strict=True))
    return analyse_secondary(secondary_data(raw, ids), model="random", tau2_method="REML", labels=labels)


def _names(ids: Sequence[str], labels: Mapping[str, str]) -> str:
    return ", ".join(labels.get(s, s) for s in ids) or "none"


def mortality_outcome(sheet_outcome: str, run: UpdatedAnalysis, facts: StudyFacts, missing: pd.DataFrame) -> SofOutcome:
    """SoF row of a mortality scenario (MH fixed analysis; I² interval and PI from REML + HKSJ)."""
    name = SOF_NAMES[sheet_outcome]
    result = run.results["MH fixed"]
    evidence = binary_evidence(name, result, run.results["REML + HKSJ"], run.data, facts)
    dropped = [s for s, e in zip(result.studies["study"], result.studies["estimable"], strict=True) if not e]
    comment = (f"Scenario {run.scenario}: {result.k} of {len(run.data)} studies pooled"
               + (f" (no deaths in either arm: {_names(dropped, facts.labels)})" if dropped else "")
               + f". Deaths not located (not in the analysis): {_names(list(missing['study_id']), facts.labels)}.")
    return SofOutcome(evidence, comments=comment)


def _secondary_comment(oa: OutcomeAnalysis, scenario: str, facts: StudyFacts) -> str:
    used = list(oa.pooled_inputs["study_id"])
    text = (f"Scenario {scenario}: {_names(used, facts.labels)}. Risk of bias: the mortality assessments of these "
            "studies stand in (no outcome-specific assessment).")
    reason = _labelled(oa.reason, facts.labels)
    return text + (f" {reason[:1].upper()}{reason[1:]}." if reason else "")


def _labelled(text: str, labels: Mapping[str, str]) -> str:
    """*text* with every study id replaced by its display label."""
    for study, label in labels.items():
        text = re.sub(rf"\b{re.escape(study)}\b", label, text)
    return text


def secondary_outcomes(report: SecondaryReport, scenario: str, facts: StudyFacts, los_mid: float | None = None
                       ) -> tuple[list[SofOutcome], list[str]]:
    """SoF rows of any adverse event, serious adverse events and length of hospital stay, and
    sentences for the outcomes that could not be pooled or for the MID used."""
    rows, notes = [], []
    for sheet_outcome, key in (("any adverse event", "any_ae"), ("serious adverse events", "serious_ae"),
                               ("length of hospital stay", "length_of_stay_hospital")):
        oa = report.analyses[key]
        name = SOF_NAMES[sheet_outcome]
        if oa.status != "pooled" or oa.primary is None or oa.primary.result is None:
            notes.append(f"{name}: not in the table ({_labelled(oa.reason, facts.labels) or 'not pooled'}).")
            continue
        if oa.info.kind == "continuous":
            evidence, effect, how = continuous_evidence(name, oa, facts, los_mid)
            notes.append(f"{name}: {how}.")
            rows.append(SofOutcome(evidence, continuous=effect, comments=_secondary_comment(oa, scenario, facts)))
            continue
        random = next((a.result for a in oa.analyses if a.model == "random" and a.result is not None), None)
        evidence = binary_evidence(name, oa.primary.result, random, oa.pooled_inputs, facts)
        rows.append(SofOutcome(evidence, comments=_secondary_comment(oa, scenario, facts)))
    return rows, notes
