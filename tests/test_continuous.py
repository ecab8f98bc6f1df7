"""Continuous outcomes (MD, SMD, median/IQR/range conversion) against published values.

* ``dat.normand1999`` (9 trials of specialist stroke care, length of stay in days;
  Normand 1999, Stat Med 18:321-359), data and metafor output as printed in metafor
  ``docs/reference/dat.normand1999.html`` (github.com/wviechtb/metafor); the paper's own
  Tables VIII and IX as checked in metafor ``tests/testthat/test_analysis_example_normand1999.r``
  (which uses the pooled SD in both arms, as the paper did).
* ``conv.fivenum``: the worked examples of metafor ``docs/reference/conv.fivenum.html``
  (metafor 4.7-4), n = 20, case 1 (2, 6, 14), case 2 (4, 6, 10), case 3 (2, 4, 6, 10, 14),
  and the skewed case 3 (2, 4, 6, 14, 20), also under a log-normal assumption.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.continuous import (
    fivenum_to_mean_sd,
    hedges_correction,
    mean_difference,
    meta_continuous,
    standardised_mean_difference,
)
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.validation import DataError

PRINTED4 = 5.0001e-5

NORMAND = pd.DataFrame({
    "study": ["Edinburgh", "Orpington-Mild", "Orpington-Moderate", "Orpington-Severe", "Montreal-Home",
              "Montreal-Transfer", "Newcastle", "Umea", "Uppsala"],
    "n_t": [155, 31, 75, 18, 8, 57, 34, 110, 60],
    "mean_t": [55, 27, 64, 66, 14, 19, 52, 21, 30],
    "sd_t": [47, 7, 17, 20, 8, 7, 45, 16, 27],
    "n_c": [156, 32, 71, 18, 13, 52, 33, 183, 52],
    "mean_c": [75, 29, 119, 137, 18, 18, 41, 31, 23],
    "sd_c": [64, 4, 29, 48, 11, 4, 34, 27, 20],
})


def arms(frame: pd.DataFrame = NORMAND):
    return (frame["mean_t"], frame["sd_t"], frame["n_t"], frame["mean_c"], frame["sd_c"], frame["n_c"])


# --------------------------------------------------------------------------- effect sizes


def test_mean_difference_matches_escalc():
    yi, vi = mean_difference(*arms())
    # dat.normand1999.html: escalc(measure="MD") yi and vi
    assert yi == pytest.approx([-20, -2, -55, -71, -4, 1, 11, -10, 7])
    assert vi == pytest.approx([40.5080, 2.0806, 15.6984, 150.2222, 17.3077, 1.1673, 94.5891, 6.3109, 19.8423], abs=PRINTED4)


def test_normand_paper_tables_with_pooled_sd():
    n1, n2 = NORMAND["n_t"], NORMAND["n_c"]
    sdp = np.sqrt(((n1 - 1) * NORMAND["sd_t"] ** 2 + (n2 - 1) * NORMAND["sd_c"] ** 2) / (n1 + n2 - 2))
    yi, vi = mean_difference(NORMAND["mean_t"], sdp, n1, NORMAND["mean_c"], sdp, n2)
    # Normand 1999 Table VIII (via test_analysis_example_normand1999.r): variances to 2 decimals
    assert np.round(vi, 2).tolist() == [40.59, 2.05, 15.28, 150.22, 20.19, 1.22, 95.38, 8.03, 20.69]
    fe = fixed_effect(yi, vi)
    # Table IX, fixed effect: -3.49 [-5.03, -1.96]
    assert [round(fe.estimate, 2), round(fe.ci_low, 2), round(fe.ci_high, 2)] == [-3.49, -5.03, -1.96]
    dl = random_effects(yi, vi, tau2_method="DL")
    # Table IX, DerSimonian-Laird: -14.10 [-24.45, -3.75], tau2 218.72
    assert [round(dl.estimate, 2), round(dl.ci_low, 2), round(dl.ci_high, 2), round(dl.tau2, 2)] == [-14.10, -24.45, -3.75, 218.72]
    reml = random_effects(yi, vi, tau2_method="REML")
    # Table IX, REML: -15.12 [-32.67, 2.43], tau2 685.20
    assert [round(reml.estimate, 2), round(reml.ci_low, 2), round(reml.ci_high, 2), round(reml.tau2, 2)] == [-15.12, -32.67, 2.43, 685.20]


def test_hedges_correction_exact_values():
    # J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981): J(2) = 1/sqrt(pi), J(3) = sqrt(pi)/(2 sqrt(1.5))
    assert hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-14)
    assert hedges_correction(3) == pytest.approx(math.sqrt(math.pi) / 2 / math.sqrt(1.5), rel=1e-14)
    # the usual approximation 1 - 3/(4m - 1) (Hedges 1981) is accurate to O(1/m^2)
    for m in (10, 50, 400):
        assert hedges_correction(m) == pytest.approx(1 - 3 / (4 * m - 1), abs=2 / m**2)
    assert np.isfinite(hedges_correction(1e6)) and hedges_correction(1e6) == pytest.approx(1.0, abs=1e-6)


def test_smd_variance_formula():
    yi, vi = standardised_mean_difference(*arms())
    n1, n2 = NORMAND["n_t"].to_numpy(), NORMAND["n_c"].to_numpy()
    assert vi == pytest.approx(1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2)), rel=1e-14)


# --------------------------------------------------------------------------- pooling


def test_meta_continuous_md_reml_matches_metafor_docs():
    res = meta_continuous(NORMAND, measure="MD")
    # dat.normand1999.html: rma(yi, vi) (REML): tau^2 684.6462, I^2 98.97%, H^2 97.21, Q(8) 238.9158,
    # estimate -15.1060 (se 8.9466, z -1.6885, p 0.0913), CI -32.6409 to 2.4289
    assert res.measure == "MD" and res.model == "random" and res.k == 9
    assert res.tau2 == pytest.approx(684.6462, abs=PRINTED4)
    assert res.I2 == pytest.approx(98.97, abs=0.005) and res.H2 == pytest.approx(97.21, abs=0.005)
    assert res.Q == pytest.approx(238.9158, abs=PRINTED4) and res.Q_df == 8
    assert (res.estimate, res.se, res.statistic, res.p_value) == pytest.approx((-15.1060, 8.9466, -1.6885, 0.0913), abs=PRINTED4)
    assert (res.ci_low, res.ci_high) == pytest.approx((-32.6409, 2.4289), abs=PRINTED4)
    assert res.studies["study"].tolist() == NORMAND["study"].tolist()


def test_meta_continuous_smd_reml_matches_metafor_docs():
    res = meta_continuous(NORMAND, measure="SMD")
    # dat.normand1999.html: rma(measure="SMD", ...): tau^2 0.7908, I^2 95.49%, H^2 22.20, Q(8) 123.7293,
    # estimate -0.5371 (se 0.3087, z -1.7401, p 0.0818), CI -1.1421 to 0.0679
    assert res.measure == "SMD"
    assert res.tau2 == pytest.approx(0.7908, abs=PRINTED4)
    assert res.I2 == pytest.approx(95.49, abs=0.005) and res.H2 == pytest.approx(22.20, abs=0.005)
    assert res.Q == pytest.approx(123.7293, abs=PRINTED4)
    assert (res.estimate, res.se, res.statistic, res.p_value) == pytest.approx((-0.5371, 0.3087, -1.7401, 0.0818), abs=PRINTED4)
    assert (res.ci_low, res.ci_high) == pytest.approx((-1.1421, 0.0679), abs=PRINTED4)


def test_meta_continuous_fixed_and_options():
    yi, vi = mean_difference(*arms())
    fe = meta_continuous(NORMAND, model="fixed")
    w = 1 / vi
    assert fe.estimate == pytest.approx(np.sum(w * yi) / np.sum(w), rel=1e-12)
    assert fe.tau2 == 0.0
    hk = meta_continuous(NORMAND, measure="smd", tau2_method="DL", hksj=True, level=90)
    assert hk.hksj and hk.df == 8 and hk.level == pytest.approx(0.90)
    renamed = NORMAND.rename(columns={"mean_t": "m1i", "study": "source"})
    alt = meta_continuous(renamed, columns={"mean_t": "m1i", "study": "source"})
    assert alt.estimate == pytest.approx(meta_continuous(NORMAND).estimate, rel=1e-14)


def test_meta_continuous_refit_supports_sensitivity():
    res = meta_continuous(NORMAND)
    sub = res.refit(res.studies.iloc[1:])
    direct = meta_continuous(NORMAND.iloc[1:])
    assert sub.estimate == pytest.approx(direct.estimate, rel=1e-12)


@pytest.mark.parametrize(("mutate", "pattern"), [
    (lambda d: d.drop(columns=["sd_c"]), r"missing column\(s\) 'sd_c'"),
    (lambda d: d.assign(sd_t=[47, 7, 0, 20, 8, 7, 45, 16, 27]), r"study 'Orpington-Moderate' \(row 3\), column 'sd_t': standard deviation must be > 0"),
    (lambda d: d.assign(n_c=[156, 32, 71.5, 18, 13, 52, 33, 183, 52]), r"study 'Orpington-Moderate' \(row 3\), column 'n_c': non-integer"),
    (lambda d: d.assign(n_t=[155, 1, 75, 18, 8, 57, 34, 110, 60]), r"study 'Orpington-Mild' \(row 2\), column 'n_t': group size must be an integer >= 2"),
    (lambda d: d.assign(mean_c=["75", "29", "x", "137", "18", "18", "41", "31", "23"]), r"column 'mean_c': non-numeric value 'x'"),
    (lambda d: d.assign(study=["A", "B", "C", "D", "E", "F", "G", "H", "A"]), r"duplicate study id"),
])
def test_meta_continuous_bad_input_names_source_study_column(mutate, pattern):
    with pytest.raises(DataError, match=r"^los\.csv: .*" + pattern):
        meta_continuous(mutate(NORMAND.copy()), source="los.csv")


def test_meta_continuous_bad_options():
    with pytest.raises(DataError, match="unknown measure"):
        meta_continuous(NORMAND, measure="ROM")
    with pytest.raises(DataError, match="unknown model"):
        meta_continuous(NORMAND, model="mixed")
    with pytest.raises(DataError, match="random-effects"):
        meta_continuous(NORMAND, model="fixed", hksj=True)
    with pytest.raises(DataError, match="at least 2 studies"):
        meta_continuous(NORMAND.iloc[:1])


# --------------------------------------------------------------------------- conv.fivenum


def test_fivenum_three_scenarios_match_metafor_docs():
    out = fivenum_to_mean_sd(
        n=[20, 20, 20], median=[6, 6, 6], q1=[np.nan, 4, 4], q3=[np.nan, 10, 10],
        minimum=[2, np.nan, 2], maximum=[14, np.nan, 14], study=["case 1", "case 2", "case 3"],
    )
    # conv.fivenum.html: mean 6.594468, 6.719500, 6.938841; sd 3.211576, 4.787076, 3.679435
    assert out["mean"].to_numpy() == pytest.approx([6.594468, 6.719500, 6.938841], abs=5e-7)
    assert out["sd"].to_numpy() == pytest.approx([3.211576, 4.787076, 3.679435], abs=5e-7)
    # skewness test (Shi et al. 2023) attributes: tval 0.333/0.333/0.491, crit 0.416/0.578/0.666, not significant
    assert out["skew_statistic"].round(3).tolist() == [0.333, 0.333, 0.491]
    assert out["skew_critical"].round(3).tolist() == [0.416, 0.578, 0.666]
    assert not out["skewed"].any() and out["converted"].all()
    assert out["scenario"].tolist() == ["S1", "S2", "S3"]
    assert out["method"].tolist() == [
        "Luo 2018 / Wan 2014 (median, range)",
        "Luo 2018 / Wan 2014 (median, IQR)",
        "Luo 2018 / Shi 2020 (median, IQR, range)",
    ]


def test_fivenum_skewed_row_not_converted_unless_lognormal():
    out = fivenum_to_mean_sd(n=20, median=6, q1=4, q3=14, minimum=2, maximum=20)
    # conv.fivenum.html: study 3 with q3 14, max 20: tval 0.818 >= crit 0.666, mean/sd NA
    assert out.loc[0, "skewed"] and not out.loc[0, "converted"]
    assert round(out.loc[0, "skew_statistic"], 3) == 0.818
    assert np.isnan(out.loc[0, "mean"]) and "skewness test significant" in out.loc[0, "note"]
    logn = fivenum_to_mean_sd(n=20, median=6, q1=4, q3=14, minimum=2, maximum=20, dist="lnorm")
    # conv.fivenum.html with dist="lnorm" (transf=TRUE): mean 8.758702, sd 6.740320, tval 0.353
    assert (logn.loc[0, "mean"], logn.loc[0, "sd"]) == pytest.approx((8.758702, 6.740320), abs=5e-7)
    assert round(logn.loc[0, "skew_statistic"], 3) == 0.353 and logn.loc[0, "converted"]
    assert logn.loc[0, "method"].endswith("log-normal (Shi 2020b)")
    forced = fivenum_to_mean_sd(n=20, median=6, q1=4, q3=14, minimum=2, maximum=20, test=False)
    assert forced.loc[0, "converted"] and "converted (test=False)" in forced.loc[0, "note"]


def test_fivenum_small_n_missing_median_and_order_errors():
    out = fivenum_to_mean_sd(n=[4, 30], median=[5, np.nan], q1=[3, 3], q3=[7, 7])
    assert not out.loc[0, "converted"] and "n < 5" in out.loc[0, "note"]
    # median missing: SD estimated (Wan et al. 2014 needs only the IQR), mean not (as metafor)
    assert np.isnan(out.loc[1, "mean"]) and out.loc[1, "sd"] > 0 and out.loc[1, "method"].startswith("Wan 2014 SD only")
    with pytest.raises(DataError, match=r"los\.csv: study 'B': .*q1 <= median"):
        fivenum_to_mean_sd(n=[20, 20], median=[6, 3], q1=[4, 4], q3=[10, 10], study=["A", "B"], source="los.csv")
    with pytest.raises(DataError, match="unknown dist"):
        fivenum_to_mean_sd(n=20, median=6, q1=4, q3=10, dist="gamma")
    only_median = fivenum_to_mean_sd(n=20, median=6)
    assert not only_median.loc[0, "converted"] and "IQR" in only_median.loc[0, "note"]
