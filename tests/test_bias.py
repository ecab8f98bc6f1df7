"""Small-study-effect tests, trim-and-fill and funnel contours against published values.

Sources (repository github.com/wviechtb/metafor unless stated):

* ``dat.egger2001`` counts (16 magnesium trials; Egger, Davey Smith & Altman 2001, Table
  18.2) as printed in ``docs/reference/dat.egger2001.html``; log odds ratios with metafor's
  ``escalc`` default (0.5 added to all cells of a zero-cell study).
* ``dat.bcg`` counts (13 BCG trials) as printed in ``docs/reference/escalc.html``; log
  risk ratios.
* Egger/regtest values: ``docs/reference/regtest.html`` (4 decimals) and
  ``tests/testthat/test_misc_pub_bias.r``; Begg/ranktest: ``docs/reference/ranktest.html``
  and ``tests/testthat/test_misc_pub_bias.r``; trim-and-fill: ``docs/reference/trimfill.html``.
* Peters and Harbord tests: no published worked example was found in R meta's
  documentation (its repository has no tests) or in the Stata ``metabias`` help. The
  reference values are R meta 8.5.0 ``metabias(method.bias="Peters"/"Harbord")`` output
  stored with its generating R script in github.com/ZhaoboDing/PyMetaAnalysis
  ``tests/reference/{peters,harbord}_small_study_effects_meta.json`` (input
  ``peters_small_study_effects_input.csv``), and each test is also checked against an
  independent route (statsmodels WLS on the published formula).
* Begg with ties, trim-and-fill with forced sides: metafor 5.0.1 output stored with its
  R script in the same repository (``begg_ranktest_metafor.json``,
  ``trimfill_metafor.json``).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from mscmeta.engine.bias import (
    asymmetry_tests,
    RECOMMENDED_MIN_STUDIES,
    begg_test,
    egger_test,
    funnel_contours,
    harbord_test,
    peters_test,
    small_study_caveat,
    trim_and_fill,
)
from mscmeta.engine.validation import DataError

PRINTED4 = 5.0001e-5  # half a unit in the 4th decimal of metafor's printed output

# dat.egger2001 (docs/reference/dat.egger2001.html): ai, n1i, ci, n2i; trial 16 is ISIS-4
EGGER_AI = [1, 9, 2, 1, 10, 1, 1, 0, 6, 1, 2, 5, 4, 90, 4, 2216]
EGGER_N1 = [40, 135, 200, 48, 150, 59, 25, 22, 76, 27, 89, 23, 130, 1159, 107, 29011]
EGGER_CI = [2, 23, 7, 1, 8, 9, 3, 1, 11, 7, 12, 13, 8, 118, 17, 2103]
EGGER_N2 = [36, 135, 200, 46, 148, 56, 23, 21, 75, 27, 80, 33, 122, 1157, 108, 29039]

# dat.bcg (docs/reference/escalc.html)
TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])

# PyMetaAnalysis tests/reference/peters_small_study_effects_input.csv (12 studies, 2 with a zero cell)
PS_ET = [12, 5, 20, 7, 3, 9, 14, 6, 11, 8, 0, 4]
PS_NT = [100, 80, 120, 90, 55, 70, 95, 60, 88, 72, 50, 65]
PS_EC = [18, 9, 15, 10, 7, 12, 16, 9, 14, 11, 3, 0]
PS_NC = [110, 75, 130, 95, 60, 74, 100, 64, 92, 76, 55, 70]


def log_or_escalc(ai, n1, ci, n2):
    """metafor escalc(measure="OR") default: add 1/2 to all cells of a study with a zero cell."""
    ai, n1, ci, n2 = (np.asarray(x, dtype=float) for x in (ai, n1, ci, n2))
    bi, di = n1 - ai, n2 - ci
    add = np.where((ai == 0) | (bi == 0) | (ci == 0) | (di == 0), 0.5, 0.0)
    a, b, c, d = ai + add, bi + add, ci + add, di + add
    return np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d


@pytest.fixture(scope="module")
def magnesium():
    yi, vi = log_or_escalc(EGGER_AI, EGGER_N1, EGGER_CI, EGGER_N2)
    ni = np.asarray(EGGER_N1) + np.asarray(EGGER_N2)
    return yi, vi, ni


@pytest.fixture(scope="module")
def bcg_rr():
    yi = np.log(TPOS / (TPOS + TNEG)) - np.log(CPOS / (CPOS + CNEG))
    vi = 1 / TPOS - 1 / (TPOS + TNEG) + 1 / CPOS - 1 / (CPOS + CNEG)
    return yi, vi


# --------------------------------------------------------------------------- Egger / regtest


def test_escalc_log_or_of_magnesium_data(magnesium):
    yi = magnesium[0][:15]
    # docs/reference/regtest.html prints dat$yi (trials 1-15) to 8 decimals
    ref = [-0.83034830, -1.05605267, -1.27833981, -0.04348511, 0.22314355, -2.40751999, -1.28093385,
           -1.19170271, -0.69574796, -2.20827441, -2.03815988, -0.85015093, -0.79323064, -0.29933987, -1.57078846]
    assert yi == pytest.approx(ref, abs=5e-9)


def test_classic_egger_test(magnesium):
    yi, vi, _ = (x[:15] for x in magnesium)
    res = egger_test(yi, vi, model="lm")
    # regtest.html: regtest(res, model="lm"): t = -3.1783, df = 13, p = 0.0073, b = -0.1512 (CI: -0.5130, 0.2106)
    assert res.statistic == pytest.approx(-3.1783, abs=PRINTED4)
    assert res.statistic_name == "t" and res.df == 13
    assert res.p_value == pytest.approx(0.0073, abs=PRINTED4)
    assert (res.limit_estimate, res.limit_ci_low, res.limit_ci_high) == pytest.approx((-0.1512, -0.5130, 0.2106), abs=PRINTED4)
    assert res.k == 15 and res.caveat is None


def test_mixed_effects_egger_test_is_metafor_default(magnesium):
    yi, vi, _ = (x[:15] for x in magnesium)
    res = egger_test(yi, vi, model="rma")
    # regtest.html: regtest(res) (REML): z = -2.8062, p = 0.0050, b = -0.1639 (CI: -0.5681, 0.2402)
    assert res.statistic == pytest.approx(-2.8062, abs=PRINTED4)
    assert res.statistic_name == "z" and res.df is None
    assert res.p_value == pytest.approx(0.0050, abs=PRINTED4)
    assert (res.limit_estimate, res.limit_ci_low, res.limit_ci_high) == pytest.approx((-0.1639, -0.5681, 0.2402), abs=PRINTED4)


@pytest.mark.parametrize(("model", "predictor", "stat", "p", "limit"), [
    ("rma", "ni", 1.7938, 0.0728, None),                                     # regtest.html
    ("lm", "ni", 2.8955, 0.0125, None),                                      # regtest.html
    ("lm", "ninv", -2.3230, 0.0370, (-0.3731, -0.6872, -0.0591)),             # regtest.html
    ("rma", "ninv", -1.4313, 0.1524, (-0.5636, -1.0712, -0.0559)),            # regtest.html
])
def test_regtest_sample_size_predictors(magnesium, model, predictor, stat, p, limit):
    yi, vi, ni = (x[:15] for x in magnesium)
    res = egger_test(yi, vi, model=model, predictor=predictor, ni=ni)
    assert res.statistic == pytest.approx(stat, abs=PRINTED4)
    assert res.p_value == pytest.approx(p, abs=PRINTED4)
    if limit is None:
        assert np.isnan(res.limit_estimate)
    else:
        assert (res.limit_estimate, res.limit_ci_low, res.limit_ci_high) == pytest.approx(limit, abs=PRINTED4)


def test_regtest_all_16_trials(magnesium):
    yi, vi, ni = magnesium
    # tests/testthat/test_misc_pub_bias.r: regtest(res) zval -4.6686; regtest(res, model="lm", predictor="sqrtninv") -5.6083
    assert egger_test(yi, vi, model="rma").statistic == pytest.approx(-4.6686, abs=PRINTED4)
    assert egger_test(yi, vi, model="lm", predictor="sqrtninv", ni=ni).statistic == pytest.approx(-5.6083, abs=PRINTED4)


def test_egger_lm_equals_standard_normal_deviate_regression(magnesium):
    """Egger et al. (1997): regress yi/sei on 1/sei; the intercept test equals the WLS slope test."""
    yi, vi, _ = (x[:15] for x in magnesium)
    sei = np.sqrt(vi)
    ols = sm.OLS(yi / sei, sm.add_constant(1 / sei)).fit()
    res = egger_test(yi, vi)
    assert res.statistic == pytest.approx(ols.tvalues[0], rel=1e-10)
    assert res.limit_estimate == pytest.approx(ols.params[1], rel=1e-10)


# --------------------------------------------------------------------------- Begg / ranktest


def test_begg_rank_test(magnesium, bcg_rr):
    yi, vi, _ = magnesium
    res = begg_test(yi, vi)
    # tests/testthat/test_misc_pub_bias.r: ranktest(res) on all 16 trials: tau 0.15, p 0.4503
    assert res.coefficient == pytest.approx(0.15, abs=1e-12)
    assert res.p_value == pytest.approx(0.4503, abs=PRINTED4)
    res = begg_test(*bcg_rr)
    # docs/reference/ranktest.html: Kendall's tau = 0.0256, p = 0.9524
    assert res.coefficient == pytest.approx(0.0256, abs=PRINTED4)
    assert res.p_value == pytest.approx(0.9524, abs=PRINTED4)
    assert "exact" in res.method


def test_begg_exact_and_tied_against_metafor_501():
    effect = np.array([0.340, 0.286, 0.460, 0.232, 0.426, 0.574, 0.415, 0.890, 0.300, 0.870, 0.098, 1.240])
    variance = np.array([0.0100, 0.0144, 0.0225, 0.0324, 0.0484, 0.0729, 0.1089, 0.1600, 0.2500, 0.3844, 0.5776, 0.8100])
    res = begg_test(effect, variance)
    # PyMetaAnalysis begg_ranktest_metafor.json (metafor 5.0.1 ranktest, exact): tau 1/3, p 0.15259045898802848
    assert res.coefficient == pytest.approx(1 / 3, rel=1e-12)
    assert res.p_value == pytest.approx(0.15259045898802848, rel=1e-9)
    variance[1] = variance[0]
    res = begg_test(effect, variance)
    # same file, tied_asymptotic: tau 0.35115526951766413, z 1.5808898122339823, p 0.113903234135382
    assert res.coefficient == pytest.approx(0.35115526951766413, rel=1e-9)
    assert res.statistic == pytest.approx(1.5808898122339823, rel=1e-9)
    assert res.p_value == pytest.approx(0.113903234135382, rel=1e-9)
    assert "ties" in res.method


def test_begg_stays_exact_above_100_studies():
    """metafor ranktest always asks cor.test for the exact p-value (no switch at k = 100).

    R 4.2.2, metafor 3.8.1: ``i <- 1:150; vi <- 0.02 + 0.003*i + 0.0007*((i*37) %% 11);
    yi <- 0.2 + 0.5*vi + 0.25*sin(1.3*i); ranktest(yi, vi)`` gives tau 0.141834451901566,
    p 0.00989034932228749 (exact); the normal approximation
    (``cor.test(..., exact=FALSE)``) would give 0.0100069045691094.
    """
    i = np.arange(1, 151)
    vi = 0.02 + 0.003 * i + 0.0007 * ((i * 37) % 11)
    yi = 0.2 + 0.5 * vi + 0.25 * np.sin(1.3 * i)
    res = begg_test(yi, vi)
    assert res.coefficient == pytest.approx(0.141834451901566, rel=1e-12)
    assert res.p_value == pytest.approx(0.00989034932228749, rel=1e-9)
    assert "exact" in res.method


# --------------------------------------------------------------------------- Peters and Harbord


def test_peters_test_matches_r_meta():
    res = peters_test(PS_ET, PS_NT, PS_EC, PS_NC)
    # PyMetaAnalysis peters_small_study_effects_meta.json (R meta 8.5.0 metabias(method.bias="Peters"))
    assert res.coefficient == pytest.approx(-166.01752732844952, rel=1e-9)
    assert res.se == pytest.approx(107.49182254701471, rel=1e-9)
    assert res.statistic == pytest.approx(-1.5444665779653786, rel=1e-9)
    assert res.df == 10
    assert res.p_value == pytest.approx(0.15350801132981251, rel=1e-9)
    assert (res.limit_estimate, res.limit_ci_low, res.limit_ci_high) == pytest.approx(
        (0.77965187369774214, -0.65962872674847051, 2.2189324741439549), rel=1e-9)
    assert res.k == 12 and res.caveat is None  # 12 >= 10 studies: no Cochrane caveat


def test_peters_test_independent_route():
    """Peters et al. (2006): WLS of log OR on 1/N, weights 1/(1/(a+c) + 1/(b+d)), via statsmodels."""
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (PS_ET, PS_NT, PS_EC, PS_NC))
    y, _ = log_or_escalc(a, n1, c, n2)
    w = 1 / (1 / (a + c) + 1 / (n1 - a + n2 - c))
    fit = sm.WLS(y, sm.add_constant(1 / (n1 + n2)), weights=w).fit()
    res = peters_test(PS_ET, PS_NT, PS_EC, PS_NC)
    assert res.statistic == pytest.approx(fit.tvalues[1], rel=1e-10)
    assert res.p_value == pytest.approx(fit.pvalues[1], rel=1e-10)


def test_harbord_test_matches_r_meta():
    res = harbord_test(PS_ET, PS_NT, PS_EC, PS_NC)
    # PyMetaAnalysis harbord_small_study_effects_meta.json (R meta 8.5.0 metabias(method.bias="Harbord"))
    assert res.coefficient == pytest.approx(-0.63420980739069088, rel=1e-9)
    assert res.se == pytest.approx(1.1312369085805871, rel=1e-9)
    assert res.statistic == pytest.approx(-0.56063394199758021, rel=1e-9)
    assert res.df == 10
    assert res.p_value == pytest.approx(0.58738743443011354, rel=1e-9)
    assert (res.limit_estimate, res.limit_ci_low, res.limit_ci_high) == pytest.approx(
        (0.11204544678315458, -1.1371367692765348, 1.3612276628428441), rel=1e-9)


def test_harbord_test_independent_route():
    """Harbord et al. (2006): OLS of Z/sqrt(V) on sqrt(V), Z = a - (a+c) n1/N, V hypergeometric variance."""
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (PS_ET, PS_NT, PS_EC, PS_NC))
    N, m = n1 + n2, a + c
    z = a - m * n1 / N
    v = n1 * n2 * m * (N - m) / (N**2 * (N - 1))
    fit = sm.OLS(z / np.sqrt(v), sm.add_constant(np.sqrt(v))).fit()
    res = harbord_test(PS_ET, PS_NT, PS_EC, PS_NC)
    assert res.statistic == pytest.approx(fit.tvalues[0], rel=1e-10)
    assert res.limit_estimate == pytest.approx(fit.params[1], rel=1e-10)


def test_peters_and_harbord_drop_double_zero_studies():
    et, nt, ec, nc = [*PS_ET, 0], [*PS_NT, 40], [*PS_EC, 0], [*PS_NC, 40]
    assert peters_test(et, nt, ec, nc).statistic == pytest.approx(peters_test(PS_ET, PS_NT, PS_EC, PS_NC).statistic)
    assert harbord_test(et, nt, ec, nc).k == 12


def test_count_validation():
    with pytest.raises(DataError, match="events greater than the arm total"):
        peters_test([5, 1, 2], [4, 10, 10], [1, 2, 3], [10, 10, 10])
    with pytest.raises(DataError, match="non-negative integer"):
        harbord_test([1.5, 1, 2], [10, 10, 10], [1, 2, 3], [10, 10, 10])


# --------------------------------------------------------------------------- caveats and refusals


def test_caveat_below_ten_studies(magnesium):
    yi, vi, _ = magnesium
    assert egger_test(yi[:9], vi[:9]).caveat is not None
    assert "13.3.5.4" in small_study_caveat(9)
    assert egger_test(yi[:RECOMMENDED_MIN_STUDIES], vi[:RECOMMENDED_MIN_STUDIES]).caveat is None
    assert begg_test(yi[:5], vi[:5]).caveat.startswith("Only k = 5 studies")
    assert harbord_test(PS_ET[:6], PS_NT[:6], PS_EC[:6], PS_NC[:6]).caveat is not None
    assert harbord_test(PS_ET, PS_NT, PS_EC, PS_NC).caveat is None


@pytest.mark.parametrize("func", [egger_test, begg_test, trim_and_fill])
def test_refuse_fewer_than_three_studies(func):
    with pytest.raises(DataError, match="at least 3 studies"):
        func([0.1, 0.3], [0.01, 0.02])


def test_refusals_with_reasons(magnesium):
    with pytest.raises(DataError, match="same standard error"):
        egger_test([0.1, 0.2, 0.5], [0.04, 0.04, 0.04])
    with pytest.raises(DataError, match="needs the sample sizes"):
        egger_test(magnesium[0], magnesium[1], predictor="ninv")
    with pytest.raises(DataError, match="at least 3 studies with events"):
        peters_test([0, 0, 1], [10, 10, 10], [0, 0, 2], [10, 10, 10])
    with pytest.raises(DataError, match="sampling variance must be > 0"):
        begg_test([0.1, 0.2, 0.3], [0.1, 0.0, 0.2])
    with pytest.raises(DataError, match="unknown model"):
        egger_test(magnesium[0], magnesium[1], model="glm")


# --------------------------------------------------------------------------- trim and fill


def test_trim_and_fill_fixed_effect_l0(bcg_rr):
    taf = trim_and_fill(*bcg_rr, model="fixed")
    # trimfill.html: "Estimated number of missing studies on the right side: 4 (SE = 2.3853)";
    # Equal-Effects Model (k = 17): I^2 93.91%, Q(16) = 262.7316, estimate -0.2910 (se 0.0383), CI -0.3660 to -0.2160
    assert (taf.k0, taf.side) == (4, "right")
    assert taf.se_k0 == pytest.approx(2.3853, abs=PRINTED4)
    assert taf.fit.k == 17 and taf.fit.Q_df == 16
    assert taf.fit.Q == pytest.approx(262.7316, abs=PRINTED4)
    assert taf.fit.I2 == pytest.approx(93.91, abs=0.005)
    assert (taf.estimate, taf.fit.se, taf.ci_low, taf.ci_high) == pytest.approx((-0.2910, 0.0383, -0.3660, -0.2160), abs=PRINTED4)
    # trimfill.html prints the filled data (8 decimals): the four imputed studies
    filled = taf.filled[taf.filled["filled"]]
    assert filled["yi"].to_numpy() == pytest.approx([0.78929282, 0.85949921, 1.00333667, 1.03884624], abs=5e-9)
    assert filled["vi"].to_numpy() == pytest.approx([0.073024794, 0.020010032, 0.194581121, 0.223017248], abs=5e-10)
    assert filled["study"].tolist() == ["Filled 1", "Filled 2", "Filled 3", "Filled 4"]
    assert taf.summary_frame().loc[0, "k_filled"] == 17


def test_trim_and_fill_r0_and_random_effects(bcg_rr):
    taf = trim_and_fill(*bcg_rr, estimator="R0")
    # trimfill.html: R0: 4 missing (SE = 3.1623), test of H0 no missing studies p-val = 0.0312
    assert taf.k0 == 4 and taf.se_k0 == pytest.approx(3.1623, abs=PRINTED4)
    assert taf.p_k0 == pytest.approx(0.0312, abs=PRINTED4)
    taf = trim_and_fill(*bcg_rr, model="random", tau2_method="REML")
    # trimfill.html: random effects: 1 missing on the right (SE = 2.4528); k = 14, tau^2 0.3313,
    # Q(13) = 154.6750, estimate -0.6571 (se 0.1785), CI -1.0070 to -0.3072
    assert (taf.k0, taf.side, taf.fit.k) == (1, "right", 14)
    assert taf.se_k0 == pytest.approx(2.4528, abs=PRINTED4)
    assert taf.fit.tau2 == pytest.approx(0.3313, abs=PRINTED4)
    assert taf.fit.Q == pytest.approx(154.6750, abs=PRINTED4)
    assert (taf.estimate, taf.fit.se, taf.ci_low, taf.ci_high) == pytest.approx((-0.6571, 0.1785, -1.0070, -0.3072), abs=PRINTED4)


@pytest.mark.parametrize(("model", "estimator", "side", "k0", "estimate", "se_k0", "p_k0"), [
    # PyMetaAnalysis trimfill_metafor.json (metafor 5.0.1 trimfill with side forced)
    ("fixed", "L0", "left", 0, 0.55265117089388649, 0.94966678859284537, None),
    ("fixed", "L0", "right", 3, 0.63859591089840628, 2.1289427257484017, None),
    ("fixed", "R0", "left", 0, 0.55265117089388649, 1.4142135623730951, 0.5),
    ("random", "L0", "left", 0, 0.41696223548253103, 1.345803729628984, None),
    ("random", "L0", "right", 2, 0.48180483879059888, 2.2161014722416232, None),
    ("random", "R0", "left", 1, 0.32487949270365235, 2.0, 0.25),
])
def test_trim_and_fill_forced_side_metafor_501(model, estimator, side, k0, estimate, se_k0, p_k0):
    yi = [0.10, 0.15, 0.18, 0.22, 0.24, 0.29, 0.33, 0.37, 0.95, 1.15]
    vi = [0.04, 0.035, 0.03, 0.028, 0.025, 0.022, 0.02, 0.018, 0.012, 0.01]
    taf = trim_and_fill(yi, vi, estimator=estimator, side=side, model=model, tau2_method="REML")
    assert taf.k0 == k0
    assert taf.estimate == pytest.approx(estimate, abs=1e-6)  # REML tolerance; metafor used threshold 1e-10
    assert taf.se_k0 == pytest.approx(se_k0, rel=1e-10)
    if p_k0 is None:
        assert np.isnan(taf.p_k0)
    else:
        assert taf.p_k0 == pytest.approx(p_k0)


def test_trim_and_fill_se_k0_is_nan_when_its_variance_is_negative():
    """metafor reports se.k0 = NaN (sqrt of a negative variance), not 0.

    R 4.2.2, metafor 3.8.1: ``trimfill(rma(yi, vi, method="EE"), estimator="L0", side="right")``
    with the data below gives k0 0, se.k0 NaN, estimate 0.309396108478677; ``side="left"``
    gives k0 4, se.k0 1.69298009989949.
    """
    yi = [0.10, 0.25, 0.32, 0.41, 0.55, 0.70, 0.95, 1.30]
    vi = [0.010, 0.020, 0.030, 0.045, 0.060, 0.080, 0.110, 0.150]
    right = trim_and_fill(yi, vi, estimator="L0", side="right")
    assert right.k0 == 0 and np.isnan(right.se_k0)
    assert right.estimate == pytest.approx(0.309396108478677, rel=1e-12)
    left = trim_and_fill(yi, vi, estimator="L0", side="left")
    assert left.k0 == 4 and left.se_k0 == pytest.approx(1.69298009989949, rel=1e-12)


def test_trim_and_fill_measure_and_caveat(bcg_rr):
    yi, vi = bcg_rr
    taf = trim_and_fill(yi[:8], vi[:8], measure="RR")
    assert taf.fit.is_ratio() and taf.caveat is not None
    with pytest.raises(DataError, match="unknown estimator"):
        trim_and_fill(yi, vi, estimator="L1")


# --------------------------------------------------------------------------- funnel contours


def test_funnel_contours(bcg_rr):
    yi, vi = bcg_rr
    fc = funnel_contours(yi, vi, estimate=-0.4303, studies=[f"s{i}" for i in range(13)])
    assert fc.levels == (0.01, 0.05, 0.10)
    # standard normal quantiles z_{1-p/2} (e.g. Peters et al. 2008): 2.5758, 1.9600, 1.6449
    assert fc.z == pytest.approx([2.575829, 1.959964, 1.644854], abs=1e-6)
    se_max = float(np.sqrt(vi).max())
    assert fc.se_max == pytest.approx(se_max)
    bottom = fc.contours[fc.contours["se"] == fc.contours["se"].max()]
    for row in bottom.itertuples(index=False):
        z = {0.01: 2.575829, 0.05: 1.959964, 0.10: 1.644854}[row.p_level]
        assert (row.low, row.high) == pytest.approx((-z * se_max, z * se_max), abs=1e-5)
    last = fc.pseudo_ci.iloc[-1]
    assert (last["low"], last["high"]) == pytest.approx((-0.4303 - 1.959964 * se_max, -0.4303 + 1.959964 * se_max), abs=1e-5)
    assert fc.points["se"].to_numpy() == pytest.approx(np.sqrt(vi))


# --------------------------------------------------------------------------- all tests of a result


def test_asymmetry_tests_of_a_binary_or_result():
    import pandas as pd

    from mscmeta.engine.binary import meta_binary

    data = pd.DataFrame({"study": [f"P{i:02d}" for i in range(1, 13)], "events_t": PS_ET, "n_t": PS_NT,
                         "events_c": PS_EC, "n_c": PS_NC})
    table = asymmetry_tests(meta_binary(data, measure="OR", method="MH"))
    assert table["test"].tolist() == ["Egger", "Egger (mixed-effects)", "Begg", "Peters", "Harbord"]
    # the same numbers as the single tests (R meta 8.5.0 values are checked above)
    assert table.loc[3, "statistic"] == pytest.approx(-1.5444665779653786, rel=1e-9)
    assert table.loc[4, "statistic"] == pytest.approx(-0.56063394199758021, rel=1e-9)
    yi, vi = log_or_escalc(PS_ET, PS_NT, PS_EC, PS_NC)  # RevMan/escalc 0.5 correction of the two zero-cell trials
    assert table.loc[0, "statistic"] == pytest.approx(egger_test(yi, vi).statistic, rel=1e-12)
    assert (table["note"] == "").all()
    rr = asymmetry_tests(meta_binary(data.iloc[:2], measure="RR", method="MH"))
    assert rr["test"].tolist() == ["Egger", "Egger (mixed-effects)", "Begg"]
    assert rr["p_value"].isna().all() and rr["note"].str.contains("at least 3 studies").all()


# --------------------------------------------------------------------------- meta-regression engine


def test_meta_regression_engine_matches_metafor(bcg_rr):
    """The engine behind regtest(model="rma") and trim-and-fill's side choice (private helper)."""
    from mscmeta.engine.metareg import metareg_fit
    from mscmeta.engine.tau2 import estimate_tau2

    yi, vi = bcg_rr
    ablat = np.array([44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33])  # dat.bcg absolute latitude
    year = np.array([1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976])
    fit = metareg_fit(yi, vi, np.column_stack([np.ones(13), ablat, year]), "REML")
    se = np.sqrt(np.diag(fit["vb"]))
    # metafor docs/reference/rma.uni.html, rma(yi, vi, mods = ~ ablat + year): tau^2 0.1108;
    # intrcpt -3.5455 (se 29.0959), ablat -0.0280 (se 0.0102), year 0.0019 (se 0.0147)
    assert fit["tau2"] == pytest.approx(0.1108, abs=PRINTED4)
    assert fit["beta"] == pytest.approx([-3.5455, -0.0280, 0.0019], abs=PRINTED4)
    assert se == pytest.approx([29.0959, 0.0102, 0.0147], abs=PRINTED4)
    # metafor docs/reference/confint.rma.html, mods = ~ ablat: residual tau^2 0.0764
    assert metareg_fit(yi, vi, np.column_stack([np.ones(13), ablat]), "REML")["tau2"] == pytest.approx(0.0764, abs=PRINTED4)
    # intercept only: identical to the pooling engine's estimators (same metafor stopping rules)
    for method in ("DL", "REML", "PM", "SJ", "HE", "ML", "EB"):
        assert metareg_fit(yi, vi, np.ones((13, 1)), method)["tau2"] == pytest.approx(estimate_tau2(yi, vi, method).tau2, rel=1e-12)
