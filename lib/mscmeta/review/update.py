"""Stage 06 (notebook ``06-update-and-certainty``): the evidence since 2021, how certain it is,
and whether more trials are needed.

The one module notebook 06 imports. It gathers the stage's steps from the modules that do
the work: the inputs (:mod:`~mscmeta.review.update_inputs`), the updated pooled estimate and
the period forest (:mod:`~mscmeta.review.update_pool`), the cumulative meta-analysis by
date (:mod:`~mscmeta.review.update_cumulative`), the trial sequential analysis
(:mod:`~mscmeta.review.update_tsa`), the GRADE summary of findings
(:mod:`~mscmeta.review.certainty`) and the claims read against both bodies of evidence
(:mod:`~mscmeta.review.update_claims`); and it writes the stage's prose from their tables.
Nothing here writes files; the notebook writes with :mod:`mscmeta.bundle.io`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from mscmeta.engine.grade import SofOutcome, SofTable
from mscmeta.engine.grade.domains import DOMAIN_TITLES, DOMAINS
from mscmeta.engine.grade.sof_html import GRADE_DEFINITIONS, assessment_html, sof_html
from mscmeta.engine.grade.text import format_certainty
from mscmeta.plots.style import use_style
from mscmeta.review.display import Col, ReportTable, TableSpec, public_text, save_table, show_figure, show_table
from mscmeta.review.certainty import (
    COMPARATOR,
    INTERVENTION,
    mortality_outcome,
    secondary_outcomes,
    secondary_report,
    sof_tidy,
    study_facts,
    summary_of_findings,
)
from mscmeta.review.tables import (
    CLAIMS_UPDATED,
    MISSING_DEATHS,
    SOF_TIDY,
    TSA,
    UPDATED_STUDIES,
    cumulative_by_date_spec,
    period_spec,
    tsa_view,
    updated_pooled_spec,
)
from mscmeta.review.text import fmt_ci, fmt_p
from mscmeta.review.update_claims import UPDATED_VERDICT_RULE, updated_claims_table
from mscmeta.review.update_cumulative import cumulative_by_date, cumulative_figure
from mscmeta.review.update_inputs import (
    UPDATED_SCENARIOS,
    UpdateInputs,
    load_update_inputs,
    missing_deaths,
)
from mscmeta.review.update_pool import (
    AS_DEFINED,
    UpdatedAnalysis,
    period_forest,
    period_rows,
    period_subgroups,
    run_updated,
    update_specs,
    updated_markdown,
    updated_pooled_table,
    updated_studies_table,
)
from mscmeta.review.update_tsa import run_tsa, tsa_figure, tsa_looks_table, tsa_markdown, tsa_table, yao_odds_ratio

__all__ = [
    "use_style", "UPDATED_SCENARIOS", "compared_scenarios", "load_update_inputs", "sets_markdown",
    "missing_table", "missing_markdown", "update_specs", "run_updated", "updated_pooled_table",
    "updated_studies_table", "updated_markdown", "period_subgroups", "period_rows", "period_forest",
    "cumulative_by_date", "cumulative_figure", "run_tsa", "tsa_table", "tsa_looks_table", "tsa_figure",
    "tsa_markdown", "yao_odds_ratio", "sof_table", "sof_tidy", "sof_setting", "sof_document", "secondary_report",
    "updated_claims_table", "UPDATED_VERDICT_RULE", "conclusion_markdown", "save_table", "show_table", "show_figure",
    "MISSING_DEATHS", "UPDATED_STUDIES", "TSA", "CLAIMS_UPDATED", "SOF_TIDY", "updated_pooled_spec", "period_spec",
    "cumulative_by_date_spec", "tsa_view", "sof_report_table", "certainty_rows", "period_caption",
    "cumulative_by_date_caption", "tsa_caption", "period_markdown", "CERTAINTY", "period_table",
]

#: The question of the summary-of-findings table.
SOF_TITLE = "Mesenchymal stromal cells compared to standard care or placebo for severe or critical COVID-19"
SOF_POPULATION = "adults hospitalised with severe or critical COVID-19 (mixed populations included, as in the studies)"


def compared_scenarios(scenario: str) -> tuple[str, ...]:
    """The Yao-era scenario (the notebook parameter) followed by the updated scenarios."""
    return tuple(dict.fromkeys((scenario, *UPDATED_SCENARIOS)))


def sets_markdown(inputs: UpdateInputs, scenario: str, specs: Sequence) -> str:
    """Which sets are compared, with which analyses, and where the risk of bias comes from."""
    defs = inputs.raw.scenario_definitions.set_index("scenario")
    lines = [f"- **{s}** ({defs.loc[s, 'label']}): {len(d)} studies with located deaths, "
             f"{int(d['n_msc'].sum() + d['n_control'].sum())} patients." for s, d in inputs.data.items()]
    lines.append(f"- The Yao-era set is scenario `{scenario}`; analyses: "
                 + "; ".join(f"**{s.name}** ({s.description})" for s in specs) + ".")
    lines.append(f"- Risk of bias: {inputs.rob_source}. Later syntheses: {len(inputs.syntheses)} rows of "
                 f"`later_syntheses.csv`; GRADE judgements: {len(inputs.judgements)} rows of `grade_judgements.csv`.")
    return "\n".join(lines) + "\n"


def missing_table(inputs: UpdateInputs, scenarios: Iterable[str]) -> pd.DataFrame:
    """Comparative studies of each review set whose deaths were not located (never imputed)."""
    frames = [missing_deaths(inputs.raw, s) for s in scenarios]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def missing_markdown(table: pd.DataFrame) -> str:
    """The missing evidence in words: per scenario, the studies and their arm sizes."""
    if table.empty:
        return "Every comparative study of the compared sets has located deaths.\n"
    lines = []
    for scenario, rows in table.groupby("scenario", sort=False):
        people = int(rows["n_msc"].fillna(0).sum() + rows["n_control"].fillna(0).sum())
        names = ", ".join(f"{r.label} ({r.design})" for r in rows.itertuples(index=False))
        lines.append(f"- **{scenario}**: {len(rows)} stud{'y' if len(rows) == 1 else 'ies'}, about {people} patients: "
                     f"{names}.")
    return "\n".join(lines) + "\n"


def sof_table(inputs: UpdateInputs, runs: Sequence[UpdatedAnalysis], scenario: str, secondary_scenario: str,
              los_mid: float | None = None) -> tuple[SofTable, list[str]]:
    """The GRADE summary of findings: mortality (Yao-era set, randomised trials 2020-2025), any
    adverse event, serious adverse events, length of hospital stay; plus notes on rows left out
    and on the MID used."""
    facts = study_facts(inputs.raw.studies, inputs.rob_overall)
    outcomes: list[SofOutcome] = []
    notes: list[str] = []
    for sheet_outcome, scen in (("mortality (Yao-era set)", scenario), ("mortality (updated RCTs)", "updated-rcts")):
        run = next((r for r in runs if r.scenario == scen and r.variant == AS_DEFINED), None)
        if run is None or run.results.get("MH fixed") is None:
            notes.append(f"{sheet_outcome}: not estimable in scenario {scen}.")
            continue
        outcomes.append(mortality_outcome(sheet_outcome, run, facts, missing_deaths(inputs.raw, scen)))
    rows, more = secondary_outcomes(secondary_report(inputs.raw, secondary_scenario), secondary_scenario, facts,
                                    los_mid)
    table, unused = summary_of_findings(outcomes + rows, inputs.judgements)
    return table, notes + more + unused


def sof_setting(inputs: UpdateInputs) -> str:
    """The setting line of the SoF table: the countries of the studies with located deaths."""
    countries = sorted({c.strip() for d in inputs.data.values() for v in d["country"].dropna()
                        for c in str(v).split(";") if c.strip()})
    return "hospitalised patients in " + ", ".join(countries)


def sof_document(table: SofTable, setting: str) -> str:
    """The summary of findings and the full certainty assessment as one HTML fragment."""
    return "\n".join([
        sof_html(table, title=SOF_TITLE, population=SOF_POPULATION, setting=setting, intervention=INTERVENTION,
                 comparator=COMPARATOR),
        "<p style=\"font-weight:bold\">Certainty assessment: every domain of every outcome</p>",
        assessment_html(table),
    ])


def _estimate(table: pd.DataFrame, scenario: str, analysis: str) -> str:
    rows = table[(table["scenario"] == scenario) & (table["variant"] == AS_DEFINED) & (table["analysis"] == analysis)]
    if rows.empty or not np.isfinite(rows.iloc[0]["estimate"]):
        return "not estimable"
    r = rows.iloc[0]
    return f"{r['measure']} {r['estimate']:.2f} (95% CI {r['ci_low']:.2f} to {r['ci_high']:.2f})"


def conclusion_markdown(pooled: pd.DataFrame, tsa: pd.DataFrame, sof: SofTable, claims: pd.DataFrame,
                        scenario: str) -> str:
    """The three questions of the stage answered from its tables."""
    levels = {a.outcome: a.word.lower() for a in sof.assessments}
    main = tsa[(tsa["scenario"] == "updated-rcts") & (tsa["rrr_basis"] == "fixed 20%")]
    mortality = claims[claims["claim_id"] == "mortality"]
    lines = [
        f"1. **Does the conclusion still hold?** Yao-era set ({scenario}): {_estimate(pooled, scenario, 'MH fixed')}. "
        f"Randomised trials 2020-2025: {_estimate(pooled, 'updated-rcts', 'MH fixed')} (Mantel-Haenszel), "
        f"{_estimate(pooled, 'updated-rcts', 'REML + HKSJ')} (REML + HKSJ). All controlled studies: "
        f"{_estimate(pooled, 'updated-all', 'MH fixed')}. Verdict on the mortality claim: "
        f"**{mortality.iloc[0]['verdict'] if len(mortality) else 'not assessed'}**.",
        "2. **How certain?** " + "; ".join(f"{o}: {w}" for o, w in levels.items()) + ".",
    ]
    if len(main):
        tsa_text = "; ".join(f"power {r.power:.0%}: {r.verdict}, information fraction {r.information_fraction:.2f} "
                             f"of {int(r.ris):,} patients" for r in main.itertuples(index=False))
        lines.append(f"3. **Are more trials needed?** Trial sequential analysis of the randomised trials (RRR 20%, "
                     f"D²-adjusted): {tsa_text}.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# How the report shows the stage: the SoF table, the certainty assessment, captions
# ---------------------------------------------------------------------------

#: The GRADEpro columns the report shows (the lettered footnotes follow the table).
SOF_COLUMNS_SHOWN = ("Outcomes", "№ of participants (studies)", "Certainty of the evidence (GRADE)",
                     "Relative effect (95% CI)", "Assumed control risk")


def sof_report_table(table: SofTable) -> ReportTable:
    """The summary of findings in GRADEpro's layout, in the reports' table format: one row per
    outcome, the explanation of the absolute effects, the GRADE definitions and the lettered
    explanations (reason for every downgrade and override) below it."""
    shown = table.display.drop(columns=["Footnotes"], errors="ignore")
    spec = TableSpec("Summary of findings: MSC compared to standard care or placebo for severe or critical COVID-19",
                     tuple(Col(c, c) for c in shown.columns))
    notes = [public_text(table.note)]
    notes += [f"{a}: {b}" for a, b in GRADE_DEFINITIONS]
    notes += [f"{f.marker}. {public_text(f.text)}" for f in table.footnotes]
    return replace(show_table(shown, spec), notes=tuple(notes))


def certainty_rows(table: SofTable) -> pd.DataFrame:
    """``certainty_assessment.csv``: every outcome's start level and five domains, with the
    rating, whether a rule or a sheet judgement set it (and the rule's own rating), and the reason."""
    rows = []
    for a in table.assessments:
        rows.append({"outcome": a.outcome, "domain": "start", "rating": format_certainty(a.start_level),
                     "set_by": "design", "reason": a.start_reason})
        for name in DOMAINS:
            r = a.domain(name)
            rows.append({"outcome": a.outcome, "domain": DOMAIN_TITLES[name],
                         "rating": f"{r.rating} ({r.label})" if r.label else r.rating,
                         "set_by": f"data sheet (rule: {r.rule_rating})" if r.overridden else "rule",
                         "reason": r.reason + (f" Source: {r.source}" if r.overridden and r.source else "")})
        rows.append({"outcome": a.outcome, "domain": "certainty", "rating": format_certainty(a.level), "set_by": "",
                     "reason": ""})
    return pd.DataFrame(rows)


CERTAINTY = TableSpec(
    "Certainty assessment: every domain of every outcome",
    (Col("Outcome", "outcome"), Col("Domain", "domain"), Col("Rating", "rating"), Col("Set by", "set_by"),
     Col("Reason", "reason")),
    missing_means="not applicable",
)


def period_markdown(table: pd.DataFrame) -> str:
    """The test for subgroup differences by period, one sentence per review set."""
    lines = []
    for scenario, rows in table.groupby("scenario", sort=False):
        row = rows.iloc[0]
        p = row["p_between"] if "p_between" in rows.columns else np.nan
        if not np.isfinite(p):
            lines.append(f"- **{scenario}**: no test for subgroup differences (fewer than two periods with an "
                         "estimable effect).")
            continue
        lines.append(f"- **{scenario}**: test for subgroup differences (period), Chi² = {row['Q_between']:.2f}, "
                     f"df = {int(row['df_between'])}, {fmt_p(p)}.")
    lines.append("\nA difference between periods is observational: the later trials differ from the earlier ones in "
                 "more than their date.")
    return "\n".join(lines) + "\n"


def period_caption(scenario: str, measure: str) -> str:
    return (f"Mortality by period of publication, review set {scenario}: RevMan forest plot ({measure}, "
            "Mantel–Haenszel fixed effect) with a subtotal for the studies published up to 2021 (the window of the "
            "published review) and for those published from 2022, and the test for subgroup differences. Squares: "
            "study estimates (area proportional to weight) with 95% CI; diamonds: subtotals and overall estimate; "
            "left of the line of no effect means fewer deaths with MSC; last column: overall risk of bias.")


def cumulative_by_date_caption(scenario: str, measure: str) -> str:
    return (f"Cumulative meta-analysis by publication date, review set {scenario} ({measure}, Mantel–Haenszel fixed "
            "effect): each row adds one study and shows the running estimate with its 95% CI; the dashed line marks "
            "the publication of the review being rebuilt. Below, the pooled mortality results of that review and "
            "of later systematic reviews as they published them, each in its own measure and study set (not "
            "recomputed here).")


def tsa_caption() -> str:
    return ("Trial sequential analysis of mortality (relative risk reduction 20%, two-sided α 5%), one panel per "
            "review set and power: the cumulative Z-curve (one point per trial in order of publication; hollow: a "
            "look the TSA conventions do not analyse) against the Lan–DeMets O'Brien–Fleming monitoring boundaries "
            "for benefit (below) and harm (above), the futility wedge (dashed) and the single-test limits ±1.96 "
            "(dotted); the x axis counts patients up to the required information size (dash-dotted line, RIS). The panel "
            "title gives the verdict and the information fraction reached.")


def period_table(inputs: UpdateInputs, scenarios: Iterable[str], options) -> pd.DataFrame:
    """``updated_period_subgroups.csv``: the period subgroups and the test for subgroup
    differences of every review set in *scenarios* (Mantel-Haenszel, *options*)."""
    frames = [period_rows(s, period_subgroups(inputs.data[s], options, source=f"scenario {s}")[1]) for s in scenarios]
    return pd.concat(frames, ignore_index=True)
