"""dat.bcg (13 BCG vaccine trials): metafor's documented results and its Stata metan cross-checks.

Data: metafor/metadat ``dat.bcg`` (Colditz et al. 1994), columns tpos, tneg, cpos, cneg as
printed in metafor ``README.md`` and ``docs/reference/escalc.html``.

Published values are printed to 4 decimals; ``published(x, value)`` asserts that *x*
rounds to *value* (|x - value| <= 0.5e-4), i.e. tolerance 1e-4 or tighter.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary

BCG = [  # trial, tpos, tneg, cpos, cneg  (metafor dat.bcg)
    (1, 4, 119, 11, 128), (2, 6, 300, 29, 274), (3, 3, 228, 11, 209), (4, 62, 13536, 248, 12619),
    (5, 33, 5036, 47, 5761), (6, 180, 1361, 372, 1079), (7, 8, 2537, 10, 619), (8, 505, 87886, 499, 87892),
    (9, 29, 7470, 45, 7232), (10, 17, 1699, 65, 1600), (11, 186, 50448, 141, 27197), (12, 5, 2493, 3, 2338),
    (13, 27, 16886, 29, 17825),
]


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    return pd.DataFrame(
        [{"study": str(t), "events_t": a, "n_t": a + b, "events_c": c, "n_c": c + d} for t, a, b, c, d in BCG]
    )


def published(x: float, value: float, digits: int = 4) -> None:
    assert abs(x - value) <= 0.5 * 10.0**-digits + 1e-12, f"{x} does not round to {value}"


# ---------------------------------------------------------------- log RR, REML (metafor docs)
def test_reml_log_rr(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="REML")
    # metafor docs/reference/rma.uni.html and README.md: rma(yi, vi, data=dat) on escalc(measure="RR")
    published(res.tau2, 0.3132)
    published(res.tau2_se, 0.1664)
    published(np.sqrt(res.tau2), 0.5597)
    published(res.I2, 92.22, 2)
    published(res.H2, 12.86, 2)
    published(res.Q, 152.2330)
    assert res.Q_df == 12 and res.Q_p < 1e-4
    published(res.estimate, -0.7145)
    published(res.se, 0.1798)
    published(res.statistic, -3.9744)
    published(res.ci_low, -1.0669)
    published(res.ci_high, -0.3622)
    assert res.p_value < 1e-4


def test_reml_q_profile_intervals(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="REML")
    # metafor docs/reference/confint.rma.html: confint(res) for the REML fit
    published(res.tau2_ci[0], 0.1197)
    published(res.tau2_ci[1], 1.1115)
    published(np.sqrt(res.tau2_ci[0]), 0.3460)
    published(np.sqrt(res.tau2_ci[1]), 1.0543)
    published(res.I2, 92.2214)
    published(res.I2_ci[0], 81.9177)
    published(res.I2_ci[1], 97.6781)
    published(res.H2, 12.8558)
    published(res.H2_ci[0], 5.5303)
    published(res.H2_ci[1], 43.0680)


def test_reml_prediction_interval(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="REML")
    # metafor docs/reference/predict.rma.html (digits=2): PI [-1.87, 0.44]; RR scale 0.49 [0.34, 0.70], PI [0.15, 1.55]
    assert res.pi_dist == "normal"
    published(res.pi_low, -1.87, 2)
    published(res.pi_high, 0.44, 2)
    d = res.to_dict()
    published(d["estimate"], 0.49, 2)
    published(d["ci_low"], 0.34, 2)
    published(d["ci_high"], 0.70, 2)
    published(d["pi_low"], 0.15, 2)
    published(d["pi_high"], 1.55, 2)


def test_reml_knapp_hartung(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="REML", hksj=True)
    # metafor README.md: rma(yi, vi, data=dat, test="knha") -> se 0.1808, tval -3.9522, df 12,
    # pval 0.0019, CI [-1.1084, -0.3206]; predict(res, transf=exp, digits=2): 0.49 [0.33, 0.73], PI [0.14, 1.76]
    published(res.se, 0.1808)
    published(res.statistic, -3.9522)
    assert res.df == 12
    published(res.p_value, 0.0019)
    published(res.ci_low, -1.1084)
    published(res.ci_high, -0.3206)
    assert res.pi_dist == "t(12)"
    d = res.to_dict()
    published(d["ci_low"], 0.33, 2)
    published(d["ci_high"], 0.73, 2)
    published(d["pi_low"], 0.14, 2)
    published(d["pi_high"], 1.76, 2)


# ---------------------------------------------------------------- metan cross-checks (metafor tests)
@pytest.mark.parametrize(
    ("measure", "est", "lo", "hi", "z", "q"),
    [
        # tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r: metan ..., fixedi nograph rr/or/rd
        ("RR", -0.4303, -0.5097, -0.3509, -10.6247, 152.2330),
        ("OR", -0.4361, -0.5190, -0.3533, -10.3190, 163.1649),
        ("RD", -0.0009, -0.0014, -0.0005, -4.0448, 276.4737),
    ],
)
def test_inverse_variance_fixed_vs_metan(bcg, measure, est, lo, hi, z, q):
    res = meta_binary(bcg, measure=measure, method="IV")
    published(res.estimate, est)
    published(res.ci_low, lo)
    published(res.ci_high, hi)
    published(res.statistic, z)
    published(res.Q, q)


def test_inverse_variance_fixed_ratio_scale_vs_metan(bcg):
    # same file: RR 0.6503 [0.6007, 0.7040]; OR 0.6465 [0.5951, 0.7024]
    rr = meta_binary(bcg, measure="RR", method="IV").to_dict()
    published(rr["estimate"], 0.6503)
    published(rr["ci_low"], 0.6007)
    published(rr["ci_high"], 0.7040)
    or_ = meta_binary(bcg, measure="OR", method="IV").to_dict()
    published(or_["estimate"], 0.6465)
    published(or_["ci_low"], 0.5951)
    published(or_["ci_high"], 0.7024)


@pytest.mark.parametrize(
    ("measure", "est", "lo", "hi", "z", "tau2", "i2", "ratio"),
    [
        # same file: metan ..., randomi nograph rr/or/rd (DerSimonian-Laird)
        ("RR", -0.7141, -1.0644, -0.3638, -3.9952, 0.3088, 92.1173, (0.4896, 0.3449, 0.6950)),
        ("OR", -0.7474, -1.1242, -0.3706, -3.8873, 0.3663, 92.6455, (0.4736, 0.3249, 0.6903)),
        ("RD", -0.0071, -0.0101, -0.0040, -4.5128, 0.0000, 95.6596, None),
    ],
)
def test_dersimonian_laird_vs_metan(bcg, measure, est, lo, hi, z, tau2, i2, ratio):
    res = meta_binary(bcg, measure=measure, method="IV", model="random", tau2_method="DL")
    published(res.estimate, est)
    published(res.ci_low, lo)
    published(res.ci_high, hi)
    published(res.statistic, z)
    published(res.tau2, tau2)
    published(res.I2, i2)
    if ratio:
        d = res.to_dict()
        published(d["estimate"], ratio[0])
        published(d["ci_low"], ratio[1])
        published(d["ci_high"], ratio[2])


def test_dersimonian_laird_q_profile(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="DL")
    # tests/testthat/test_misc_confint.r: tau2 0.3088 [0.1197, 1.1115], I2 92.1173 [81.9177, 97.6781],
    # H2 12.6861 [5.5303, 43.0680]
    published(res.tau2, 0.3088)
    published(res.tau2_ci[0], 0.1197)
    published(res.tau2_ci[1], 1.1115)
    published(res.I2_ci[0], 81.9177)
    published(res.I2_ci[1], 97.6781)
    published(res.H2, 12.6861)
    published(res.H2_ci[0], 5.5303)
    published(res.H2_ci[1], 43.0680)


@pytest.mark.parametrize(
    ("measure", "est", "lo", "hi", "z", "q", "ratio"),
    [
        # tests/testthat/test_misc_metan_vs_rma.mh_with_dat.bcg.r (metan ..., fixed nograph rr/or/rd)
        ("RR", -0.4537, -0.5308, -0.3766, -11.5338, 152.5676, (0.6353, 0.5881, 0.6862)),
        ("OR", -0.4734, -0.5538, -0.3930, -11.5444, 163.9426, (0.6229, 0.5748, 0.6750)),
    ],
)
def test_mantel_haenszel_vs_metan(bcg, measure, est, lo, hi, z, q, ratio):
    for zero_cell in ("revman", "none"):  # no zero cells in dat.bcg: both conventions agree
        res = meta_binary(bcg, measure=measure, method="MH", zero_cell=zero_cell)
        published(res.estimate, est)
        published(res.ci_low, lo)
        published(res.ci_high, hi)
        published(res.statistic, z)
        published(res.Q, q)
        d = res.to_dict()
        published(d["estimate"], ratio[0])
        published(d["ci_low"], ratio[1])
        published(d["ci_high"], ratio[2])
        assert d["log_estimate"] == pytest.approx(res.estimate)


def test_mantel_haenszel_or_heterogeneity(bcg):
    res = meta_binary(bcg, measure="OR", method="MH")
    # metafor docs/reference/rma.mh.html (printed MH output): SE 0.0410, I^2 92.68%, H^2 13.66
    published(res.se, 0.0410)
    published(res.I2, 92.68, 2)
    published(res.H2, 13.66, 2)


def test_mantel_haenszel_risk_difference(bcg):
    # metafor rma.mh (Sato-Greenland-Robins variance), same test file: -0.0033 [-0.0039, -0.0027], z -11.4708, Q 386.7759
    sato = meta_binary(bcg, measure="RD", method="MH", zero_cell="none")
    published(sato.estimate, -0.0033)
    published(sato.ci_low, -0.0039)
    published(sato.ci_high, -0.0027)
    published(sato.statistic, -11.4708)
    published(sato.Q, 386.7759)
    # the same file notes "11.56 in Stata": metan uses the Greenland & Robins (1985) SE, as RevMan
    gr = meta_binary(bcg, measure="RD", method="MH", zero_cell="revman")
    published(gr.statistic, -11.56, 2)
    assert gr.estimate == pytest.approx(sato.estimate, rel=1e-12)


def test_peto_vs_metan(bcg):
    res = meta_binary(bcg, measure="OR", method="Peto")
    # tests/testthat/test_misc_metan_vs_rma.peto_with_dat.bcg.r and docs/reference/rma.peto.html:
    # -0.4744 [-0.5541, -0.3948], SE 0.0407, z -11.6689, Q 167.7302, I2 92.85%; OR 0.6222 [0.5746, 0.6738]
    assert res.measure == "PETO" and res.method == "Peto"
    published(res.estimate, -0.4744)
    published(res.se, 0.0407)
    published(res.ci_low, -0.5541)
    published(res.ci_high, -0.3948)
    published(res.statistic, -11.6689)
    published(res.Q, 167.7302)
    published(res.I2, 92.85, 2)
    lo, hi = res.conf_int()
    published(np.exp(res.estimate), 0.6222)
    published(lo, 0.5746)
    published(hi, 0.6738)


def test_revman_random_effects_for_mh(bcg):
    res = meta_binary(bcg, measure="OR", method="MH", model="random", tau2_method="DL")
    # verified locally (meta-analysis-tools.md section 4.13; not published): PythonMeta 1.26, which follows
    # the RevMan 5 algorithms, "MH OR, Random": tau2 0.3682, OR 0.4735 (0.3246, 0.6908)
    assert res.tau2_method == "DL (RevMan MH)"
    published(res.tau2, 0.3682)
    d = res.to_dict()
    published(d["estimate"], 0.4735)
    published(d["ci_low"], 0.3246)
    published(d["ci_high"], 0.6908)
    # Q stays the MH-based one (RevMan), and I2 = (Q - df)/Q for the DL estimate
    published(res.Q, 163.9426)
    assert res.I2 == pytest.approx(100 * (res.Q - 12) / res.Q, rel=1e-12)


def test_result_object_api(bcg):
    res = meta_binary(bcg, measure="OR", method="MH")
    assert res.is_ratio() and res.conf_int() == pytest.approx(np.exp([res.ci_low, res.ci_high]))
    assert res.conf_int(exp=False) == (res.ci_low, res.ci_high)
    sf = res.summary_frame()
    assert list(sf.columns) == ["eff", "sd_eff", "ci_low", "ci_upp", "w_fe", "estimable"]
    assert sf.index[-1] == "fixed effect" and len(sf) == 14
    assert sf["w_fe"].iloc[:-1].sum() == pytest.approx(1.0)
    d = res.to_dict()
    assert list(d) == [
        "k", "estimate", "ci_low", "ci_high", "log_estimate", "se", "z", "p_value", "Q", "Q_df", "Q_p", "I2", "H2",
        "tau2", "tau2_ci_low", "tau2_ci_high", "pi_low", "pi_high", "measure", "method", "model", "tau2_method",
        "zero_cell", "hksj", "df", "level", "cmh", "cmh_p", "tarone", "tarone_df", "tarone_p",
    ]
    json.dumps(d, allow_nan=False)
    assert d["tau2_ci_low"] is None and d["pi_low"] is None and d["tau2_method"] is None
    # CMH and Tarone beside MH odds ratios only (metafor rma.mh prints them for measure="OR":
    # CMH = 135.688943723906, Tarone X^2 = 171.756672993871, df 12; see tests/test_mh_tests.py)
    assert d["cmh"] == pytest.approx(135.688943723906, rel=1e-9) and d["tarone_df"] == 12
    rd = meta_binary(bcg, measure="RD", method="MH").to_dict()
    assert rd["log_estimate"] is None and rd["estimate"] < 0 and "cmh" not in rd


def test_refit_reproduces_and_subsets(bcg):
    res = meta_binary(bcg, measure="RR", method="IV", model="random", tau2_method="REML")
    again = res.refit(res.studies)
    assert again.estimate == pytest.approx(res.estimate, rel=1e-12)
    assert again.tau2_method == "REML" and again.measure == "RR"
    # metafor docs/reference/leave1out.html (REML, log RR): without trial 1: -0.7071 [-1.0794, -0.3348], tau2 0.3362
    loo = res.refit(res.studies.iloc[1:])
    published(loo.estimate, -0.7071)
    published(loo.ci_low, -1.0794)
    published(loo.ci_high, -0.3348)
    published(loo.tau2, 0.3362)
    published(loo.I2, 93.2259)
