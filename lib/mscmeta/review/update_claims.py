"""The paper's claims read against the Yao-era and the updated evidence (stage 06).

Each claim of Yao et al. (2022) -- the mortality conclusion and the secondary-outcome claims
of stage 05 (:data:`mscmeta.review.claims.CLAIMS`) -- gets the Yao-era evidence (scenario
``primary``), the updated evidence (mortality: randomised trials 2020-2025; secondary
outcomes: the secondary scenario's review set), the certainty of the updated evidence from
the summary of findings, and a verdict that reads both (:data:`UPDATED_VERDICT_RULE`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mscmeta.engine.grade import SofTable
from mscmeta.review.certainty import SOF_NAMES
from mscmeta.review.claims import YAO_SUMMARY_URL
from mscmeta.review.secondary_analyses import SecondaryReport
from mscmeta.review.update_pool import AS_DEFINED, UpdatedAnalysis

MORTALITY_CLAIM = ("mortality", "may significantly reduce mortality in patients with severe or critical COVID-19, "
                   "regardless of whether 1 to 3 doses are used")
#: SoF outcomes that grade each claim (the lowest certainty among them is shown).
CLAIM_OUTCOMES: Mapping[str, tuple[str, ...]] = {
    "mortality": ("mortality (updated RCTs)",),
    "safe": ("any adverse event", "serious adverse events"),
    "fewer_aes": ("any adverse event", "serious adverse events"),
    "resource_use": ("length of hospital stay",),
}

UPDATED_VERDICT_RULE = (
    "Each side is judged as in report 05 (mortality: the 95% CI of the Mantel-Haenszel odds ratio excludes 1 in "
    "favour of MSC). Verdict: 'still supported' when the updated evidence supports the claim and its certainty is "
    "high or moderate; 'possibly supported (low certainty)' or 'uncertain (very low certainty)' when it supports "
    "it at lower certainty; 'no longer supported' when the Yao-era evidence supported it and the updated evidence "
    "does not; 'not supported' when neither does; 'insufficient data' when the updated evidence cannot be pooled; "
    "a claim without a graded outcome is read on its CI alone ('certainty not graded')."
)


def _mortality_side(run: UpdatedAnalysis | None) -> tuple[str, str]:
    if run is None or run.results.get("MH fixed") is None:
        return "insufficient data", "not estimable"
    res = run.results["MH fixed"].to_dict()
    null = 1.0 if run.results["MH fixed"].is_ratio() else 0.0
    verdict = "supported" if res["ci_high"] < null else "not supported"
    measure = run.results["MH fixed"].measure
    text = f"{run.scenario}: {measure} {res['estimate']:.2f} ({res['ci_low']:.2f} to {res['ci_high']:.2f}), k = {res['k']}"
    reml = run.results.get("REML + HKSJ")
    if reml is not None:
        r = reml.to_dict()
        text += f"; REML + HKSJ {r['estimate']:.2f} ({r['ci_low']:.2f} to {r['ci_high']:.2f})"
    return verdict, text


def _certainty(sof: SofTable | None, claim_id: str) -> str:
    if sof is None or claim_id not in CLAIM_OUTCOMES:
        return ""
    wanted = {SOF_NAMES[o] for o in CLAIM_OUTCOMES[claim_id]}
    levels = [(a.level, a.word.lower()) for a in sof.assessments if a.outcome in wanted]
    return min(levels)[1] if levels else ""


def combined_verdict(yao: str, updated: str, certainty: str) -> str:
    """The verdict of :data:`UPDATED_VERDICT_RULE` from both sides and the certainty."""
    if updated == "insufficient data":
        return "insufficient data"
    if updated == "supported":
        if not certainty:
            return "supported (certainty not graded)"
        return {"high": "still supported", "moderate": "still supported",
                "low": "possibly supported (low certainty)"}.get(certainty, "uncertain (very low certainty)")
    return "no longer supported" if yao == "supported" else "not supported"


def _claim_sides(report: SecondaryReport) -> dict[str, tuple[str, str, str, str]]:
    """claim_id -> (claim text, verdict, evidence text, claim source) from a stage-05 claims table."""
    out = {}
    for claim_id, rows in report.claims.groupby("claim_id", sort=False):
        evidence = "; ".join(f"{r.outcome_label}: {r.evidence}" for r in rows.itertuples(index=False)
                             if r.outcome_verdict != "insufficient data") or "no outcome could be pooled"
        first = rows.iloc[0]
        out[claim_id] = (first["claim"], first["claim_verdict"], evidence, first["claim_source"])
    return out


def updated_claims_table(runs: list[UpdatedAnalysis], yao_report: SecondaryReport, updated_report: SecondaryReport,
                         sof: SofTable | None, yao_scenario: str = "primary",
                         updated_scenario: str = "updated-rcts") -> pd.DataFrame:
    """One row per claim: the Yao-era and updated evidence, their verdicts, the certainty of
    the updated evidence and the combined verdict (:data:`UPDATED_VERDICT_RULE`)."""
    def run_of(scenario: str) -> UpdatedAnalysis | None:
        return next((r for r in runs if r.scenario == scenario and r.variant == AS_DEFINED), None)

    yao_m, updated_m = _mortality_side(run_of(yao_scenario)), _mortality_side(run_of(updated_scenario))
    rows = [{"claim_id": MORTALITY_CLAIM[0], "claim": MORTALITY_CLAIM[1], "claim_source": YAO_SUMMARY_URL,
             "yao_era_evidence": yao_m[1], "yao_era_verdict": yao_m[0], "updated_evidence": updated_m[1],
             "updated_verdict": updated_m[0]}]
    yao_sides, new_sides = _claim_sides(yao_report), _claim_sides(updated_report)
    for claim_id, (claim, verdict, evidence, source) in yao_sides.items():
        new = new_sides.get(claim_id, (claim, "insufficient data", "no outcome could be pooled", source))
        rows.append({"claim_id": claim_id, "claim": claim, "claim_source": source,
                     "yao_era_evidence": evidence, "yao_era_verdict": verdict, "updated_evidence": new[2],
                     "updated_verdict": new[1]})
    out = pd.DataFrame(rows)
    out["certainty"] = [_certainty(sof, c) or "not graded" for c in out["claim_id"]]
    out["verdict"] = [combined_verdict(y, u, "" if c == "not graded" else c)
                      for y, u, c in zip(out["yao_era_verdict"], out["updated_verdict"], out["certainty"], strict=True)]
    return out.replace({np.nan: ""})
