"""The display format of every table the notebooks show (:mod:`mscmeta.review.display`).

One :class:`~mscmeta.review.display.TableSpec` per table: which columns a reader sees, under
which header and in which format. Specs that depend on a parameter (the effect measure)
are functions of it. The tidy CSV files keep every column; these specs decide only what the
reports and the Markdown twins show.
"""

from __future__ import annotations

import pandas as pd

from mscmeta.review.display import Col, TableSpec, fmt_estimate, fmt_integer, fmt_number, fmt_pvalue

MEASURE_SHORT = {"OR": "OR", "RR": "RR", "RD": "RD", "MD": "MD", "SMD": "SMD"}


def _est(measure: str = "") -> Col:
    head = f"{measure} [95% CI]" if measure else "Estimate [95% CI]"
    return Col(head, ("estimate", "ci_low", "ci_high"), "estimate")


# ---------------------------------------------------------------------------
# 01-extract
# ---------------------------------------------------------------------------

TABLE1 = TableSpec(
    "Table 1. Studies in the review set",
    (Col("Study", "Study"), Col("Design", "Design"), Col("Severity", "Severity"), Col("MSC source", "MSC source"),
     Col("Doses", "Doses"), Col("n MSC", "n MSC"), Col("n control", "n control"), Col("Deaths MSC", "Deaths MSC"),
     Col("Deaths control", "Deaths control"), Col("Time point", "Time point"), Col("Source of deaths", "Source of deaths")),
    notes=("Deaths are deaths/patients per arm from the scenario's mortality reading; NR: not reported or varying "
           "between patients; NL: deaths not located.",),
    missing_means="no comparative deaths, or no control arm",
)

CHARACTERISTICS = TableSpec(
    "Characteristics of included studies (RevMan layout)",
    (Col("Study", "study"), Col("Methods", "methods"), Col("Participants", "participants"),
     Col("Interventions", "interventions"), Col("Outcomes", "outcomes"), Col("Notes", "notes")),
    missing_means="not reported in the sources reviewed",
)

ELIGIBILITY = TableSpec(
    "Eligibility of every candidate study",
    (Col("Study", "label"), Col("Design", "design"), Col("Severity", "severity"), Col("Decision", "decision"),
     Col("Reason", "reason"), Col("Deaths", "mortality_data"), Col("Role in this scenario", "role"),
     Col("In the mortality analysis of the scenarios", "mortality_in")),
    missing_means="in no scenario",
)

STUDY_SET = TableSpec(
    "The review set against Yao 2022's reported counts",
    (Col("Quantity", "description"), Col("This scenario", "this_scenario", "int"),
     Col("Published (Yao 2022)", "published", "int"), Col("Difference", "difference", "int")),
    missing_means="not reported by the paper",
)

PROVENANCE = TableSpec(
    "Where the numbers come from",
    (Col("Scope", "scope"), Col("Sheet", "table"), Col("Kind of source", "source_level"),
     Col("Derived", "derived", "bool"), Col("Rows", "rows", "int"), Col("Numbers", "numbers", "int")),
)

PRISMA_CHECKLIST = TableSpec(
    "PRISMA 2020 checklist",
    (Col("Section", "section"), Col("Item", "item"), Col("Topic", "topic"), Col("Where in the bundle", "where"),
     Col("Status", "status")),
)

# ---------------------------------------------------------------------------
# 02-quality-assess
# ---------------------------------------------------------------------------

ROB_OVERALL = TableSpec(
    "Overall risk of bias for mortality, with the reasons",
    (Col("Study", "study"), Col("Tool", "tool"), Col("Overall", "overall"), Col("Reasons", "reasons")),
)


def rob_domains(tool: str, columns) -> TableSpec:
    """The domain judgements of one tool (columns D1… and Overall of the wide table)."""
    cols = [Col("Study", "study")] + [Col(c, c) for c in columns if c not in ("study_id", "study")]
    return TableSpec(f"{tool}: domain judgements", tuple(cols), missing_means="not assessed")


# ---------------------------------------------------------------------------
# 03-pool
# ---------------------------------------------------------------------------


def pooled_spec(measure: str) -> TableSpec:
    """``pooled_mortality.csv`` as shown: one row per analysis."""
    return TableSpec(
        "Pooled in-hospital mortality: the primary analysis and its comparators",
        (Col("Analysis", "analysis"), Col("Conventions", "description"), Col("k", "k", "int"), _est(measure),
         Col("P", "p_value", "p"), Col("Q", "Q"), Col("df", "Q_df", "int"), Col("P (heterogeneity)", "Q_p", "p"),
         Col("I²", "I2", "pct"), Col("τ²", "tau2", "num", 3), Col("95% prediction interval", ("pi_low", "pi_high"), "interval")),
        notes=("k: studies with an estimable effect; estimates on the ratio scale for OR and RR.",),
        missing_means="not applicable (fixed-effect model, or fewer than two studies)",
    )


SCORECARD = TableSpec(
    "Reproduction scorecard: every published quantity next to ours",
    (Col("Quantity", "quantity"), Col("Subgroup", "subgroup"), Col("Published", "published"), Col("Ours", "ours"),
     Col("Status", "status")),
    missing_means="no value (not reported, or not computed in this run)",
)

INFLUENCE = TableSpec(
    "Influence diagnostics (inverse-variance counterpart of the primary analysis)",
    (Col("Study", "label"), Col("Studentised residual", "rstudent"), Col("DFFITS", "dffits"),
     Col("Cook's distance", "cook_d"), Col("COVRATIO", "cov_r"), Col("τ² without it", "tau2_del", "num", 3),
     Col("Q without it", "QE_del"), Col("Hat", "hat", "num", 3), Col("Weight", "weight", "pct", 1),
     Col("DFBETAS", "dfbetas"), Col("Influential", "influential", "bool"), Col("Note", "note")),
    missing_means="not computed for this study (not estimable)",
)


def sparse_models_spec(table: pd.DataFrame) -> TableSpec:
    """``sparse_models_mortality.csv`` as shown (the Note column only when a model has a note)."""
    cols = [Col("Model", "model"), Col("What it does", "description"), Col("k", "k", "int"),
            Col("OR [95% CI or CrI]", ("estimate", "ci_low", "ci_high"), "estimate"), Col("P", "p_value", "p"),
            Col("τ²", "tau2", "num", 3), Col("P(OR < 1)", "prob_or_below_1", "p"),
            Col("P(OR < 0.8)", "prob_or_below_0_8", "p"), Col("Fragility index", "fragility_index", "int")]
    if table["note"].fillna("").astype(str).str.strip().ne("").any():
        cols.append(Col("Note", "note"))
    return TableSpec(
        "Pooled mortality odds ratio under the models for sparse data",
        tuple(cols),
        notes=("k: studies that enter the model (studies without deaths in either arm carry no information on the "
               "odds ratio). Intervals are 95% confidence intervals, for the Bayesian rows central 95% credible "
               "intervals. τ²: between-study variance, the maximum-likelihood estimate for the GLMMs and the "
               "posterior median for the Bayesian rows. P(OR < 1), P(OR < 0.8): posterior probabilities.",
               "MH with RevMan's 0.5 correction is the primary convention of the review (most likely the paper's).",),
        missing_means=("not applicable: no P value for the Bayesian rows, no τ² for fixed-effect models, posterior "
                       "probabilities only for the Bayesian rows, the fragility index only for the analysis it is "
                       "computed for"),
    )


def fragility_spec(frag: pd.DataFrame) -> TableSpec:
    """``fragility_mortality.csv`` as shown: the index in the title, one row per event change."""
    fi = frag["fragility_index"].iloc[0] if len(frag) else float("nan")
    index = "not defined" if pd.isna(fi) else fmt_integer(fi)
    analysis = f" ({frag['analysis'].iloc[0]})" if len(frag) and isinstance(frag["analysis"].iloc[0], str) else ""
    cols = [Col("Step", "step", "int"), Col("Study", "label"), Col("Arm", "arm"), Col("Change in deaths", "change", "int"),
            Col("Deaths before", "events_before", "int"), Col("Deaths after", "events_after", "int"),
            Col("Pooled estimate [95% CI] after the change", ("estimate", "ci_low", "ci_high"), "estimate")]
    if frag["note"].fillna("").astype(str).str.strip().ne("").any():
        cols.append(Col("Note", "note"))
    return TableSpec(
        f"Fragility index of the pooled result{analysis}: {index}",
        tuple(cols),
        notes=("The fewest changes of a patient's death status, made one at a time in the study and arm that moves "
               "the result most (Atal et al. 2019), after which the 95% CI of the pooled Mantel-Haenszel "
               "estimate crosses 1 (or stops crossing it).",),
        missing_means="no change needed or possible",
    )


# ---------------------------------------------------------------------------
# 04-subgroup
# ---------------------------------------------------------------------------


def subgroup_spec(measure: str) -> TableSpec:
    """``subgroups_mortality.csv`` as shown."""
    return TableSpec(
        "Mortality by subgroup",
        (Col("Factor", "factor"), Col("Subgroup", "subgroup"), Col("k", "k", "int"),
         Col("Deaths MSC", ("events_msc", "n_msc"), "fraction"), Col("Deaths control", ("events_control", "n_control"), "fraction"),
         _est(measure), Col("P", "p_value", "p"), Col("I²", "I2", "pct"), Col("P (subgroup differences)", "p_between", "p"),
         Col("Note", "note")),
        missing_means="not estimable, or no test (fewer than two estimable subgroups)",
    )


# ---------------------------------------------------------------------------
# 05-secondary-outcomes
# ---------------------------------------------------------------------------

SECONDARY_PROVENANCE = TableSpec(
    "Where the secondary-outcome numbers come from",
    (Col("Sheet", "sheet"), Col("Kind of source", "source_level"), Col("Quote", "quote_check"),
     Col("Numbers", "numbers", "int"), Col("Derived", "derived", "int"), Col("Primary readings", "primary_use", "int")),
)


def pooled_outcomes_spec(title: str) -> TableSpec:
    """Pooled adverse events or secondary outcomes (one row per outcome and analysis)."""
    return TableSpec(
        title,
        (Col("Outcome", "outcome_label"), Col("Analysis", "analysis"), Col("k", "k", "int"), Col("n MSC", "n_msc", "int"),
         Col("n control", "n_control", "int"), _est(), Col("P", "p_value", "p"), Col("I²", "I2", "pct"),
         Col("Note", "note")),
        notes=("Ratios (OR) on the ratio scale; MD in the outcome's unit; SMD is Hedges' g.",),
        missing_means="not pooled (descriptive only; the note says why)",
    )


def per_study_spec(title: str, safety: bool) -> TableSpec:
    """Per-study rows of the adverse events (*safety*) or the other secondary outcomes."""
    cols = [Col("Outcome", "outcome_label"), Col("Study", "study"), Col("Time point", "timepoint"),
            Col("Reading", "use"), Col("MSC", "msc"), Col("Control", "control"),
            Col("Between-arm estimate or direction", "contrast_or_direction")]
    if not safety:
        cols.append(Col("Converted mean (SD), MSC vs control", "converted"))
    cols += [Col("Pooled", "in_pooled_analysis", "bool"), Col("Kind of source", "source_levels")]
    return TableSpec(title, tuple(cols), missing_means="not reported")


AE_KINDS = TableSpec(
    "Kinds of adverse events reported (descriptive)",
    (Col("Study", "study"), Col("Adverse event", "ae_type"), Col("Time point", "timepoint"), Col("Counted", "unit"),
     Col("MSC", "msc", "int"), Col("Control", "control", "int"), Col("Kind of source", "source_level")),
    missing_means="arm not reported",
)

CLAIMS = TableSpec(
    "The paper's claims and the evidence",
    (Col("Claim", "claim"), Col("Outcome", "outcome_label"), Col("Better with MSC", "better_with_msc"),
     Col("k", "k", "int"), Col("Evidence", "evidence"), Col("CI excludes no effect, favouring", "ci_favours"),
     Col("Outcome verdict", "outcome_verdict"), Col("Claim verdict", "claim_verdict")),
    missing_means="no pooled estimate",
)


# ---------------------------------------------------------------------------
# Tidy tables reshaped for reading (one column where the CSV has several)
# ---------------------------------------------------------------------------


def eligibility_view(elig: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """:func:`mscmeta.review.extract.eligibility_table` with the role in *scenario* and the
    scenarios whose mortality analysis the study enters, instead of one column per scenario."""
    role_cols = [c for c in elig.columns if c.startswith("in_")]
    out = elig.drop(columns=role_cols).copy()
    roles = elig.get(f"in_{scenario}", pd.Series("", index=elig.index)).astype(str)
    out["role"] = [r.split(" (")[0] for r in roles]
    out["mortality_in"] = [
        ", ".join(c[3:] for c in role_cols if str(row[c]).startswith("mortality")) for _, row in elig.iterrows()
    ]
    return out


def scorecard_view(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard with the published and our value each in one readable cell."""

    def cell(est, lo, hi, p, kind_p: bool) -> str:
        if kind_p:
            text = fmt_pvalue(p)
            return "" if pd.isna(p) else f"P {text[0]} {text[1:]}" if text.startswith(("<", ">")) else f"P = {text}"
        if pd.isna(est):
            return ""
        if pd.isna(lo) or pd.isna(hi):
            return fmt_integer(est) if float(est).is_integer() else fmt_number(est)
        return fmt_estimate(est, lo, hi)

    out = card[["quantity", "subgroup", "status"]].copy()
    is_p = card["published_p_value"].notna()
    out["published"] = [cell(r.published_estimate, r.published_ci_low, r.published_ci_high, r.published_p_value, p)
                        for r, p in zip(card.itertuples(index=False), is_p, strict=True)]
    out["ours"] = [cell(r.reproduced_estimate, r.reproduced_ci_low, r.reproduced_ci_high, r.reproduced_p_value, p)
                   for r, p in zip(card.itertuples(index=False), is_p, strict=True)]
    out["quantity"] = out["quantity"].map(lambda q: QUANTITY_NAMES.get(q, str(q).replace("_", " ")))
    return out


#: Readable names of the published quantities.
QUANTITY_NAMES = {
    "mortality_or": "Mortality (the paper's odds ratio)", "heterogeneity_p": "Heterogeneity, P (the paper's)", "studies": "Studies",
    "articles": "Articles", "patients": "Patients", "study_size_min": "Smallest study (patients)",
    "study_size_max": "Largest study (patients)", "records_identified": "Records identified",
}

#: How the quote check of a secondary-outcome number reads in a report.
QUOTE_CHECK = {"re-read in source": "re-read in the source", "from research notes": "taken from the extraction notes, not re-read"}


def secondary_provenance_view(prov: pd.DataFrame) -> pd.DataFrame:
    """The provenance tally with the quote check in words."""
    return prov.assign(quote_check=prov["quote_check"].map(lambda q: QUOTE_CHECK.get(str(q), str(q))))


def per_study_view(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-study secondary rows with the between-arm statistic or direction in one column and
    the converted means of both arms in another."""
    out = rows.copy()
    contrast = out["contrast"].fillna("").astype(str)
    direction = out["direction_only"].fillna("").astype(str)
    out["contrast_or_direction"] = [c or d for c, d in zip(contrast, direction, strict=True)]
    msc, ctl = out["mean_sd_msc"].fillna("").astype(str), out["mean_sd_control"].fillna("").astype(str)
    out["converted"] = [f"{m} vs {c}" if m and c else "" for m, c in zip(msc, ctl, strict=True)]
    return out


# ---------------------------------------------------------------------------
# 06-update-and-certainty
# ---------------------------------------------------------------------------

MISSING_DEATHS = TableSpec(
    "Missing evidence: comparative studies of each review set whose deaths were not located",
    (Col("Review set", "scenario"), Col("Study", "label"), Col("Design", "design"), Col("n MSC", "n_msc", "int"),
     Col("n control", "n_control", "int"), Col("Why not in the analysis", "reason")),
    notes=("These studies are listed, not imputed: their deaths are missing from every pooled estimate of the set.",),
    missing_means="arm size not located",
)


def updated_pooled_spec(measure: str) -> TableSpec:
    """``updated_pooled.csv`` as shown: one row per review set, variant and analysis."""
    return TableSpec(
        "Pooled mortality: the published review's set and the updated sets",
        (Col("Review set", "scenario"), Col("Variant", "variant"), Col("Analysis", "analysis"), Col("k", "k", "int"),
         Col("Deaths MSC", ("events_msc", "n_msc"), "fraction"),
         Col("Deaths control", ("events_control", "n_control"), "fraction"), _est(measure), Col("P", "p_value", "p"),
         Col("I²", "I2", "pct"), Col("τ²", "tau2", "num", 3), Col("95% prediction interval", ("pi_low", "pi_high"), "interval")),
        notes=("k: studies with an estimable effect (no deaths in either arm: not estimable). Variant 'split control': "
               "the three-arm trial entered as one comparison per cell arm against half of the shared control.",),
        missing_means="not applicable (fixed-effect model) or not estimable",
    )


UPDATED_STUDIES = TableSpec(
    "The studies behind each updated analysis",
    (Col("Review set", "scenario"), Col("Variant", "variant"), Col("Study", "label"), Col("Published", "pub_date"),
     Col("Design", "design"), Col("Deaths MSC", ("events_msc", "n_msc"), "fraction"),
     Col("Deaths control", ("events_control", "n_control"), "fraction"), Col("Time point", "timepoint")),
)


def period_spec(measure: str) -> TableSpec:
    """The period subgroups of the updated forest plot."""
    return TableSpec(
        "Mortality by period of publication, with the test for subgroup differences",
        (Col("Review set", "scenario"), Col("Period", "subgroup"), Col("k", "k", "int"),
         Col("Deaths MSC", ("events_t", "n_t"), "fraction"), Col("Deaths control", ("events_c", "n_c"), "fraction"),
         _est(measure), Col("P", "p_value", "p"), Col("I²", "I2", "pct"), Col("Chi² (subgroup differences)", "Q_between", "num"),
         Col("df", "df_between", "int"), Col("P (subgroup differences)", "p_between", "p")),
        notes=("Mantel–Haenszel fixed effect (RevMan's zero-cell convention); the test for subgroup differences is "
               "RevMan's Chi² on the subgroup estimates.",),
        missing_means="not estimable, or no test",
    )


def cumulative_by_date_spec(measure: str) -> TableSpec:
    """``cumulative_by_date.csv`` as shown."""
    return TableSpec(
        "Cumulative meta-analysis by publication date",
        (Col("Review set", "scenario"), Col("Step", "step", "int"), Col("Study added", "label"),
         Col("Published", "pub_date"), Col("k", "k", "int"), Col("Deaths MSC", ("cum_events_msc", "cum_n_msc"), "fraction"),
         Col("Deaths control", ("cum_events_control", "cum_n_control"), "fraction"), _est(measure),
         Col("P", "p_value", "p"), Col("I²", "I2", "pct")),
        notes=("Each row pools every study published up to and including the one added (Mantel–Haenszel fixed "
               "effect); deaths are the running totals.",),
        missing_means="not estimable yet (no deaths in the studies so far)",
    )


TSA = TableSpec(
    "Trial sequential analysis of mortality: required information size and verdict",
    (Col("Review set", "scenario"), Col("RRR; power", "rrr_text"), Col("Control mortality", "control_pct", "pct", 1),
     Col("D²", "d2_pct", "pct"), Col("RIS", "ris", "int"), Col("Patients (trials)", "patients_text"),
     Col("Information fraction", "information_fraction", "num"), Col("Z (last trial)", "z_last", "num"),
     Col("Verdict", "verdict_text"), Col("OR [TSA-adjusted 95% CI]", ("estimate", "tsa_ci_low", "tsa_ci_high"), "estimate"),
     Col("No deaths in either arm (not counted)", "double_zero_not_counted")),
    notes=("RRR: relative risk reduction (20%, or the one implied by the published odds ratio at the control "
           "mortality); RIS: required information size (patients), two-sided α 5%, adjusted for heterogeneity by the "
           "diversity D²; information fraction: patients accrued / RIS. Trials without deaths in either arm carry no "
           "information on the odds ratio and are not counted on the information axis.",),
    missing_means="none (or not defined)",
)


CLAIMS_UPDATED = TableSpec(
    "The paper's claims, then and now",
    (Col("Claim", "claim"), Col("Evidence to 2021", "yao_era_evidence"), Col("Then", "yao_era_verdict"),
     Col("Evidence to 2025", "updated_evidence"), Col("Now", "updated_verdict"),
     Col("Certainty (GRADE)", "certainty"), Col("Verdict", "verdict")),
)

SOF_TIDY = TableSpec(
    "Summary of findings: the numbers and every domain's rating",
    (Col("Outcome", "outcome"), Col("Participants", "n_participants", "int"), Col("Studies", "n_studies", "int"),
     Col("Measure", "measure"), Col("Estimate [95% CI]", ("estimate", "ci_low", "ci_high"), "estimate"),
     Col("Risk of bias", "risk_of_bias"), Col("Inconsistency", "inconsistency"), Col("Indirectness", "indirectness"),
     Col("Imprecision", "imprecision"), Col("Publication bias", "publication_bias"), Col("Certainty", "certainty")),
    notes=("Ratios (OR) on the ratio scale; the mean difference of length of stay in days.",),
)


def tsa_view(tsa: pd.DataFrame) -> pd.DataFrame:
    """``tsa.csv`` with percentages and the verdict in words for the report."""
    out = tsa.copy()
    out["rrr_text"] = [f"{r:.0%}" + ("" if b.startswith("fixed") else f" ({b})")
                       for r, b in zip(out["rrr"], out["rrr_basis"], strict=True)]
    out["rrr_text"] = [f"{t}; {p:.0%}" for t, p in zip(out["rrr_text"], out["power"], strict=True)]
    out["patients_text"] = [f"{int(n)} ({int(k)})" for n, k in zip(out["patients"], out["trials"], strict=True)]
    out["control_pct"] = 100 * out["control_risk"]
    out["d2_pct"] = 100 * out["diversity_d2"]
    out["verdict_text"] = [v + (f" (at {t})" if isinstance(t, str) and t else "")
                           for v, t in zip(out["verdict"], out["verdict_trial"].fillna(""), strict=True)]
    return out
