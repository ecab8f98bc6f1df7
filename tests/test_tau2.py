"""The seven tau^2 estimators (DL, REML, PM, SJ, HE, ML, EB) against published values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.effects import escalc_binary
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.tau2 import TAU2_METHODS, estimate_tau2, r_uniroot, tau2_he, tau2_sj


def rounds_to(x: float, value: float, digits: int = 4) -> None:
    assert abs(x - value) <= 0.5 * 10.0**-digits + 1e-12, f"{x} does not round to {value}"


# ---------------------------------------------------------------- CLASP (DerSimonian & Kacker 2007)
# Data and expected values: metafor tests/testthat/test_analysis_example_dersimonian2007.r, which compares
# round(c(tau, mu, se), 4) with pages 111-112 (Tables 3 and 4) of DerSimonian & Kacker (2007).
CLASP_N1 = [156, 303, 565, 1570, 103, 4659]
CLASP_N2 = [74, 303, 477, 1565, 105, 4650]
CLASP_AI = [5, 5, 12, 69, 9, 313]
CLASP_CI = [8, 17, 9, 94, 11, 352]
CLASP_EXPECTED = {  # method: (tau, mu, se)
    "PM": (0.3681, -0.3811, 0.2060),
    "HE": (0.4410, -0.4035, 0.2327),  # "CA" in the paper
    "DL": (0.2323, -0.3240, 0.1540),
    "EB": (0.3681, -0.3811, 0.2060),
    "ML": (0.0023, -0.1974, 0.0694),
    "REML": (0.1843, -0.2980, 0.1343),
    "SJ": (0.4572, -0.4079, 0.2386),
}


@pytest.fixture(scope="module")
def clasp():
    return escalc_binary("OR", CLASP_AI, CLASP_N1, CLASP_CI, CLASP_N2)


@pytest.mark.parametrize("method", TAU2_METHODS)
def test_clasp_dersimonian_kacker_2007(clasp, method):
    yi, vi = clasp
    res = random_effects(yi, vi, tau2_method=method)
    tau, mu, se = CLASP_EXPECTED[method]
    rounds_to(np.sqrt(res.tau2), tau)
    rounds_to(res.estimate, mu)
    rounds_to(res.se, se)


def test_clasp_sidik_jonkman_from_ca(clasp):
    # SJ2 in the same test: rma(method="SJ", control=list(tau2.init=res.CA$tau2)) -> tau 0.4084
    yi, vi = clasp
    rounds_to(np.sqrt(tau2_sj(yi, vi, tau2_init=tau2_he(yi, vi).tau2).tau2), 0.4084)


# ---------------------------------------------------------------- Raudenbush (2009), Table 16.3
# dat.raudenbush1985 (metadat data-raw/dat.raudenbush1985.txt), yi and vi.
RAUD_YI = [0.03, 0.12, -0.14, 1.18, 0.26, -0.06, -0.02, -0.32, 0.27, 0.80, 0.54, 0.18, -0.02, 0.23, -0.18, -0.06, 0.30,
           0.07, -0.07]
RAUD_VI = [0.0156, 0.0216, 0.0279, 0.1391, 0.1362, 0.0106, 0.0106, 0.0484, 0.0269, 0.0630, 0.0912, 0.0497, 0.0835,
           0.0841, 0.0253, 0.0279, 0.0193, 0.0088, 0.0303]
# metafor tests/testthat/test_analysis_example_raudenbush2009.r (round(..., 3), page 309, Table 16.3):
# method: (tau2, mu, se, z, ci.lb, ci.ub) conventional; (se, t, ci.lb, ci.ub) Knapp & Hartung
RAUD_CONVENTIONAL = {
    "ML": (0.013, 0.078, 0.047, 1.637, -0.015, 0.171),
    "REML": (0.019, 0.084, 0.052, 1.621, -0.018, 0.185),
    "DL": (0.026, 0.089, 0.056, 1.601, -0.020, 0.199),
    "HE": (0.080, 0.114, 0.079, 1.443, -0.041, 0.270),
}
RAUD_KNHA = {
    "ML": (0.059, 1.311, -0.047, 0.202),
    "REML": (0.062, 1.359, -0.046, 0.213),
    "DL": (0.064, 1.405, -0.044, 0.223),
    "HE": (0.071, 1.608, -0.035, 0.264),
}


@pytest.mark.parametrize("method", list(RAUD_CONVENTIONAL))
def test_raudenbush2009_table_16_3(method):
    res = random_effects(RAUD_YI, RAUD_VI, tau2_method=method)
    for value, ref in zip((res.tau2, res.estimate, res.se, res.statistic, res.ci_low, res.ci_high),
                          RAUD_CONVENTIONAL[method], strict=True):
        rounds_to(value, ref, 3)
    knha = random_effects(RAUD_YI, RAUD_VI, tau2_method=method, hksj=True)
    for value, ref in zip((knha.se, knha.statistic, knha.ci_low, knha.ci_high), RAUD_KNHA[method], strict=True):
        rounds_to(value, ref, 3)


def test_raudenbush2009_fixed_effect_and_prediction():
    fe = fixed_effect(RAUD_YI, RAUD_VI)
    # same file: round(coef, 3) 0.060, round(QE, 2) 35.83, round(zval, 2) 1.66; Table 16.3 FE se 0.036
    rounds_to(fe.estimate, 0.060, 3)
    rounds_to(fe.Q, 35.83, 2)
    rounds_to(fe.statistic, 1.66, 2)
    rounds_to(fe.se, 0.036, 3)
    # REML credibility/prediction interval: round(cr.lb, 3) -0.204, round(cr.ub, 3) 0.371
    re = random_effects(RAUD_YI, RAUD_VI)
    rounds_to(re.pi_low, -0.204, 3)
    rounds_to(re.pi_high, 0.371, 3)


# ---------------------------------------------------------------- PyMARE issue #75 (metafor DL output)
def test_pymare_issue75_dersimonian_laird():
    # https://github.com/neurostuff/PyMARE/issues/75, rma(y, v, method="DL") (meta-analysis-tools.md 4.12):
    # tau2 7.6337 (SE 4.8874), I2 88.02%, H2 8.35, Q(7) = 58.4539, mu 1.7679 (SE 1.0491), z 1.6852, p 0.0920,
    # CI [-0.2883, 3.8241]
    y = [-1, 0.5, 0.5, 0.5, 1, 1, 2, 10]
    v = [1, 1, 2.4, 0.5, 1, 1, 1.2, 1.5]
    res = random_effects(y, v, tau2_method="DL")
    rounds_to(res.tau2, 7.6337)
    rounds_to(res.tau2_se, 4.8874)
    rounds_to(res.I2, 88.02, 2)
    rounds_to(res.H2, 8.35, 2)
    rounds_to(res.Q, 58.4539)
    rounds_to(res.estimate, 1.7679)
    rounds_to(res.se, 1.0491)
    rounds_to(res.statistic, 1.6852)
    rounds_to(res.p_value, 0.0920)
    rounds_to(res.ci_low, -0.2883)
    rounds_to(res.ci_high, 3.8241)


# ---------------------------------------------------------------- dat.bcg, all estimators
# VERIFIED LOCALLY, not published: metafor 3.8-1 on dat.bcg (log RR), meta-analysis-tools.md section 4.13.
# (DL and REML rows are also published: see test_example_bcg.py.)
BCG_TPOS = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
BCG_TNEG = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
BCG_CPOS = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
BCG_CNEG = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]
BCG_LOCAL = {  # tau2, mu, se, ci, I2, KH se, KH ci, PI
    "DL": (0.3088, -0.7141, 0.1787, (-1.0644, -0.3638), 92.1173, 0.1807, (-1.1078, -0.3204), (-1.8582, 0.4299)),
    "REML": (0.3132, -0.7145, 0.1798, (-1.0669, -0.3622), 92.2214, 0.1808, (-1.1084, -0.3206), (-1.8667, 0.4376)),
    "PM": (0.3181, -0.7150, 0.1809, (-1.0695, -0.3604), 92.3309, 0.1809, (-1.1091, -0.3208), (-1.8759, 0.4459)),
    "SJ": (0.3455, -0.7172, 0.1871, (-1.0839, -0.3506), 92.8963, 0.1814, (-1.1125, -0.3219), (-1.9263, 0.4918)),
    "HE": (0.3286, -0.7159, 0.1833, (-1.0751, -0.3567), 92.5571, 0.1811, (-1.1105, -0.3213), (-1.8954, 0.4636)),
    "ML": (0.2800, -0.7112, 0.1719, (-1.0481, -0.3743), 91.3783, 0.1800, (-1.1035, -0.3189), (-1.8017, 0.3793)),
    "EB": (0.3181, -0.7150, 0.1809, (-1.0695, -0.3604), 92.3303, 0.1809, (-1.1091, -0.3208), (-1.8758, 0.4459)),
}


@pytest.mark.parametrize("method", TAU2_METHODS)
def test_bcg_all_estimators_verified_locally(method):
    yi, vi = escalc_binary("RR", BCG_TPOS, np.add(BCG_TPOS, BCG_TNEG), BCG_CPOS, np.add(BCG_CPOS, BCG_CNEG))
    tau2, mu, se, ci, i2, kh_se, kh_ci, pi = BCG_LOCAL[method]
    res = random_effects(yi, vi, tau2_method=method)
    rounds_to(res.tau2, tau2)
    rounds_to(res.estimate, mu)
    rounds_to(res.se, se)
    rounds_to(res.ci_low, ci[0])
    rounds_to(res.ci_high, ci[1])
    rounds_to(res.I2, i2)  # PM 92.3309 vs EB 92.3303: reproduced only with R's uniroot stopping rule
    rounds_to(res.pi_low, pi[0])
    rounds_to(res.pi_high, pi[1])
    kh = random_effects(yi, vi, tau2_method=method, hksj=True)
    rounds_to(kh.se, kh_se)
    rounds_to(kh.ci_low, kh_ci[0])
    rounds_to(kh.ci_high, kh_ci[1])


# ---------------------------------------------------------------- invariants
def test_tau2_truncated_at_zero_for_homogeneous_data():
    y = [0.10, 0.12, 0.11, 0.09]
    v = [0.04, 0.05, 0.03, 0.06]
    for method in TAU2_METHODS:
        est = estimate_tau2(np.array(y), np.array(v), method)
        if method == "SJ":  # SJ = t0 * Q_w(t0)/(k-1) > 0 whenever the y differ (Sidik & Jonkman 2005)
            assert 0 < est.tau2 < 1e-5
            continue
        assert est.tau2 == 0.0, method
        res = random_effects(y, v, tau2_method=method)
        assert res.I2 == 0.0 and res.H2 == 1.0
        # Q below its lower critical value: the Q-profile interval is the null set, reported as [0, 0]
        assert res.tau2_ci == (0.0, 0.0)


def test_r_uniroot_port():
    # R: uniroot(function(x) x^2 - 2, c(0, 2), tol=1e-12)$root = sqrt(2) to the tolerance
    root, _ = r_uniroot(lambda x: x * x - 2, 0.0, 2.0, tol=1e-12)
    assert abs(root - np.sqrt(2)) < 1e-12
    with pytest.raises(ValueError, match="opposite sign"):
        r_uniroot(lambda x: x * x + 1, 0.0, 2.0)


def test_estimate_tau2_rejects_bad_input():
    from mscmeta.engine.validation import DataError

    with pytest.raises(DataError, match="at least 2 studies"):
        estimate_tau2(np.array([0.1]), np.array([0.1]), "REML")
    with pytest.raises(DataError, match="unknown tau2 method"):
        estimate_tau2(np.array([0.1, 0.2]), np.array([0.1, 0.1]), "XYZ")


def test_generic_summary_frame_and_refit():
    res = random_effects(RAUD_YI, RAUD_VI, studies=[f"s{i}" for i in range(19)], tau2_method="DL")
    sf = res.summary_frame()
    assert sf.index[-1] == "random effect" and "w_re" in sf.columns
    again = res.refit(pd.DataFrame({"study": sf.index[:-1], "yi": RAUD_YI, "vi": RAUD_VI}).iloc[::-1])
    assert again.estimate == pytest.approx(res.estimate, rel=1e-12)
    assert again.tau2_method == "DL"
