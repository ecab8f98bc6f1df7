"""Sparse data with zero arms and a double-zero trial: dat.nielweise2007 (18 RCTs of
anti-infective catheters; ai/n1i treated, ci/n2i control).

Data: metadat ``data-raw/dat.nielweise2007.txt`` (github wviechtb/metadat), identical to the
counts listed in meta-analysis-tools.md section 4.6.

Published: Stijnen, Hamza & Oezdemir (2010), Stat Med, Table III, as reproduced in metafor
``tests/testthat/test_analysis_example_stijnen2010.r`` (which compares 3-decimal rounded values).
The MH/Peto/RevMan numbers below are *verified locally* with metafor 3.8-1 and PythonMeta
1.26 by the project's research note (meta-analysis-tools.md section 4.6); they are not
published values and are labelled as such.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary

NIELWEISE = pd.DataFrame({
    "study": ["Bach 1996", "George 1997", "Maki 1997", "Raad 1997", "Heard 1998", "Collin 1999", "Hannan 1999",
              "Marik 1999", "Pierce 2000", "Sheng 2000", "Chatzinikolaou 2003", "Corral 2003", "Brun-Buisson 2004",
              "Leon 2004", "Yucel 2004", "Moretti 2005", "Rupp 2005", "Osma 2006"],
    "events_t": [0, 1, 2, 0, 5, 1, 1, 1, 1, 1, 0, 0, 3, 6, 0, 0, 1, 4],
    "n_t": [116, 44, 208, 130, 151, 98, 174, 74, 97, 113, 66, 70, 188, 187, 118, 252, 345, 64],
    "events_c": [3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 0, 1, 3, 1],
    "n_c": [117, 35, 195, 136, 157, 139, 177, 39, 103, 122, 64, 58, 175, 180, 105, 262, 362, 69],
})
YUCEL = 14  # the double-zero trial (0/118 vs 0/105)


def rounds_to(x: float, value: float, digits: int = 4) -> None:
    assert abs(x - value) <= 0.5 * 10.0**-digits + 1e-12, f"{x} does not round to {value}"


def test_normal_normal_model_stijnen2010():
    # metafor: rma(measure="OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat, drop00=TRUE) (REML, 0.5 to zero-cell
    # trials, double zero dropped = our RevMan study-level convention); test_analysis_example_stijnen2010.r:
    # round(coef, 3) = -0.980; round(se, 3) = 0.243 ("0.244 in paper"); round(tau, 2) = 0.19;
    # exp: 0.38 [0.23, 0.60] ("0.62 in paper")
    res = meta_binary(NIELWEISE, measure="OR", method="IV", model="random", tau2_method="REML", zero_cell="revman")
    assert res.k == 17
    rounds_to(res.estimate, -0.980, 3)
    rounds_to(res.se, 0.243, 3)
    rounds_to(np.sqrt(res.tau2), 0.19, 2)
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 0.38, 2)
    rounds_to(lo, 0.23, 2)
    rounds_to(hi, 0.60, 2)
    # meta-analysis-tools.md 4.6 gives the same fit to 4 decimals: -0.9804, SE 0.2435, tau 0.1886, OR [0.2328, 0.6046]
    rounds_to(res.estimate, -0.9804)
    rounds_to(res.se, 0.2435)
    rounds_to(np.sqrt(res.tau2), 0.1886)
    rounds_to(lo, 0.2328)
    rounds_to(hi, 0.6046)


def test_exact_mantel_haenszel_metafor_default():
    # verified locally (metafor 3.8-1 rma.mh default, not published): OR 0.2986 [0.1931, 0.4618],
    # log -1.2087 (SE 0.2224), Q(16) = 16.8637
    res = meta_binary(NIELWEISE, measure="OR", method="MH", zero_cell="none")
    rounds_to(res.estimate, -1.2087)
    rounds_to(res.se, 0.2224)
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 0.2986)
    rounds_to(lo, 0.1931)
    rounds_to(hi, 0.4618)
    rounds_to(res.Q, 16.8637)
    assert res.Q_df == 16
    # the double-zero trial contributes nothing to the MH OR; metafor prints k = 18 (tables), we count 17 pooled
    assert res.k == 17
    assert not res.studies.loc[YUCEL, "estimable"]
    assert res.studies.loc[YUCEL, "note"] == "not estimable: no events in either arm"
    # zero-cell trials: displayed estimates use 0.5, the MH estimator does not
    assert "not in the MH estimator" in res.studies.loc[0, "note"]


def test_peto_without_correction():
    # verified locally (metafor 3.8-1 rma.peto, not published): OR 0.3310 [0.2274, 0.4818], Q(16) = 18.7345
    for zero_cell in ("none", "revman"):  # Peto never uses a continuity correction in the estimator
        res = meta_binary(NIELWEISE, method="Peto", zero_cell=zero_cell)
        lo, hi = res.conf_int()
        rounds_to(np.exp(res.estimate), 0.3310)
        rounds_to(lo, 0.2274)
        rounds_to(hi, 0.4818)
        rounds_to(res.Q, 18.7345)
        assert res.Q_df == 16


def test_revman_mantel_haenszel_with_continuity_correction():
    # verified locally (not published): RevMan-style MH = metafor rma.mh(add=c(.5,.5), to=c("only0","only0"),
    # drop00=c(TRUE,TRUE)) -> 0.3171 [0.2083, 0.4827], k = 17, Q = 16.4064; PythonMeta 1.26 (RevMan 5
    # algorithms) gives the identical 0.3171 (0.2083, 0.4827), Q 16.4064 after removing the double-zero trial
    res = meta_binary(NIELWEISE, measure="OR", method="MH", zero_cell="revman")
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 0.3171)
    rounds_to(lo, 0.2083)
    rounds_to(hi, 0.4827)
    rounds_to(res.Q, 16.4064)
    assert res.k == 17 and res.zero_cell == "revman"
    assert "0.5 added to each cell (study estimate and MH estimator)" in res.studies.loc[0, "note"]
    # the continuity correction pulls the OR towards 1 (Ades et al. 2025)
    exact = meta_binary(NIELWEISE, measure="OR", method="MH", zero_cell="none")
    assert exact.estimate < res.estimate < 0


def test_metafor_escalc_defaults_keep_the_double_zero_trial():
    # verified locally (metafor 3.8-1, not published): rma(measure="OR", ..., method="DL") with escalc defaults
    # (double zero kept with 0.5): tau2 = 0, OR 0.3849 [0.2430, 0.6096], Q(17) = 15.9894
    res = meta_binary(NIELWEISE, measure="OR", method="IV", model="random", tau2_method="DL",
                      zero_cell="none", keep_double_zero=True)
    assert res.zero_cell == "escalc" and res.k == 18 and res.Q_df == 17
    assert res.tau2 == 0.0
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 0.3849)
    rounds_to(lo, 0.2430)
    rounds_to(hi, 0.6096)
    rounds_to(res.Q, 15.9894)
    # REML + Knapp-Hartung: tau2 0.0139, OR 0.3828 [0.2363, 0.6202], PI [0.2224, 0.6589]
    kh = meta_binary(NIELWEISE, measure="OR", method="IV", model="random", tau2_method="REML", hksj=True,
                     zero_cell="escalc")
    rounds_to(kh.tau2, 0.0139)
    d = kh.to_dict()
    rounds_to(d["estimate"], 0.3828)
    rounds_to(d["ci_low"], 0.2363)
    rounds_to(d["ci_high"], 0.6202)
    rounds_to(d["pi_low"], 0.2224)
    rounds_to(d["pi_high"], 0.6589)


def test_risk_difference_keeps_the_double_zero_trial():
    # RevMan (Cochrane Handbook 5.1, 16.9.3): double-zero studies are included for the risk difference
    res = meta_binary(NIELWEISE, measure="RD", method="MH", zero_cell="revman")
    assert res.k == 18 and res.studies.loc[YUCEL, "estimable"]
    assert res.studies.loc[YUCEL, "yi"] == 0.0 and res.studies.loc[YUCEL, "weight"] > 0
    # metafor rma.mh: in the MH weights, but no study-level estimate (escalc drop00=TRUE), so not in Q
    none = meta_binary(NIELWEISE, measure="RD", method="MH", zero_cell="none")
    assert none.k == 18 and none.Q_df == 16 and np.isnan(none.studies.loc[YUCEL, "yi"])
    assert none.studies.loc[YUCEL, "weight"] > 0


def test_all_double_zero_is_not_estimable():
    from mscmeta.engine.validation import NotEstimableError

    zeros = NIELWEISE.iloc[[YUCEL]]
    with pytest.raises(NotEstimableError, match="no study has an estimable OR"):
        meta_binary(zeros)
    # exact MH OR is undefined when no treated patient had an event (OR = 0)
    no_treated_events = NIELWEISE.iloc[[0, 3]]  # Bach, Raad: 0 events in the treated arm
    with pytest.raises(NotEstimableError, match="Mantel-Haenszel odds ratio not estimable"):
        meta_binary(no_treated_events, zero_cell="none")
    # ... while RevMan's 0.5 correction gives a finite (biased) estimate
    assert np.isfinite(meta_binary(no_treated_events, zero_cell="revman").estimate)
