"""Stage 06 (review.update and its modules) on the project's raw data: the updated pooled
estimates against R metafor, the split-control sensitivity analysis, the publication order of
the cumulative analysis, the trial sequential analysis wiring, the GRADE summary of findings,
the claims verdict rule, and the two sheets of the stage (schema, provenance)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from mscmeta.engine.tsa import Verdict, required_information_size
from mscmeta.review import update as U
from mscmeta.review.csvsheet import DataValidationError
from mscmeta.review.sheets import load_raw
from mscmeta.review.update_claims import combined_verdict
from mscmeta.review.update_cumulative import date_order, reference_points
from mscmeta.review.update_inputs import split_control_rows
from mscmeta.review.update_tsa import implied_rrr

DATA_RAW = ROOT / "data" / "raw"


@pytest.fixture(scope="module")
def inputs():
    # stage 02's validated copy of the assessments is data/raw/risk_of_bias.csv itself
    return U.load_update_inputs(DATA_RAW, DATA_RAW, U.compared_scenarios("primary"))


@pytest.fixture(scope="module")
def runs(inputs):
    return U.run_updated(inputs, U.update_specs("OR", "revman"))


def _row(table: pd.DataFrame, scenario: str, variant: str, analysis: str) -> pd.Series:
    rows = table[(table["scenario"] == scenario) & (table["variant"] == variant) & (table["analysis"] == analysis)]
    assert len(rows) == 1, (scenario, variant, analysis)
    return rows.iloc[0]


# --------------------------------------------------------------------------- R metafor reference

#: RevMan-convention Mantel-Haenszel OR (lower, upper) from R 4.2.2 Patched (2022-11-10 r83330),
#: metafor 3.8.1, on the rows of ``updated_studies.csv`` of one scenario and variant::
#:
#:     x <- x[!(x$events_msc == 0 & x$events_control == 0), ]          # double zeros not estimable
#:     z <- x$events_msc == 0 | x$events_control == 0                   # RevMan: 0.5 to every cell
#:     rma.mh(ai = x$events_msc + 0.5*z, bi = x$n_msc - x$events_msc + 0.5*z,
#:            ci = x$events_control + 0.5*z, di = x$n_control - x$events_control + 0.5*z, measure = "OR")
R_MH_REVMAN = {
    ("primary", "as defined"): (0.2063263760, 0.0992257920, 0.4290272979),
    ("updated-rcts", "as defined"): (0.6628953375, 0.4384210781, 1.0023017833),
    ("updated-rcts", "split control"): (0.6635708752, 0.4393957987, 1.0021176982),
    ("updated-all", "as defined"): (0.5513057301, 0.3780533919, 0.8039552468),
    ("updated-all", "split control"): (0.5522782602, 0.3790640319, 0.8046431500),
}
#: Same R and metafor: ``rma.mh(ai = events_msc, n1i = n_msc, ci = events_control, n2i = n_control,
#: measure = "OR")`` (no continuity correction inside MH, metafor's default).
R_MH_EXACT = {
    ("updated-rcts", "as defined"): (0.6600849459, 0.4355984514, 1.0002609843),
    ("updated-all", "as defined"): (0.5428103433, 0.3704496850, 0.7953659583),
}
#: Same R and metafor: ``es <- escalc(measure = "OR", ai = events_msc, n1i = n_msc, ci = events_control,
#: n2i = n_control, add = 1/2, to = "only0", drop00 = TRUE); m <- rma(yi, vi, data = es,
#: method = "REML", test = "knha"); predict(m, transf = exp)``: OR, CI, PI and tau^2.
R_REML_HKSJ = {
    ("primary", "as defined"): (0.2058640895, 0.1598533008, 0.2651182250, 0.1598533008, 0.2651182250, 0.0),
    ("updated-rcts", "as defined"): (0.5883897414, 0.2408561759, 1.4373826476, 0.1337784548, 2.5878792543,
                                     0.2331870603),
    ("updated-rcts", "split control"): (0.6021333416, 0.2616027489, 1.3859355935, 0.1519803676, 2.3856012907,
                                        0.2146856263),
    ("updated-all", "as defined"): (0.4447368291, 0.2426448146, 0.8151455759, 0.1250085722, 1.5822182723,
                                    0.2566957532),
    ("updated-all", "split control"): (0.4494495771, 0.2466293036, 0.8190629395, 0.1252341414, 1.6130179849,
                                       0.2680948456),
}


@pytest.mark.parametrize("key", sorted(R_MH_REVMAN))
def test_mantel_haenszel_revman_equals_r_metafor(runs, key):
    """Ours vs R, 1e-6 on the log scale. Reference: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8.1,
    on the rows of one scenario and variant of ``outputs/tables/updated_studies.csv`` (``x``)::

        x <- x[!(x$events_msc == 0 & x$events_control == 0), ]
        z <- x$events_msc == 0 | x$events_control == 0
        rma.mh(ai = x$events_msc + 0.5*z, bi = x$n_msc - x$events_msc + 0.5*z,
               ci = x$events_control + 0.5*z, di = x$n_control - x$events_control + 0.5*z, measure = "OR")

    giving the (OR, lower, upper) of :data:`R_MH_REVMAN`; re-run on 2026-11-30 after main's data
    moved, same values."""
    table = U.updated_pooled_table(runs, U.update_specs())
    row = _row(table, *key, "MH fixed")
    ours = np.log([row["estimate"], row["ci_low"], row["ci_high"]])
    np.testing.assert_allclose(ours, np.log(R_MH_REVMAN[key]), atol=1e-6)


@pytest.mark.parametrize("key", sorted(R_MH_EXACT))
def test_mantel_haenszel_exact_equals_r_metafor_default(inputs, key):
    specs = U.update_specs("OR", "none")
    table = U.updated_pooled_table(U.run_updated(inputs, specs), specs)
    row = _row(table, *key, "MH fixed")
    np.testing.assert_allclose(np.log([row["estimate"], row["ci_low"], row["ci_high"]]), np.log(R_MH_EXACT[key]),
                               atol=1e-6)


@pytest.mark.parametrize("key", sorted(R_REML_HKSJ))
def test_reml_hksj_and_prediction_interval_equal_r_metafor(runs, key):
    """R 4.2.2 Patched, metafor 3.8.1: ``es <- escalc(measure = "OR", ai = events_msc, n1i = n_msc,
    ci = events_control, n2i = n_control, add = 1/2, to = "only0", drop00 = TRUE, data = x);
    m <- rma(yi, vi, data = es, method = "REML", test = "knha"); predict(m, transf = exp)`` on the rows
    of ``updated_studies.csv``: :data:`R_REML_HKSJ` (OR, CI, PI, tau^2)."""
    table = U.updated_pooled_table(runs, U.update_specs())
    row = _row(table, *key, "REML + HKSJ")
    est, lo, hi, pi_lo, pi_hi, tau2 = R_REML_HKSJ[key]
    ours = np.log([row["estimate"], row["ci_low"], row["ci_high"], row["pi_low"], row["pi_high"]])
    np.testing.assert_allclose(ours, np.log([est, lo, hi, pi_lo, pi_hi]), atol=1e-6)
    assert row["tau2"] == pytest.approx(tau2, abs=1e-6)


#: RevMan's test for subgroup differences by period (published up to 2021 / 2022 onward), from R 4.2.2
#: Patched, metafor 3.8.1, on the rows of ``updated_studies.csv`` (variant "as defined") with the
#: RevMan zero-cell convention of ``R_MH_REVMAN`` applied per subgroup::
#:
#:     x$period <- ifelse(as.integer(substr(x$pub_date, 1, 4)) <= 2021, "up to 2021", "2022 onward")
#:     subs <- lapply(split(x, x$period), function(y) rma.mh(<RevMan-corrected cells of y>, measure = "OR"))
#:     b <- sapply(subs, function(m) as.numeric(m$beta)); se <- sapply(subs, function(m) m$se)
#:     t <- rma(yi = b, sei = se, method = "FE"); c(t$QE, t$QEp)
#:
#: (Chi², P); df = 1. Subgroup ORs: updated-rcts 0.2020460 (to 2021), 0.8547027 (2022 on);
#: updated-all 0.2063264, 0.8547027.
R_PERIOD_TEST = {
    "updated-rcts": (5.9891047560, 0.0143945060, (0.2020460, 0.8547027)),
    "updated-all": (10.3696193868, 0.0012810596, (0.2063264, 0.8547027)),
}


@pytest.mark.parametrize("scenario", sorted(R_PERIOD_TEST))
def test_period_subgroup_difference_equals_r_metafor(inputs, scenario):
    table = U.period_table(inputs, [scenario], U.update_specs()[0].options).set_index("subgroup")
    chi2, p, (early, late) = R_PERIOD_TEST[scenario]
    assert table.loc["overall", "Q_between"] == pytest.approx(chi2, abs=1e-6)
    assert table.loc["overall", "p_between"] == pytest.approx(p, abs=1e-8)
    assert int(table.loc["overall", "df_between"]) == 1
    np.testing.assert_allclose(table.loc[["up to 2021", "2022 onward"], "estimate"], [early, late], rtol=1e-6)


def test_updated_studies_table_holds_the_rows_behind_each_analysis(runs, inputs):
    studies = U.updated_studies_table(runs)
    assert {"scenario", "study_id", "events_msc", "n_msc", "events_control", "n_control"} <= set(studies.columns)
    rcts = studies[(studies["scenario"] == "updated-rcts") & (studies["variant"] == "as defined")]
    assert list(rcts["study_id"]) == list(inputs.data["updated-rcts"]["study_id"])
    # Bowdish 2023, Table 2 of the primary paper (data/raw/mortality.csv row bowdish2023-d30): 42/112 vs 47/110
    bowdish = rcts.set_index("study_id").loc["bowdish2023"]
    assert (bowdish["events_msc"], bowdish["n_msc"], bowdish["events_control"], bowdish["n_control"]) == (42, 112, 47, 110)


# --------------------------------------------------------------------------- split control (Zarrabi 2023)

def test_split_control_enters_each_cell_arm_against_half_the_control(inputs):
    """Cochrane Handbook v6 §23.3.4; counts from the paper's abstract as recorded in mortality.csv:
    MSC alone 3/11, MSC + EV 0/8, control 8/24 split into 4/12 and 4/12."""
    split = split_control_rows(inputs, "updated-rcts").set_index("study_id")
    assert "zarrabi2023" not in split.index
    msc, ev = split.loc["zarrabi2023-split-msc"], split.loc["zarrabi2023-split-ev"]
    assert (msc["label"], msc["events_msc"], msc["n_msc"], msc["events_control"], msc["n_control"]) == (
        "Zarrabi 2023 (MSC)", 3, 11, 4, 12)
    assert (ev["label"], ev["events_msc"], ev["n_msc"], ev["events_control"], ev["n_control"]) == (
        "Zarrabi 2023 (MSC + EV)", 0, 8, 4, 12)
    combined = inputs.data["updated-rcts"].set_index("study_id").loc["zarrabi2023"]
    assert msc["n_control"] + ev["n_control"] == combined["n_control"]
    assert msc["n_msc"] + ev["n_msc"] == combined["n_msc"]


def test_no_split_variant_without_a_multi_arm_trial(inputs):
    assert split_control_rows(inputs, "primary") is None


# --------------------------------------------------------------------------- missing evidence

def test_missing_deaths_lists_the_trials_without_located_deaths(inputs):
    missing = U.missing_table(inputs, ["updated-rcts"])
    studies = inputs.raw.studies.set_index("study_id")
    rcts = set(inputs.raw.scenarios.query("scenario == 'updated-rcts'")["study_id"])
    expected = {s for s in rcts if studies.loc[s, "mortality_data"] == "not located"}
    assert set(missing["study_id"]) == expected and expected
    assert not expected & set(inputs.data["updated-rcts"]["study_id"])


# --------------------------------------------------------------------------- cumulative by date

def test_publication_order_puts_year_only_dates_first_within_their_year():
    d = pd.DataFrame({"study_id": ["b2021", "a2021", "c2020", "d2021"],
                      "pub_date": ["2021-03-01", "2021", "2020-12-31", "2021-01-05"]})
    assert list(date_order(d)["study_id"]) == ["c2020", "a2021", "d2021", "b2021"]


def test_cumulative_table_ends_at_the_pooled_estimate(inputs, runs):
    specs = U.update_specs()
    cum = U.cumulative_by_date(inputs, U.UPDATED_SCENARIOS, specs[0].options)
    table = U.updated_pooled_table(runs, specs)
    for scenario in U.UPDATED_SCENARIOS:
        last = cum[cum["scenario"] == scenario].iloc[-1]
        pooled = _row(table, scenario, "as defined", "MH fixed")
        assert last["estimate"] == pytest.approx(pooled["estimate"], rel=1e-12)
        assert last["cum_n_msc"] == pooled["n_msc"] and last["cum_n_control"] == pooled["n_control"]
        dates = list(cum[cum["scenario"] == scenario]["pub_date"].astype(str))
        assert dates == sorted(dates)


def test_reference_points_come_from_the_sheets(inputs):
    refs = reference_points(inputs)
    later = inputs.syntheses[inputs.syntheses["role"] == "later synthesis"]
    assert len(refs) == len(later) + 1  # + Yao's published OR (published_results.csv)
    assert "passage not located" in refs.iloc[0]["label"]
    qin = later.set_index("synthesis_id").loc["qin2024-d28"]
    # Qin J et al. Stem Cell Rev Rep 2024 abstract: "28-day mortality (RR 0.76, 95% CI 0.62 to 0.93"
    assert (qin["measure"], qin["estimate"], qin["ci_low"], qin["ci_high"]) == ("RR", 0.76, 0.62, 0.93)


# --------------------------------------------------------------------------- trial sequential analysis

def test_implied_rrr_recovers_the_risk_ratio_of_a_two_by_two():
    """Risks 0.25 vs 0.40 give OR (1/3)/(2/3) = 0.5 and RR 0.625: the OR at the control risk
    0.40 must imply RRR 0.375 (Zhang & Yu, JAMA 1998;280:1690)."""
    assert implied_rrr(0.5, 0.40) == pytest.approx(0.375, abs=1e-12)


def test_tsa_uses_revman_mh_z_and_the_d2_of_r_metafor(inputs):
    """R 4.2.2, metafor 3.8.1 on updated-rcts without the double-zero trial, 0.5 added to zero-cell
    trials: rma.mh(...) log OR -0.4111381633, se 0.2109412748 (z -1.9490645613); D^2 from
    rma(yi, vi, method = "FE") and rma(yi, vi, method = "DL") on the same escalc: 0.6203128512;
    control deaths 85 of 225."""
    runs = U.run_tsa(inputs, ["updated-rcts"], U.update_specs()[0].options, powers=(0.8,))
    fixed = next(r for r in runs if r.rrr_basis == "fixed 20%")
    assert fixed.result.z[-1] == pytest.approx(-1.9490645613, abs=1e-6)
    assert fixed.d2 == pytest.approx(0.6203128512, abs=1e-8)
    assert fixed.control_risk == pytest.approx(85 / 225, rel=1e-12)
    expected = required_information_size(85 / 225, 0.20, alpha=0.05, power=0.8, diversity=0.6203128512)
    assert fixed.result.required_information_size == expected.patients
    assert fixed.excluded == ("Shi 2021",)
    assert fixed.result.cumulative_n[-1] == 549 - 100  # Shi 2021 (0/65 vs 0/35) not on the information axis
    assert fixed.result.verdict in set(Verdict)


def test_tsa_table_and_figure(inputs):
    runs = U.run_tsa(inputs, U.UPDATED_SCENARIOS, U.update_specs()[0].options)
    table = U.tsa_table(runs)
    assert set(table["power"]) == {0.8, 0.9}
    pub = pd.read_csv(DATA_RAW / "published_results.csv", dtype=str).set_index(["quantity", "subgroup"])
    published_or = pub.loc[("mortality_or", "overall"), "estimate"]  # as printed in the sheet
    assert set(table["rrr_basis"]) == {"fixed 20%", f"implied by Yao's OR {published_or}"}
    assert (table["ris"] >= table["ris_unadjusted"]).all()
    assert np.allclose(table["information_fraction"], table["patients"] / table["ris"])
    fig = U.tsa_figure(runs)
    assert len([ax for ax in fig.axes if ax.has_data()]) == 4


# --------------------------------------------------------------------------- GRADE summary of findings

@pytest.fixture(scope="module")
def sof(inputs, runs):
    return U.sof_table(inputs, runs, "primary", "updated-all")


def test_every_outcome_has_all_five_domains_rated_with_reasons(sof):
    table, _ = sof
    assert [a.outcome for a in table.assessments] == [
        "Mortality, Yao-era set (published to 2021)", "Mortality, randomised trials 2020-2025",
        "Any adverse event", "Serious adverse events", "Length of hospital stay"]
    for assessment in table.assessments:
        assert len(assessment.domains) == 5
        for rating in assessment.domains:
            assert rating.rating in ("not serious", "serious", "very serious") and rating.reason.strip()


def test_sheet_judgements_are_applied_and_marked_as_overrides(sof, inputs):
    table, _ = sof
    judged = {(r.outcome, r.domain) for r in inputs.judgements.itertuples(index=False)}
    for assessment in table.assessments:
        for rating in assessment.domains:  # the sheet judges indirectness only
            assert rating.overridden == (rating.domain == "indirectness")
    assert len(judged) == 5
    tidy = U.sof_tidy(table)
    assert tidy["indirectness_overridden"].all() and not tidy["imprecision_overridden"].any()


def test_absolute_effect_of_the_randomised_trials_follows_the_gradepro_formula(sof, runs):
    """Risk with MSC = OR x ACR / (1 - ACR + OR x ACR) with ACR the pooled control risk (GRADE
    Handbook §5, "Absolute effect"); ACR = 85/260 control deaths in updated-rcts."""
    table, _ = sof
    row = table.tidy.set_index("outcome").loc["Mortality, randomised trials 2020-2025"]
    acr = 85 / 260
    odds_ratio = row["estimate"]
    assert row["control_risk"] == pytest.approx(acr, rel=1e-12)
    assert row["risk_intervention"] == pytest.approx(odds_ratio * acr / (1 - acr + odds_ratio * acr), rel=1e-12)
    text = table.display.set_index("Outcomes").loc["Mortality, randomised trials 2020-2025"]
    assert text["Risk with standard care or placebo"] == f"{math.floor(acr * 1000 + 0.5)} per 1,000"


def test_sof_html_shows_every_outcome_and_no_internals(sof, inputs):
    table, _ = sof
    page = U.sof_document(table, U.sof_setting(inputs))
    for assessment in table.assessments:
        assert assessment.outcome in page
    assert "/work/" not in page and "object at 0x" not in page


# --------------------------------------------------------------------------- claims

@pytest.mark.parametrize(("yao", "updated", "certainty", "verdict"), [
    ("supported", "supported", "moderate", "still supported"),
    ("supported", "supported", "low", "possibly supported (low certainty)"),
    ("supported", "supported", "very low", "uncertain (very low certainty)"),
    ("supported", "supported", "", "supported (certainty not graded)"),
    ("supported", "not supported", "low", "no longer supported"),
    ("not supported", "not supported", "low", "not supported"),
    ("supported", "insufficient data", "", "insufficient data"),
])
def test_combined_verdict_rule(yao, updated, certainty, verdict):
    assert combined_verdict(yao, updated, certainty) == verdict


# --------------------------------------------------------------------------- the sheets of stage 06

def test_later_syntheses_and_grade_judgements_carry_their_sources():
    raw = load_raw(DATA_RAW, optional_sheets=["later_syntheses.csv", "grade_judgements.csv"])
    syntheses, judgements = raw.later_syntheses, raw.grade_judgements
    assert syntheses["source"].str.startswith("http").all()
    assert syntheses["quote"].str.len().gt(20).all() and syntheses["location"].notna().all()
    later = syntheses[syntheses["role"] == "later synthesis"]
    for row in later.itertuples(index=False):
        assert f"{row.estimate:.2f}" in row.quote, row.synthesis_id  # the quote shows the number
    assert (syntheses["role"] == "index review").sum() == 1
    assert judgements["source"].notna().all() and judgements["reason"].str.len().gt(50).all()


def _copy_with(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "raw"
    shutil.copytree(DATA_RAW, folder)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_bad_grade_judgement_is_reported_with_file_line_and_column(tmp_path):
    header = "outcome,domain,rating,reason,source\n"
    rows = ("any adverse event,imprecision,huge,too few events,data/raw/adverse_events.csv\n"
            "any adverse event,imprecision,serious,twice,data/raw/adverse_events.csv\n")
    folder = _copy_with(tmp_path, "grade_judgements.csv", header + rows)
    with pytest.raises(DataValidationError) as info:
        load_raw(folder, optional_sheets=["grade_judgements.csv"])
    text = str(info.value)
    assert "grade_judgements.csv, line 2, column rating: must be one of: not serious, serious, very serious" in text
    assert "duplicate combination of (outcome, domain)" in text


def test_later_synthesis_without_an_estimate_is_refused(tmp_path):
    sheet = pd.read_csv(DATA_RAW / "later_syntheses.csv", dtype=str, keep_default_na=False)
    sheet = sheet[sheet["role"] == "later synthesis"].head(1).assign(estimate="")
    folder = _copy_with(tmp_path, "later_syntheses.csv", sheet.to_csv(index=False))
    with pytest.raises(DataValidationError, match="later_syntheses.csv, line 2.*a later synthesis needs measure"):
        load_raw(folder, optional_sheets=["later_syntheses.csv"])


def test_stage_runs_on_the_fixture_without_length_of_stay(tmp_path):
    """The small fixture pools no length of stay: the row is left out with its reason, and the sheet's
    judgement for it is reported as not applied (never an error)."""
    fixture = ROOT / "tests" / "fixtures" / "data_small"
    inputs = U.load_update_inputs(fixture, fixture, U.compared_scenarios("primary"))
    runs = U.run_updated(inputs, U.update_specs())
    table, notes = U.sof_table(inputs, runs, "primary", "updated-all")
    assert "Length of hospital stay" not in [a.outcome for a in table.assessments]
    assert any(n.startswith("Length of hospital stay: not in the table (descriptive only") for n in notes)
    assert any("judgement of grade_judgements.csv is not applied" in n for n in notes)
    assert not any("shu2020" in n for n in notes)  # study ids shown as labels
