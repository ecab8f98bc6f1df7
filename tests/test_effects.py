"""Study-level effect sizes and the zero-cell conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.effects import ZeroCellRule, double_zero_mask, escalc_binary, study_effects

# dat.fine1993, outcome 2 (e2i/nei treatment, c2i/nci control), as embedded in
# statsmodels/stats/tests/test_meta.py::TestEffectsizeBinom (statsmodels 0.15.0).
FINE_E = np.array([11, 18, 21, 14, 42, 80, 13, 37, 23, 19, 106, 170, 34, 18, 13, 12, 42])
FINE_N1 = np.array([19, 34, 72, 22, 70, 183, 26, 61, 36, 45, 246, 386, 59, 45, 14, 26, 74])
FINE_C = np.array([12, 12, 15, 5, 13, 33, 18, 30, 12, 14, 76, 46, 17, 3, 14, 10, 40])
FINE_N2 = np.array([22, 35, 68, 20, 32, 94, 50, 55, 25, 35, 208, 141, 32, 15, 18, 19, 75])

# statsmodels/stats/tests/results/results_meta.py (eff_prop1): metafor escalc output,
# escalc(measure=..., ai=e2i, n1i=nei, ci=c2i, n2i=nci, data=dat.fine1993).
Y_OR = [0.13613217432458, 0.768370601797533, 0.374938517449009, 1.65822807660353, 0.784954729813068,
        0.361663949151077, 0.575364144903562, 0.250542525502324, 0.650587566141149, 0.0918075492531228,
        0.273865253802803, 0.485755524477543, 0.182321556793955, 0.980829253011726, 1.31218638896617,
        -0.259511195485084, 0.138402322859119]
V_OR = [0.399242424242424, 0.244867149758454, 0.152761481951271, 0.463095238095238, 0.189078465394255,
        0.0689052107900588, 0.240651709401709, 0.142027027027027, 0.280657748049052, 0.210140736456526,
        0.0373104717196078, 0.0427774287950624, 0.194901960784314, 0.509259259259259, 1.39835164835165,
        0.365873015873016, 0.108630952380952]
Y_RR = [0.0595920972022457, 0.434452644981417, 0.279313822781264, 0.934309237376833, 0.389960921572199,
        0.219327702635984, 0.328504066972036, 0.106179852041229, 0.28594445255324, 0.0540672212702757,
        0.164912297594691, 0.300079561474504, 0.0813456394539525, 0.693147180559945, 0.177206456127184,
        -0.131336002061087, 0.0622131845015728]
V_RR = [0.0761562998405104, 0.080905695611578, 0.0856909430438842, 0.175974025974026, 0.0551968864468864,
        0.0267002515563729, 0.074017094017094, 0.0257850995555914, 0.0590338164251208, 0.073266499582289,
        0.0137191240428942, 0.0179386112192693, 0.0400361415752742, 0.3, 0.0213675213675214,
        0.0922402159244264, 0.021962676962677]
Y_RD = [0.0334928229665072, 0.186554621848739, 0.071078431372549, 0.386363636363636, 0.19375,
        0.0860946401581211, 0.14, 0.0611028315946349, 0.158888888888889, 0.0222222222222222,
        0.0655096935584741, 0.114173373020248, 0.045021186440678, 0.2, 0.150793650793651,
        -0.0647773279352226, 0.0342342342342342]
V_RD = [0.0240995805934916, 0.0137648162576944, 0.00539777447807907, 0.0198934072126221, 0.0109664132254464,
        0.00376813659489987, 0.0142233846153846, 0.00842011053321928, 0.0163926076817558, 0.0122782676856751,
        0.00211164860232433, 0.00219739135615223, 0.0119206723560942, 0.016, 0.014339804116826,
        0.0226799351233969, 0.00663520262409963]


@pytest.mark.parametrize(("measure", "y_ref", "v_ref"), [("OR", Y_OR, V_OR), ("RR", Y_RR, V_RR), ("RD", Y_RD, V_RD)])
def test_escalc_matches_metafor_fine1993(measure, y_ref, v_ref):
    # reference: statsmodels results_meta.py eff_prop1 (metafor escalc), checked there with rtol 1e-13
    yi, vi = escalc_binary(measure, FINE_E, FINE_N1, FINE_C, FINE_N2)
    np.testing.assert_allclose(yi, y_ref, rtol=1e-13)
    np.testing.assert_allclose(vi, v_ref, rtol=1e-13)


def test_escalc_log_rr_matches_metafor_bcg_docs():
    # metafor docs/reference/escalc.html (dat.bcg, measure="RR"), printed to 4 decimals
    tpos = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
    tneg = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
    cpos = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
    cneg = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]
    yi_ref = [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713, -0.3394, 0.4459, -0.0173]
    vi_ref = [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730, 0.0124, 0.5325, 0.0714]
    yi, vi = escalc_binary("RR", tpos, np.add(tpos, tneg), cpos, np.add(cpos, cneg))
    np.testing.assert_allclose(yi, yi_ref, atol=5e-5)
    np.testing.assert_allclose(vi, vi_ref, atol=5e-5)


def test_zero_cell_correction_follows_the_definition():
    # 0/10 vs 3/10: RevMan/escalc add 0.5 to every cell -> OR = (0.5*7.5)/(10.5*3.5)
    ai, n1, ci, n2 = np.array([0]), np.array([10]), np.array([3]), np.array([10])
    rule = ZeroCellRule.from_options("revman")
    eff = study_effects("OR", ai, n1, ci, n2, rule)
    assert eff.yi[0] == pytest.approx(np.log(0.5 * 7.5 / (10.5 * 3.5)), rel=1e-14)
    assert eff.vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 3.5 + 1 / 7.5, rel=1e-14)
    assert eff.corrected[0]
    # RR: 0.5 added to events and 1 to each arm total (RevMan, meta RR.Cochrane=TRUE, metafor escalc)
    eff = study_effects("RR", ai, n1, ci, n2, rule)
    assert eff.yi[0] == pytest.approx(np.log((0.5 / 11) / (3.5 / 11)), rel=1e-14)


def test_revman_risk_difference_uses_raw_estimate_and_corrected_variance():
    # R meta metabin (RevMan 5 emulation): TE = p1 - p2 from raw counts, seTE from counts + incr
    ai, n1, ci, n2 = np.array([0]), np.array([10]), np.array([3]), np.array([10])
    eff = study_effects("RD", ai, n1, ci, n2, ZeroCellRule.from_options("revman"))
    assert eff.yi[0] == pytest.approx(-0.3, abs=1e-15)
    assert eff.vi[0] == pytest.approx(0.5 * 10.5 / 11**3 + 3.5 * 7.5 / 11**3, rel=1e-14)
    # metafor escalc corrects the RD estimate too (addyi=TRUE)
    eff = study_effects("RD", ai, n1, ci, n2, ZeroCellRule.from_options("none"))
    assert eff.yi[0] == pytest.approx(0.5 / 11 - 3.5 / 11, rel=1e-14)


def test_double_zero_studies_per_convention():
    ai, n1, ci, n2 = np.array([0, 2]), np.array([10, 10]), np.array([0, 4]), np.array([12, 10])
    assert double_zero_mask(ai, n1 - ai, ci, n2 - ci).tolist() == [True, False]
    revman = study_effects("OR", ai, n1, ci, n2, ZeroCellRule.from_options("revman"))
    assert not revman.estimable[0] and np.isnan(revman.yi[0])
    assert "no events in either arm" in revman.notes[0]
    # RevMan keeps double-zero studies for the risk difference
    rd = study_effects("RD", ai, n1, ci, n2, ZeroCellRule.from_options("revman"))
    assert rd.estimable[0] and rd.yi[0] == 0.0
    # metafor escalc default (drop00=FALSE): kept with 0.5 added -> log OR = log((0.5*12.5)/(10.5*0.5))
    kept = study_effects("OR", ai, n1, ci, n2, ZeroCellRule.from_options("none", keep_double_zero=True))
    assert kept.estimable[0]
    assert kept.yi[0] == pytest.approx(np.log(0.5 * 12.5 / (10.5 * 0.5)), rel=1e-14)
    # and escalc itself with drop00=TRUE returns NA
    yi, _ = escalc_binary("OR", ai, n1, ci, n2, drop00=True)
    assert np.isnan(yi[0]) and np.isfinite(yi[1])


def test_all_events_in_both_arms_is_double_zero_too():
    # metafor drop00: "no events (or all events) in both arms"
    eff = study_effects("OR", np.array([10]), np.array([10]), np.array([8]), np.array([8]),
                        ZeroCellRule.from_options("revman"))
    assert not eff.estimable[0]
    assert "all participants had the event in both arms" in eff.notes[0]


def test_peto_study_estimate_needs_no_correction_in_revman():
    # Peto: (O - E)/V with E = (a+c) n1/N, V = (a+c)(b+d) n1 n2 / (N^2 (N-1)) -- no 0.5 (RevMan)
    a, n1, c, n2 = 0, 10, 3, 10
    big_n = n1 + n2
    e = (a + c) * n1 / big_n
    v = (a + c) * (big_n - a - c) * n1 * n2 / (big_n**2 * (big_n - 1))
    eff = study_effects("PETO", np.array([a]), np.array([n1]), np.array([c]), np.array([n2]),
                        ZeroCellRule.from_options("revman"))
    assert eff.yi[0] == pytest.approx((a - e) / v, rel=1e-14)
    assert eff.vi[0] == pytest.approx(1 / v, rel=1e-14)
    assert not eff.corrected[0]


def test_study_table_shows_conventions():
    df = pd.DataFrame({"study": ["a", "b", "c"], "events_t": [0, 2, 0], "n_t": [10, 10, 12],
                       "events_c": [3, 4, 0], "n_c": [10, 10, 11]})
    res = meta_binary(df)
    s = res.studies
    assert s["estimable"].tolist() == [True, True, False]
    assert s.loc[0, "note"].startswith("0.5 added to each cell")
    assert s.loc[2, "note"] == "not estimable: no events in either arm"
    assert np.isnan(s.loc[2, "weight"]) and s["weight"].sum() == pytest.approx(100.0)
    assert res.k == 2 and res.k_total == 3
