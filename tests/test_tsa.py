"""Trial sequential analysis (mscmeta.engine.tsa): the required information size against
published values (RTSA 0.2.2 vignette), the TSA conventions, the verdict, the counts entry
point (pooled by the engine) and the result object."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.group_sequential import spending_boundaries
from mscmeta.engine.tsa import (
    TSAConventions,
    Verdict,
    diversity,
    diversity_of_counts,
    required_information_size,
    trial_sequential_analysis,
    trial_sequential_analysis_from_counts,
)
from mscmeta.engine.validation import DataError

# --- required information size: RTSA vignette "required-sample-size" (RTSA 0.2.2) -----------


def test_ris_rtsa_vignette_fixed_effect_rr09_pc01_power90():
    """ris(outcome = "RR", mc = 0.9, pC = 0.1, alpha = 0.05, beta = 0.1, side = 2): 36136."""
    assert required_information_size(0.1, 0.1, alpha=0.05, power=0.9).patients == 36136


def test_ris_rtsa_vignette_fixed_effect_rr09_pc01_power80():
    """ris(outcome = "RR", mc = 0.9, fixed = FALSE, tau2 = 0.05, pC = 0.1, beta = 0.2):
    fixed-effect required information size 26993."""
    assert required_information_size(0.1, 0.1, alpha=0.05, power=0.8).patients == 26993


def test_ris_rtsa_vignette_diversity_and_inconsistency_adjustment():
    """ris(outcome = "RR", mc = 0.9, pC = 0.2, I2 = 0.2, D2 = 0.3, beta = 0.2):
    fixed 12080, D^2-adjusted 17258, I^2-adjusted 15100 (RTSA rounds the fixed RIS
    up before dividing by 1 - H; unrounded it would give 17257)."""
    fixed = required_information_size(0.2, 0.1, power=0.8)
    assert fixed.patients == fixed.unadjusted == 12080
    assert required_information_size(0.2, 0.1, power=0.8, diversity=0.3).patients == 17258
    assert required_information_size(0.2, 0.1, power=0.8, inconsistency=0.2).patients == 15100


def test_ris_is_the_tsa_manual_formula():
    """RIS = 4 (z_{1-a/2} + z_{1-b})^2 P(1-P) / delta^2 with P the mean proportion."""
    ris = required_information_size(0.3, 0.2, alpha=0.05, power=0.8)
    p_c, p_i = 0.3, 0.24
    p = (p_c + p_i) / 2
    expected = 4 * (1.959963984540054 + 0.8416212335729143) ** 2 * p * (1 - p) / (p_c - p_i) ** 2
    assert ris.unadjusted_exact == pytest.approx(expected, rel=1e-12)
    assert ris.intervention_proportion == pytest.approx(0.24)
    assert int(ris) == ris.patients


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"power": 1.5}, "power must be in (0, 1), got 1.5"),
        ({"alpha": 0.0}, "alpha must be in (0, 1), got 0.0"),
        ({"diversity": 1.0}, "diversity must be in [0, 1), got 1.0"),
        ({"diversity": 0.2, "inconsistency": 0.1}, "give diversity or inconsistency, not both"),
        ({"sides": 3}, "sides must be one of (1, 2), got 3"),
    ],
)
def test_ris_errors_name_parameter_and_value(kwargs, message):
    with pytest.raises(DataError) as error:
        required_information_size(0.2, 0.2, **kwargs)
    assert message in str(error.value)


def test_ris_rejects_bad_proportion():
    with pytest.raises(DataError, match=r"control_proportion must be in \(0, 1\), got 1.2"):
        required_information_size(1.2, 0.2)


# --- TSA boundaries reproduce published group-sequential boundaries ------------------------


def test_tsa_boundaries_at_equally_spaced_fractions_match_ldbounds_k5():
    """Cumulative n = 200..1000 with RIS 1000 gives fractions 0.2..1.0: the monitoring
    boundaries are the ldbounds K = 5 table (tolerance as in test_group_sequential)."""
    result = trial_sequential_analysis([0.1] * 5, [200, 400, 600, 800, 1000], 1000)
    np.testing.assert_allclose(result.upper, [4.8769, 3.3569, 2.6803, 2.2898, 2.0310], atol=1.5e-4)
    np.testing.assert_allclose(result.lower, -result.upper)
    np.testing.assert_allclose(result.alpha_spent[-1], 0.05, atol=1e-12)
    assert result.boundary_at_ris == pytest.approx(result.upper[-1])


# --- conventions -----------------------------------------------------------------------------


def test_look_conventions_first_fraction_increment_and_final():
    fractions = np.array([0.03, 0.05, 0.051, 0.2, 0.205, 0.5, 1.02, 1.3])
    result = trial_sequential_analysis(np.zeros(8), fractions * 1000, 1000, futility=False)
    assert result.analysed.tolist() == [False, False, True, True, False, True, True, False]
    expected = spending_boundaries([0.051, 0.2, 0.5, 1.0], 0.05).upper  # final analysed at t = 1
    np.testing.assert_allclose(result.upper[result.analysed], expected, atol=1e-12)
    assert np.isnan(result.upper[~result.analysed]).all()
    # alpha spent is carried forward over non-analysed looks and is complete at the RIS
    assert result.alpha_spent[0] == 0.0 and result.alpha_spent[4] == result.alpha_spent[3]
    assert result.alpha_spent[-1] == pytest.approx(0.05)


def test_conventions_can_be_relaxed():
    relaxed = TSAConventions(min_first_fraction=0.0, min_increment=0.0)
    result = trial_sequential_analysis(np.zeros(3), [30, 32, 500], 1000, conventions=relaxed)
    assert result.analysed.all()


def test_conventions_validate():
    with pytest.raises(DataError, match="min_increment must be in"):
        TSAConventions(min_increment=1.5)


# --- verdict -----------------------------------------------------------------------------------

N5 = [200, 400, 600, 800, 1000]


@pytest.mark.parametrize(
    ("z", "benefit_side", "verdict", "look"),
    [
        ([-1.0, -3.5, -1.0, -1.0, -1.0], "lower", Verdict.BENEFIT, 1),
        ([-1.0, 3.5, 0.0, 0.0, 0.0], "lower", Verdict.HARM, 1),
        ([1.0, 3.5, 0.0, 0.0, 0.0], "upper", Verdict.BENEFIT, 1),
        ([-1.0, -1.0, -2.0, -2.1, -2.2], "lower", Verdict.BENEFIT, 4),
        ([-1.0, -1.5, -1.9, -2.0, -1.9], "lower", Verdict.RIS_REACHED, 4),
    ],
)
def test_verdict_monitoring_and_ris(z, benefit_side, verdict, look):
    result = trial_sequential_analysis(z, N5, 1000, benefit_side=benefit_side, futility=False)
    assert result.verdict is verdict and result.verdict_look == look


def test_verdict_futility_when_z_enters_the_inner_wedge():
    result = trial_sequential_analysis([-1.0, -0.5, -0.2, -1.0, -1.0], N5, 1000, power=0.9)
    assert np.isnan(result.futility_upper[:2]).all()  # wedge not yet open at t = 0.2, 0.4
    assert result.futility_upper[2] > 0.2  # |Z| = 0.2 at t = 0.6 lies inside
    assert result.verdict is Verdict.FUTILITY and result.verdict_look == 2
    np.testing.assert_allclose(result.futility_lower, -result.futility_upper)


def test_verdict_inconclusive_reports_fraction_reached():
    result = trial_sequential_analysis([-1.0, -1.5], [100, 300], 1000)
    assert result.verdict is Verdict.INCONCLUSIVE and result.verdict_look is None
    assert result.information_fraction_reached == pytest.approx(0.3)
    assert "inconclusive" in str(result) and "0.300" in str(result)


def test_nan_z_cannot_cross():
    result = trial_sequential_analysis([np.nan, -9.0], [300, 600], 1000)
    assert result.verdict is Verdict.BENEFIT and result.verdict_look == 1


# --- TSA-adjusted confidence interval ------------------------------------------------------


def test_adjusted_ci_uses_boundary_of_last_analysed_look():
    result = trial_sequential_analysis(
        [-1.0, -1.5], [300, 500], 1000, last_estimate=np.log(0.7), last_standard_error=0.2)
    bound = spending_boundaries([0.3, 0.5, 1.0], 0.05).upper[1]
    assert result.estimate == pytest.approx(0.7)
    np.testing.assert_allclose(result.adjusted_ci, np.exp(np.log(0.7) + np.array([-1, 1]) * bound * 0.2), rtol=1e-12)


def test_adjusted_ci_single_look_boundary_when_nothing_analysed():
    result = trial_sequential_analysis(
        [-1.0], [30], 1000, last_estimate=0.0, last_standard_error=1.0, ratio_measure=False)
    bound = spending_boundaries([0.03], 0.05).upper[0]  # first look at t = 0.03
    np.testing.assert_allclose(result.adjusted_ci, (-bound, bound), rtol=1e-12)


# --- counts entry point -------------------------------------------------------------------

COUNTS = pd.DataFrame({"study": ["a", "b", "c", "d"], "events_t": [2, 0, 5, 9], "n_t": [30, 40, 50, 200],
                       "events_c": [5, 0, 7, 15], "n_c": [30, 40, 50, 200]})


def test_from_counts_equals_manual_pipeline():
    """The counts entry point = MH OR (RevMan zero cells) pooled cumulatively by the engine,
    Z = log OR / SE, patients of informative trials, control risk of informative trials."""
    result = trial_sequential_analysis_from_counts(COUNTS, relative_risk_reduction=0.25)
    kept = COUNTS.iloc[[0, 2, 3]].reset_index(drop=True)  # trial b has no events: dropped (RTSA)
    z = []
    for k in range(3):
        fit = meta_binary(kept.iloc[: k + 1], measure="OR", method="MH", zero_cell="revman")
        z.append(fit.estimate / fit.se)
    ris = required_information_size(kept["events_c"].sum() / kept["n_c"].sum(), 0.25)
    manual = trial_sequential_analysis(z, np.cumsum(kept["n_t"] + kept["n_c"]), ris, labels=["a", "c", "d"])
    assert result.labels == ("a", "c", "d")
    np.testing.assert_allclose(result.z, manual.z, rtol=1e-14)
    np.testing.assert_allclose(result.upper, manual.upper, equal_nan=True)
    assert result.required_information_size == ris.patients


def test_from_counts_can_keep_double_zero_patients():
    kept = trial_sequential_analysis_from_counts(COUNTS, relative_risk_reduction=0.25, exclude_double_zero=False)
    assert kept.cumulative_n.tolist() == [60, 140, 240, 640]
    assert kept.z[1] == pytest.approx(kept.z[0])  # the double-zero trial adds no information on the OR


def test_from_counts_errors_name_file_study_and_column():
    bad = pd.DataFrame({"study": ["x"], "events_t": [5], "n_t": [3], "events_c": [1], "n_c": [3]})
    with pytest.raises(DataError, match=r"trials.csv: study 'x' \(row 1\), column 'events_t'"):
        trial_sequential_analysis_from_counts(bad, relative_risk_reduction=0.2, source="trials.csv")
    none = pd.DataFrame({"study": ["x"], "events_t": [0], "n_t": [3], "events_c": [0], "n_c": [3]})
    with pytest.raises(DataError, match="no trial has an event in either arm"):
        trial_sequential_analysis_from_counts(none, relative_risk_reduction=0.2)


def test_diversity_definition_and_errors():
    """D^2 = (V_R - V_F) / V_R (Wetterslev et al. 2009)."""
    assert diversity(0.01, 0.04) == pytest.approx(0.75)
    with pytest.raises(DataError, match="variance_random must be finite and >= variance_fixed"):
        diversity(0.04, 0.01)
    with pytest.raises(DataError, match="variance_fixed must be a finite positive number"):
        diversity(0.0, 0.01)


def test_diversity_of_counts_uses_iv_fixed_and_dl_random_variances():
    fixed = meta_binary(COUNTS, measure="OR", method="IV", model="fixed")
    random = meta_binary(COUNTS, measure="OR", method="IV", model="random", tau2_method="DL")
    expected = (random.se**2 - fixed.se**2) / random.se**2
    assert diversity_of_counts(COUNTS) == pytest.approx(max(expected, 0.0), abs=1e-15)
    homogeneous = pd.DataFrame({"study": ["a", "b"], "events_t": [5, 10], "n_t": [50, 100],
                                "events_c": [10, 20], "n_c": [50, 100]})
    assert diversity_of_counts(homogeneous) == pytest.approx(0.0, abs=1e-12)


# --- result object -----------------------------------------------------------------------------


def test_result_serialises_and_tabulates():
    result = trial_sequential_analysis_from_counts(COUNTS, relative_risk_reduction=0.25, diversity=0.2)
    payload = result.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["verdict"] == result.verdict.value
    assert payload["ris"]["adjustment_measure"] == "D2"
    frame = result.boundaries_frame()
    assert list(frame.columns) == ["label", "cumulative_n", "information_fraction", "z", "analysed",
                                   "upper", "lower", "futility_upper", "futility_lower", "alpha_spent"]
    assert len(frame) == 3
    text = str(result)
    assert "Verdict:" in text and "TSA-adjusted 95% CI" in text and "D2-adjusted" in text
    with pytest.raises(AttributeError):
        result.verdict = Verdict.HARM  # frozen


def test_dense_curve_is_exact_at_looks_and_spans_to_max_fraction():
    result = trial_sequential_analysis([-1, -1, -1], [200, 500, 1300], 1000, power=0.9)
    curve = result.curve
    assert curve.information_fraction[0] == pytest.approx(0.05)
    assert curve.information_fraction[-1] == pytest.approx(1.3)
    for t, bound in zip(result.information_fraction[:2], result.upper[:2], strict=True):
        assert np.interp(t, curve.information_fraction, curve.upper) == pytest.approx(bound, abs=1e-12)
    beyond = curve.information_fraction > 1
    np.testing.assert_allclose(curve.upper[beyond], result.boundary_at_ris)
    assert np.isnan(curve.futility_upper[beyond]).all()
    at_one = np.isclose(curve.information_fraction, 1.0)
    assert curve.futility_upper[at_one][0] == pytest.approx(result.boundary_at_ris)
    np.testing.assert_allclose(curve.lower, -curve.upper)


def test_full_tsa_with_twenty_looks_is_fast():
    n = np.linspace(60, 1200, 20)
    z = -np.linspace(0.5, 2.5, 20)
    start = time.perf_counter()
    trial_sequential_analysis(z, n, 1000, power=0.9, last_estimate=-0.3, last_standard_error=0.12)
    assert time.perf_counter() - start < 3.0  # ~0.15 s alone; generous for a shared machine
