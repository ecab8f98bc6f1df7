"""Secondary outcomes and adverse events (mscmeta.review.secondary and its modules, notebook 05).

Independent references used below:

* statsmodels 0.15 ``stats.meta_analysis.combine_effects`` (inverse-variance pooling; its
  ``method_re="iterated"`` is the Paule-Mandel estimator, statsmodels/statsmodels
  ``statsmodels/stats/meta_analysis.py``, ``_fit_tau_iterative``) and
  ``stats.contingency_tables.StratifiedTable`` (Mantel-Haenszel odds ratio without any
  zero-cell correction, with the Robins-Breslow-Greenland confidence interval).
* Luo D et al. (2018), Stat Methods Med Res 27:1785-1805, eq. (11) for the mean from
  median and IQR: ``(0.7 + 0.39/n) (q1 + q3)/2 + (0.3 - 0.39/n) m``; Wan X et al. (2014),
  BMC Med Res Methodol 14:135, eq. (16) for the SD from the IQR:
  ``(q3 - q1) / (2 Phi^-1((0.75 n - 0.125) / (n + 0.25)))``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from conftest import FIXTURE_DATA, ROOT
from mscmeta.review import schema_secondary as SS
from mscmeta.review import claims as C
from mscmeta.review import secondary as S
from mscmeta.review import secondary_analyses as SA
from mscmeta.review import secondary_inputs as SI
from mscmeta.review import secondary_sheets as SD

DATA_RAW = ROOT / "data" / "raw"
FILES = ("adverse_events.csv", "secondary_outcomes.csv")


# --------------------------------------------------------------------------- helpers


def _read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _copy_fixture(tmp_path):
    for name in (*FILES, "studies.csv"):
        shutil.copy(FIXTURE_DATA / name, tmp_path / name)
    return tmp_path


def _write(frame: pd.DataFrame, path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def _errors(tmp_path) -> list[str]:
    with pytest.raises(SD.SecondaryDataError) as info:
        SD.load_secondary(tmp_path)
    assert isinstance(info.value, ValueError)
    return [str(f) for f in info.value.failures]


def _row(ae: pd.DataFrame, **match) -> int:
    mask = np.ones(len(ae), dtype=bool)
    for k, v in match.items():
        mask &= ae[k].to_numpy() == v
    (idx,) = np.flatnonzero(mask)
    return int(idx)


def _sec_rows(rows: list[dict]) -> pd.DataFrame:
    """Build a secondary_outcomes frame from short dicts (provenance filled in)."""
    base = {"unit": "days", "timepoint": "to discharge", "use": "primary", "source": "https://example.org/t",
            "location": "Table 1", "quote": "q", "quote_check": "re-read in source", "source_level": "primary paper",
            "derivation": "", "note": ""}
    return pd.DataFrame([{**base, **r} for r in rows], columns=SS.SECONDARY_SHEET.columns).astype(str)


def _empty_ae() -> pd.DataFrame:
    return pd.DataFrame(columns=SS.AE_SHEET.columns, dtype=str)


def _data(sec: pd.DataFrame, ae: pd.DataFrame | None = None) -> SD.SecondaryData:
    ae = _empty_ae() if ae is None else ae
    texts = {"adverse_events.csv": ae.mask(ae.isin(["", "nan"])),
             "secondary_outcomes.csv": sec.mask(sec.isin(["", "nan"]))}
    return SD.validate_secondary(texts)


def _continuous_study(study, mt, sdt, nt, mc, sdc, nc, outcome="length_of_stay_hospital", unit="days"):
    out = []
    for arm, m, s, n in (("msc", mt, sdt, nt), ("control", mc, sdc, nc)):
        out += [{"study_id": study, "outcome": outcome, "arm": arm, "statistic": "mean", "value": repr(float(m)),
                 "unit": unit},
                {"study_id": study, "outcome": outcome, "arm": arm, "statistic": "sd", "value": repr(float(s)),
                 "unit": unit},
                {"study_id": study, "outcome": outcome, "arm": arm, "statistic": "n", "value": str(int(n)),
                 "unit": "patients"}]
    return out


# --------------------------------------------------------------------------- the real data


def test_real_files_validate_against_studies_csv():
    studies = _read(DATA_RAW / "studies.csv")["study_id"]
    data = SD.load_secondary(DATA_RAW, studies)
    assert len(data.adverse_events) == len(_read(DATA_RAW / "adverse_events.csv"))
    assert len(data.outcomes) == len(_read(DATA_RAW / "secondary_outcomes.csv"))


def test_real_files_pass_the_cross_file_checks_of_stage_01():
    from mscmeta.review.sheets import load_raw

    raw = load_raw(DATA_RAW)
    assert raw.adverse_events is not None and raw.secondary_outcomes is not None


def test_fixture_files_are_rows_of_the_real_files():
    for name in FILES:
        real = _read(DATA_RAW / name)
        small = _read(FIXTURE_DATA / name)
        assert list(small.columns) == list(real.columns)
        merged = small.merge(real, how="left", indicator=True)
        assert (merged["_merge"] == "both").all(), f"{name}: fixture rows not in data/raw"
        assert set(small["study_id"]) <= set(_read(FIXTURE_DATA / "studies.csv")["study_id"])


def test_every_row_has_provenance():
    for name in FILES:
        df = _read(DATA_RAW / name)
        for col in ("source", "location", "quote", "quote_check", "source_level", "timepoint"):
            assert (df[col].str.strip() != "").all(), f"{name}: empty {col}"


# --------------------------------------------------------------------------- validation errors


def test_count_above_n_names_file_line_study_outcome_and_column(tmp_path):
    _copy_fixture(tmp_path)
    ae = _read(tmp_path / "adverse_events.csv")
    i = _row(ae, study_id="lanzoni2021", outcome="any_ae", arm="msc", statistic="count")
    ae.loc[i, "value"] = "13"
    _write(ae, tmp_path / "adverse_events.csv")
    (msg,) = _errors(tmp_path)
    assert msg.startswith(f"adverse_events.csv, line {i + 2}, study lanzoni2021, column value:")
    assert "outcome any_ae" in msg and "exceeds the arm total n 12" in msg


def test_all_problems_of_both_files_are_reported_at_once(tmp_path):
    _copy_fixture(tmp_path)
    ae = _read(tmp_path / "adverse_events.csv")
    i = _row(ae, study_id="shi2021", outcome="serious_ae", arm="msc", statistic="count")
    ae.loc[i, "outcome"] = "serius_ae"                         # typo in an outcome name
    j = _row(ae, study_id="shi2021", outcome="serious_ae", arm="control", statistic="count")
    ae.loc[j, "value"] = "-1"                                  # negative count
    _write(ae, tmp_path / "adverse_events.csv")
    so = _read(tmp_path / "secondary_outcomes.csv")
    k = _row(so, study_id="shu2020", outcome="length_of_stay_hospital", arm="msc", statistic="q1")
    so.loc[k, "value"] = "21"                                  # q1 above the median 20
    med = _row(so, study_id="shu2020", outcome="length_of_stay_hospital", arm="msc", statistic="median")
    m = _row(so, study_id="shu2020", outcome="length_of_stay_hospital", arm="contrast", statistic="p_value")
    so.loc[m, "study_id"] = "shu2029"                          # unknown study
    so = so.drop(columns=["quote"])                            # missing column
    _write(so, tmp_path / "secondary_outcomes.csv")
    errors = _errors(tmp_path)
    text = "\n".join(errors)
    assert f"adverse_events.csv, line {i + 2}, study shi2021, column outcome" in text and "serius_ae" in text
    assert f"adverse_events.csv, line {j + 2}, study shi2021, column value" in text
    assert "secondary_outcomes.csv, line 1, column quote: required column is missing" in text
    # with a column missing, the row and group rules of that sheet still run on the other columns
    assert any(f"line {med + 2}, study shu2020, column value" in e and "outcome length_of_stay_hospital" in e
               and "median 20 is below q1 21" in e for e in errors)
    assert any(f"line {m + 2}, study shu2029, column study_id" in e for e in errors)


def test_narrative_rows_need_an_empty_value_and_numbers_need_a_unit():
    sec = _sec_rows([
        {"study_id": "shu2020", "outcome": "il6", "arm": "contrast", "statistic": "narrative", "value": "3",
         "unit": ""},
        {"study_id": "shu2020", "outcome": "il6", "arm": "msc", "statistic": "median", "value": "3", "unit": ""},
    ])
    with pytest.raises(SD.SecondaryDataError) as info:
        _data(sec)
    text = str(info.value)
    assert "line 2, study shu2020, column value: outcome il6: statistic 'narrative' must have an empty value" in text
    assert "line 3, study shu2020, column unit: outcome il6: statistic 'median' needs a unit" in text


def test_two_primary_readings_of_one_number_are_refused(tmp_path):
    _copy_fixture(tmp_path)
    ae = _read(tmp_path / "adverse_events.csv")
    i = _row(ae, study_id="shi2021", outcome="any_ae", arm="msc", statistic="count", use="alternative",
             timepoint="2021 article, whole trial (period not stated; S5: 4 weeks)")
    ae.loc[i, "use"] = "primary"
    _write(ae, tmp_path / "adverse_events.csv")
    errors = _errors(tmp_path)
    assert any(f"line {i + 2}, study shi2021, column use: outcome any_ae: a second 'primary' row" in e for e in errors)


def test_contrast_rows_take_only_between_arm_statistics():
    sec = _sec_rows([{"study_id": "shi2021", "outcome": "six_minute_walk", "arm": "contrast", "statistic": "mean",
                      "value": "27", "unit": "m"}])
    with pytest.raises(SD.SecondaryDataError, match="statistic 'mean' does not fit arm 'contrast'"):
        _data(sec)


# --------------------------------------------------------------------------- reshaping and conversion


def test_median_iqr_is_converted_with_luo_and_wan_and_the_method_is_recorded():
    data = SD.load_secondary(DATA_RAW)
    wide = SI.continuous_input(data, "length_of_stay_hospital").set_index("study_id")
    row = wide.loc["shu2020"]
    # Shu 2020 Table 3: MSC median 20.00 (IQR 16.00, 24.00), n = 12
    n, m, q1, q3 = 12, 20.0, 16.0, 24.0
    luo = (0.7 + 0.39 / n) * (q1 + q3) / 2 + (0.3 - 0.39 / n) * m          # Luo 2018, eq. (11)
    wan = (q3 - q1) / (2 * norm.ppf((0.75 * n - 0.125) / (n + 0.25)))       # Wan 2014, eq. (16)
    assert row["mean_t"] == pytest.approx(luo, rel=1e-12)
    assert row["sd_t"] == pytest.approx(wan, rel=1e-12)
    assert row["method_t"] == "Luo 2018 / Wan 2014 (median, IQR)"
    assert row["comparable"]


def test_reported_means_are_used_as_reported():
    sec = _sec_rows(_continuous_study("aaa2020", 3, 1, 10, 4, 1.5, 12))
    wide = SI.continuous_input(_data(sec), "length_of_stay_hospital").iloc[0]
    assert (wide["mean_t"], wide["sd_t"], wide["n_t"]) == (3.0, 1.0, 10.0)
    assert wide["method_t"] == "reported mean (SD)"


def test_incomplete_iqr_is_not_converted_and_says_why():
    data = SD.load_secondary(DATA_RAW)
    wide = SI.continuous_input(data, "length_of_stay_icu").set_index("study_id")
    assert not wide.loc["monsel2022", "comparable"]
    assert "median without a complete IQR" in wide.loc["monsel2022", "reason"]


def test_alternative_rows_are_shown_but_not_pooled():
    data = SD.load_secondary(DATA_RAW)
    events = SI.binary_input(data, "any_ae").set_index("study_id")
    assert events.loc["shi2021", "events_msc"] == 37              # S3 reading, not S2's derived 36
    assert events.loc["monsel2022", "events_msc"] == 18           # day 0 to 14 window, not after day 14
    report = S.analyse_secondary(data)
    per = report.per_study
    alt = per[(per["outcome"] == "any_ae") & (per["study_id"] == "shi2021") & (per["use"] == "alternative")]
    assert len(alt) == 2 and not alt["in_pooled_analysis"].any()


# --------------------------------------------------------------------------- descriptive vs pooled


def test_fewer_than_two_comparable_studies_is_descriptive_with_a_reason():
    sec = _sec_rows(_continuous_study("aaa2020", 3, 1, 10, 4, 1.5, 12) + [
        {"study_id": "bbb2021", "outcome": "length_of_stay_hospital", "arm": "contrast", "statistic": "narrative",
         "value": "", "unit": ""}])
    oa = SA.analyse_outcome(_data(sec), "length_of_stay_hospital")
    assert oa.status == "descriptive only" and oa.analyses == ()
    assert oa.reason.startswith("descriptive only: 1 study with comparable data in both arms (aaa2020)")
    assert "pooling needs at least 2" in oa.reason and "bbb2021: direction only" in oa.reason
    row = S.secondary_pooled_table([oa]).iloc[0]
    assert row["analysis"] == "descriptive only" and np.isnan(row["estimate"]) and row["note"] == oa.reason


def test_outcomes_without_arm_level_data_are_descriptive():
    report = S.analyse_secondary(SD.load_secondary(DATA_RAW))
    for outcome in ("il6", "crp", "tnf_alpha", "lymphocytes", "pao2_fio2", "ct_lesion_volume_change", "ae_events"):
        assert report.analyses[outcome].status == "descriptive only", outcome
        assert report.analyses[outcome].reason


def test_units_that_differ_give_a_standardised_mean_difference():
    sec = _sec_rows(_continuous_study("aaa2020", 3, 1, 10, 4, 1.5, 12, outcome="crp", unit="mg/L")
                    + _continuous_study("bbb2021", 30, 10, 15, 45, 12, 14, outcome="crp", unit="mg/dL"))
    oa = SA.analyse_outcome(_data(sec), "crp")
    assert oa.status == "pooled" and oa.primary.measure == "SMD" and "units differ" in oa.primary.note


# --------------------------------------------------------------------------- pooled values vs independent code


def test_length_of_stay_md_equals_statsmodels_combine_effects():
    from statsmodels.stats.meta_analysis import combine_effects

    data = SD.load_secondary(DATA_RAW)
    oa = SA.analyse_outcome(data, "length_of_stay_hospital", model="random", tau2_method="PM")
    res = oa.primary.result
    x = oa.pooled_inputs
    yi = (x["mean_t"] - x["mean_c"]).to_numpy()
    vi = (x["sd_t"] ** 2 / x["n_t"] + x["sd_c"] ** 2 / x["n_c"]).to_numpy()
    ref = combine_effects(yi, vi, method_re="iterated")        # Paule-Mandel, statsmodels
    assert res.estimate == pytest.approx(ref.mean_effect_re, abs=1e-8)
    assert res.se == pytest.approx(ref.sd_eff_w_re, abs=1e-8)
    assert res.ci_low == pytest.approx(ref.mean_effect_re - norm.ppf(0.975) * ref.sd_eff_w_re, abs=1e-8)
    assert res.tau2 == pytest.approx(max(ref.tau2, 0.0), abs=1e-8)


def test_any_ae_exact_mh_odds_ratio_equals_statsmodels_stratified_table():
    from statsmodels.stats.contingency_tables import StratifiedTable

    data = SD.load_secondary(DATA_RAW)
    oa = SA.analyse_outcome(data, "any_ae")
    exact = next(a for a in oa.analyses if a.name == "MH OR, exact")
    x = oa.pooled_inputs
    tables = [np.array([[r.events_msc, r.n_msc - r.events_msc], [r.events_control, r.n_control - r.events_control]])
              for r in x.itertuples()]
    ref = StratifiedTable(tables)                               # no zero-cell correction (shift_zeros=False)
    d = exact.result.to_dict()
    assert d["estimate"] == pytest.approx(ref.oddsratio_pooled, rel=1e-10)
    lo, hi = ref.oddsratio_pooled_confint()
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((lo, hi), rel=1e-8)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # statsmodels' I² when Q = 0
@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(0.5, 4), st.integers(5, 60),
                          st.floats(-5, 5), st.floats(0.5, 4), st.integers(5, 60)), min_size=2, max_size=5))
def test_pooled_md_matches_statsmodels_for_any_data(studies):
    from statsmodels.stats.meta_analysis import combine_effects

    rows = []
    for i, s in enumerate(studies):
        rows += _continuous_study(f"s{i}x2020", *s)
    oa = SA.analyse_outcome(_data(_sec_rows(rows)), "length_of_stay_hospital", model="fixed")
    yi = np.array([s[0] - s[3] for s in studies])
    vi = np.array([s[1] ** 2 / s[2] + s[4] ** 2 / s[5] for s in studies])
    ref = combine_effects(yi, vi)                               # inverse-variance common effect
    res = oa.primary.result
    assert res.estimate == pytest.approx(ref.mean_effect_fe, abs=1e-10)
    assert res.se == pytest.approx(ref.sd_eff_w_fe, abs=1e-10)
    assert res.k == len(studies)


# --------------------------------------------------------------------------- claims


def _claims_for(mt, mc):
    sec = _sec_rows(_continuous_study("aaa2020", mt, 1, 40, mc, 1, 40)
                    + _continuous_study("bbb2021", mt, 1, 40, mc, 1, 40))
    report = S.analyse_secondary(_data(sec))
    return report.claims.set_index(["claim_id", "outcome"])


def test_claim_supported_only_when_the_ci_excludes_no_effect_in_the_claimed_direction():
    shorter = _claims_for(5, 10)
    assert shorter.loc[("resource_use", "length_of_stay_hospital"), "outcome_verdict"] == "supported"
    assert shorter.loc[("resource_use", "length_of_stay_hospital"), "claim_verdict"] == "supported"
    longer = _claims_for(10, 5)
    assert longer.loc[("resource_use", "length_of_stay_hospital"), "outcome_verdict"] == "not supported"
    assert longer.loc[("resource_use", "length_of_stay_hospital"), "ci_favours"] == "control"
    same = _claims_for(5, 5)
    assert same.loc[("resource_use", "length_of_stay_hospital"), "claim_verdict"] == "not supported"
    assert same.loc[("inflammatory_cytokines", "il6"), "claim_verdict"] == "insufficient data"


def test_safety_claim_uses_the_harm_margin_on_the_risk_difference():
    report = S.analyse_secondary(SD.load_secondary(DATA_RAW), harm_margin=0.10)
    claims = report.claims.set_index(["claim_id", "outcome"])
    rd = next(a for a in report.analyses["serious_ae"].analyses if a.name == "MH RD, RevMan").result.to_dict()
    expected = "supported" if rd["ci_high"] < 0.10 and rd["ci_low"] <= 0 else "not supported"
    assert claims.loc[("safe", "serious_ae"), "outcome_verdict"] == expected
    strict = C.claims_table(report.analyses, harm_margin=0.001).set_index(["claim_id", "outcome"])
    assert strict.loc[("safe", "serious_ae"), "outcome_verdict"] == ("supported" if rd["ci_high"] < 0.001
                                                                     else "not supported")
    with pytest.raises(ValueError, match="harm_margin"):
        C.claims_table(report.analyses, harm_margin=10)


# --------------------------------------------------------------------------- figures


def test_figures_have_fixed_width_and_are_byte_identical_between_runs(tmp_path):
    from mscmeta.plots import style
    from mscmeta.bundle.io import save_figure
    from mscmeta.review.secondary_figures import outcome_forest_plot as forest_plot
    from mscmeta.review.secondary_figures import overview_plot

    style.use_style()
    report = S.analyse_secondary(SD.load_secondary(FIXTURE_DATA))
    oa = report.analyses["any_ae"]
    digests = []
    for run in (1, 2):
        fig = forest_plot(oa)
        assert fig.get_figwidth() == pytest.approx(style.PAGE_WIDTH)
        save_figure(fig, tmp_path / f"f{run}", close=True)
        digests.append((tmp_path / f"f{run}.svg").read_bytes())
    assert digests[0] == digests[1]
    fig = overview_plot(report)
    assert fig.get_figwidth() == pytest.approx(style.PAGE_WIDTH)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "Descriptive only" in texts and "Length of hospital stay" in texts
    with pytest.raises(ValueError, match="no pooled analysis"):
        forest_plot(report.analyses["il6"])


def test_arm_totals_never_exceed_the_arms_of_studies_csv():
    studies = _read(DATA_RAW / "studies.csv").set_index("study_id")
    for name in FILES:
        df = _read(DATA_RAW / name)
        totals = df[df["statistic"] == "n"]
        for r in totals.itertuples():
            cap = studies.loc[r.study_id, "n_msc" if r.arm == "msc" else "n_control"]
            assert cap != "" and float(r.value) <= float(cap), f"{name}: {r.study_id} {r.outcome} {r.arm} n {r.value} > {cap}"
