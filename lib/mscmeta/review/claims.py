"""The paper's claims about secondary outcomes, the evidence found and a computed verdict.

Each qualitative claim of Yao et al. (2022) (:data:`CLAIMS`) is read against the pooled
analyses of stage 05; the verdict follows the rule stated in :data:`VERDICT_RULE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.review.display import fmt_number
from mscmeta.review.secondary_analyses import Analysis, OutcomeAnalysis, analysis_n, int_counts


#: Where the quoted claims come from (a news summary of the paper; Yao 2022's own text was not located).
YAO_SUMMARY_URL = (
    "https://www.pulmonologyadvisor.com/home/topics/critical-care/"
    "mesenchymal-stromal-cell-treatment-in-critically-ill-patients-with-covid-19/"
)


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of Yao et al. (2022) and the outcomes that test it.

    ``kind`` is ``"safety"`` (no relevant excess harm with MSC) or ``"benefit"`` (the
    outcomes move in the direction that favours MSC).
    """

    claim_id: str
    quote: str
    source: str
    kind: str
    outcomes: tuple[str, ...]
    note: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("safe", "Treatment with mesenchymal stromal cells (MSCs) is safe", YAO_SUMMARY_URL, "safety",
          ("any_ae", "serious_ae", "infusion_reaction"),
          "Conclusion as quoted by a news summary of the paper"),
    Claim("fewer_aes", "safe ... fewer AEs", "paraphrase of Yao 2022's conclusion (wording not located)", "benefit",
          ("any_ae", "serious_ae"),
          "A paraphrase of the paper's safety conclusion; this wording was not located in the sources reviewed"),
    Claim("pulmonary_function", "MSC treatment may also improve pulmonary function", YAO_SUMMARY_URL, "benefit",
          ("pao2_fio2", "murray_score", "ct_score", "ct_improvement", "ct_normal", "ct_lesion_volume_change",
           "six_minute_walk", "pulmonary_function"),
          "Includes imaging, which the paper analysed with pulmonary function (news summary of the paper)"),
    Claim("inflammatory_cytokines", "decrease inflammatory cytokines", YAO_SUMMARY_URL, "benefit",
          ("il6", "tnf_alpha", "inflammatory_cytokines", "crp", "lymphocytes"),
          "CRP and lymphocytes are not cytokines; listed as related inflammatory markers"),
    Claim("resource_use", "and lower resource utilization", YAO_SUMMARY_URL, "benefit",
          ("length_of_stay_hospital", "length_of_stay_icu", "mechanical_ventilation", "ecmo"),
          "Resource use 'measured according to length of hospitalization or intensive care unit stay' (news summary of "
          "the paper)"),
)


VERDICT_RULE = (
    "Per outcome, from its primary pooled analysis (random-effects MD/SMD for continuous outcomes; MH OR with "
    "RevMan's zero-cell correction for binary outcomes; MH RD for the safety claim): a benefit claim is "
    "'supported' when the 95% CI excludes no effect in the direction favouring MSC, 'not supported' when the CI "
    "includes no effect or favours control; the safety claim is 'supported' when the upper 95% limit of the "
    "risk difference (MSC minus control) is below the harm margin, i.e. the data exclude an excess risk of that "
    "size, else 'not supported'. Outcomes without a pooled estimate (fewer than 2 studies with comparable data) "
    "are 'insufficient data'. A claim is 'supported' if at least one of its outcomes is supported and none "
    "points the other way with a CI excluding no effect; 'insufficient data' if none of its outcomes could be "
    "pooled; otherwise 'not supported'."
)


def _k_comparable(oa: OutcomeAnalysis) -> int:
    return int(oa.inputs["comparable"].sum()) if not oa.inputs.empty else 0


def short_reason(oa: OutcomeAnalysis) -> str:
    """One line on why an outcome is descriptive only (for figures)."""
    n = len(oa.studies_with_data)
    if not n:
        return "no data located"
    studies = f"{n} stud{'y' if n == 1 else 'ies'}"
    if oa.info.kind == "events":
        return f"{studies}, event counts only"
    if oa.info.kind == "contrast":
        return f"{studies}, between-arm estimate only"
    if oa.info.kind == "narrative":
        return f"{studies}, direction only"
    return f"{studies}, {_k_comparable(oa)} with both arms comparable"


def _primary_for_claim(oa: OutcomeAnalysis, kind: str) -> Analysis | None:
    if oa.status != "pooled":
        return None
    if kind == "safety" and oa.info.kind == "binary":
        return next((a for a in oa.analyses if a.measure == "RD" and "RevMan" in a.name and a.result is not None), None)
    prim = oa.primary
    return prim if prim is not None and prim.result is not None else None


def _format_estimate(a: Analysis) -> str:
    d = a.result.to_dict()
    return f"{a.measure} {fmt_number(d['estimate'])} ({fmt_number(d['ci_low'])} to {fmt_number(d['ci_high'])})"


def _outcome_verdict(oa: OutcomeAnalysis, kind: str, harm_margin: float) -> tuple[str, str, Analysis | None]:
    """(verdict, direction, analysis); direction is 'msc', 'control' or '' (CI includes no effect)."""
    a = _primary_for_claim(oa, kind)
    if a is None:
        return "insufficient data", "", None
    d = a.result.to_dict()
    null = 1.0 if a.result.is_ratio() else 0.0
    lo, hi = d["ci_low"], d["ci_high"]
    lower_is_better = oa.info.better == "lower"
    if hi < null:
        direction = "msc" if lower_is_better else "control"
    elif lo > null:
        direction = "control" if lower_is_better else "msc"
    else:
        direction = ""
    if kind == "safety":
        verdict = "supported" if (hi < harm_margin and direction != "control") else "not supported"
    else:
        verdict = "supported" if direction == "msc" else "not supported"
    return verdict, direction, a


def claims_table(analyses: Mapping[str, OutcomeAnalysis], harm_margin: float = 0.10) -> pd.DataFrame:
    """One row per claim x outcome, with the evidence and the verdicts (rule: :data:`VERDICT_RULE`).

    Parameters
    ----------
    analyses : mapping
        Outcome name -> :class:`OutcomeAnalysis` (from :func:`analyse_secondary`).
    harm_margin : float
        Excess risk (risk difference, MSC minus control) the data must exclude for the
        safety claim to count as supported (0.10 = 10 percentage points).
    """
    if not 0 < harm_margin < 1:
        raise ValueError(f"harm_margin must lie between 0 and 1 (a risk difference), got {harm_margin!r}")
    rows = []
    for claim in CLAIMS:
        claim_rows = []
        for outcome in claim.outcomes:
            oa = analyses.get(outcome)
            if oa is None:
                continue
            verdict, direction, a = _outcome_verdict(oa, claim.kind, harm_margin)
            n_msc, n_control = analysis_n(oa, a) if a is not None else (np.nan, np.nan)
            claim_rows.append({
                "claim_id": claim.claim_id, "claim": claim.quote, "claim_source": claim.source,
                "outcome": outcome, "outcome_label": oa.info.label,
                "better_with_msc": oa.info.better,
                "studies_with_data": len(oa.studies_with_data),
                "k": int(a.result.k) if a is not None else _k_comparable(oa),
                "n_msc": n_msc,
                "n_control": n_control,
                "evidence": (f"{a.name}: {_format_estimate(a)}" if a is not None else oa.reason),
                "ci_favours": {"msc": "MSC", "control": "control", "": "neither (CI includes no effect)"}[direction]
                if a is not None else "",
                "outcome_verdict": verdict,
                "random_effects_check": _random_effects_check(oa, a, claim.kind),
            })
        verdicts = [r["outcome_verdict"] for r in claim_rows]
        against = any(r["ci_favours"] == "control" for r in claim_rows)
        if all(v == "insufficient data" for v in verdicts):
            claim_verdict = "insufficient data"
        elif "supported" in verdicts and not against:
            claim_verdict = "supported"
        else:
            claim_verdict = "not supported"
        for r in claim_rows:
            r["claim_verdict"] = claim_verdict
            r["note"] = claim.note + (f"; harm margin RD {harm_margin:g}" if claim.kind == "safety" else "")
        rows += claim_rows
    columns = ["claim_id", "claim", "claim_source", "outcome", "outcome_label", "better_with_msc", "studies_with_data",
               "k", "n_msc", "n_control", "evidence", "ci_favours", "outcome_verdict", "random_effects_check",
               "claim_verdict", "note"]
    return int_counts(pd.DataFrame(rows, columns=columns))


def _random_effects_check(oa: OutcomeAnalysis, used: Analysis | None, kind: str) -> str:
    """For a binary outcome judged on a Mantel-Haenszel (fixed-effect) analysis: does the
    random-effects odds ratio lead to the same reading of its CI? Empty otherwise."""
    if used is None or used.model != "fixed" or oa.info.kind != "binary":
        return ""
    re = next((a for a in oa.analyses if a.model == "random" and a.result is not None), None)
    if re is None:
        return ""
    d = re.result.to_dict()
    excludes = d["ci_high"] < 1 or d["ci_low"] > 1
    return f"{re.name}: {_format_estimate(re)}; CI {'excludes' if excludes else 'includes'} no effect"
