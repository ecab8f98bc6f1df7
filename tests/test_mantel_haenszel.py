"""Mantel-Haenszel and Peto estimators against published worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.mantel_haenszel import mh_odds_ratio, mh_risk_difference, mh_risk_ratio, peto_odds_ratio


def frame(ai, bi, ci, di) -> pd.DataFrame:
    ai, bi, ci, di = map(np.asarray, (ai, bi, ci, di))
    return pd.DataFrame({"study": [f"s{i + 1}" for i in range(len(ai))], "events_t": ai, "n_t": ai + bi,
                         "events_c": ci, "n_c": ci + di})


def rounds_to(x: float, value: float, digits: int = 4) -> None:
    assert abs(x - value) <= 0.5 * 10.0**-digits + 1e-12, f"{x} does not round to {value}"


# Rothman, Greenland & Lash (2008), Table 15-1 (tolbutamide, two age strata), 90% CIs,
# as in metafor tests/testthat/test_analysis_example_rothman2008.r (rma.mh defaults).
ROTHMAN = frame([8, 22], [98, 76], [5, 16], [115, 69])


def test_rothman2008_risk_difference():
    res = meta_binary(ROTHMAN, measure="RD", method="MH", zero_cell="none", level=90)
    rounds_to(res.estimate, 0.0349)
    rounds_to(res.ci_low, -0.0176)
    rounds_to(res.ci_high, 0.0874)
    rounds_to(res.Q, 0.0017)
    rounds_to(res.Q_p, 0.9669)


def test_rothman2008_risk_ratio():
    res = meta_binary(ROTHMAN, measure="RR", method="MH", zero_cell="none", level=90)
    rounds_to(res.estimate, 0.2818)
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 1.3256)
    rounds_to(lo, 0.8658)
    rounds_to(hi, 2.0296)
    rounds_to(res.Q, 0.4472)
    rounds_to(res.Q_p, 0.5037)


def test_rothman2008_odds_ratio():
    res = meta_binary(ROTHMAN, measure="OR", method="MH", zero_cell="none", level=90)
    rounds_to(res.estimate, 0.3387)
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 1.4031)
    rounds_to(lo, 0.8411)
    rounds_to(hi, 2.3409)
    rounds_to(res.Q, 0.3474)
    rounds_to(res.Q_p, 0.5556)


# statsmodels stats/tests/test_contingency_tables.py::TestStratified1, reference from R mantelhaen.test:
# array c(0,0,6,5, 3,0,3,6, 6,2,0,4, 5,6,1,0, 2,5,0,0), dim (2,2,5)
STRAT1 = frame([0, 3, 6, 5, 2], [6, 3, 0, 1, 0], [0, 0, 2, 6, 5], [5, 6, 4, 0, 0])


def test_mantelhaen_test_exact_mh():
    # published in the statsmodels test: MH OR = 7, 95% CI [1.026713, 47.725133]
    res = meta_binary(STRAT1, measure="OR", method="MH", zero_cell="none")
    assert np.exp(res.estimate) == pytest.approx(7.0, rel=1e-12)
    lo, hi = res.conf_int()
    rounds_to(lo, 1.026713, 6)
    rounds_to(hi, 47.725133, 6)


def test_continuity_correction_flips_significance():
    # verified locally (meta-analysis-tools.md 4.7, not published): RevMan-style correction (strata 1 and 5
    # dropped, 0.5 added inside MH) gives 4.2941 [0.9709, 18.9917] in the metafor emulation
    res = meta_binary(STRAT1, measure="OR", method="MH", zero_cell="revman")
    lo, hi = res.conf_int()
    rounds_to(np.exp(res.estimate), 4.2941)
    rounds_to(lo, 0.9709)
    rounds_to(hi, 18.9917)
    assert res.k == 3 and res.p_value > 0.05


def test_mh_or_equals_definition():
    # arbitrary counts; the MH OR is sum(a d / N) / sum(b c / N) (Mantel & Haenszel 1959)
    a, b, c, d = np.array([20, 10, 5, 8]), np.array([15, 20, 5, 12]), np.array([10, 5, 3, 4]), np.array([25, 30, 10, 14])
    n = a + b + c + d
    est = mh_odds_ratio(a, b, c, d)
    assert np.exp(est.estimate) == pytest.approx((a * d / n).sum() / (b * c / n).sum(), rel=1e-14)


def test_single_table_reduces_to_woolf_and_katz():
    # one stratum: RBG variance = Woolf's 1/a+1/b+1/c+1/d; Greenland-Robins RR variance = Katz's
    a, b, c, d = np.array([7.0]), np.array([13.0]), np.array([4.0]), np.array([16.0])
    assert mh_odds_ratio(a, b, c, d).se ** 2 == pytest.approx(1 / 7 + 1 / 13 + 1 / 4 + 1 / 16, rel=1e-13)
    assert mh_risk_ratio(a, b, c, d).se ** 2 == pytest.approx(1 / 7 - 1 / 20 + 1 / 4 - 1 / 20, rel=1e-13)
    p1, p2 = 7 / 20, 4 / 20
    for variance in ("sato", "greenland-robins"):
        assert mh_risk_difference(a, b, c, d, variance).se ** 2 == pytest.approx(
            p1 * (1 - p1) / 20 + p2 * (1 - p2) / 20, rel=1e-13)
    # Peto, one table: (O - E)/V
    big_n = 40
    e, v = 11 * 20 / big_n, 11 * 29 * 20 * 20 / (big_n**2 * (big_n - 1))
    assert peto_odds_ratio(a, b, c, d).estimate == pytest.approx((7 - e) / v, rel=1e-13)


def test_revman_mh_risk_difference_corrects_only_the_variance():
    # R meta metabin(sm="RD", method="MH", MH.exact=FALSE), its RevMan 5 emulation: TE.fixed is the weighted mean
    # of the raw study RDs with weights n1 n2/N; var = sum(R)/sum(S)^2 with R from counts + 0.5 in zero-cell studies:
    # R = ((a+.5)(b+.5)(n2+1)^3 + (c+.5)(d+.5)(n1+1)^3) / ((n1+1)(n2+1)(N+2)^2)
    data = frame([0, 2, 0], [10, 18, 12], [3, 4, 0], [9, 16, 11])
    res = meta_binary(data, measure="RD", method="MH", zero_cell="revman")
    a, b, c, d = (np.asarray(data[k], dtype=float) for k in ("events_t", "n_t", "events_c", "n_c"))
    b, d = b - a, d - c
    n1, n2, n = a + b, c + d, a + b + c + d
    w = n1 * n2 / n
    assert res.estimate == pytest.approx(((a / n1 - c / n2) * w).sum() / w.sum(), rel=1e-13)
    inc = np.array([0.5, 0.0, 0.5])
    ac, bc, cc, dc = a + inc, b + inc, c + inc, d + inc
    n1c, n2c = ac + bc, cc + dc
    r = (ac * bc * n2c**3 + cc * dc * n1c**3) / (n1c * n2c * (n1c + n2c) ** 2)
    assert res.se**2 == pytest.approx(r.sum() / w.sum() ** 2, rel=1e-13)
    assert res.k == 3  # RevMan keeps the double-zero study for the RD


# Six tables; the fifth has events in every patient of both arms (6/6 vs 5/5).
ALL_EVENTS = frame([2, 5, 0, 4, 6, 3], [8, 7, 8, 11, 0, 17], [4, 5, 1, 6, 5, 7], [6, 6, 8, 9, 0, 12])


def test_mh_risk_ratio_keeps_tables_with_events_in_every_patient():
    """metafor rma.mh keeps such a table (drop00 = c(TRUE, FALSE)); it carries weight for the RR.

    R 4.2.2, metafor 3.8.1: ``rma.mh(measure="RR", ai, n1i, ci, n2i)`` on the six tables:
    log RR -0.407281591223754, SE 0.215708347782603, QE 1.388949216118974, k 6 (5 with yi);
    without the fifth table: -0.532274532691608, SE 0.283285963745632.
    """
    res = meta_binary(ALL_EVENTS, measure="RR", method="MH", zero_cell="none")
    assert res.estimate == pytest.approx(-0.407281591223754, rel=1e-12)
    assert res.se == pytest.approx(0.215708347782603, rel=1e-12)
    assert res.Q == pytest.approx(1.388949216118974, rel=1e-12) and res.Q_df == 4
    assert res.k == 6 and bool(res.studies["estimable"].iloc[4])
    assert "in the MH weights" in res.studies["note"].iloc[4]
    without = meta_binary(ALL_EVENTS.drop(index=4), measure="RR", method="MH", zero_cell="none")
    assert without.estimate == pytest.approx(-0.532274532691608, rel=1e-12)
    # OR, RD and Peto: R rma.mh(measure="OR") -0.786567946767787 (SE 0.413131479276725),
    # rma.mh(measure="RD") -0.1378207214219455 (SE 0.0705711454856449), rma.peto -0.745579060708772
    odds = meta_binary(ALL_EVENTS, measure="OR", method="MH", zero_cell="none")
    assert (odds.estimate, odds.se) == pytest.approx((-0.786567946767787, 0.413131479276725), rel=1e-12)
    rd = meta_binary(ALL_EVENTS, measure="RD", method="MH", zero_cell="none")
    assert (rd.estimate, rd.se) == pytest.approx((-0.1378207214219455, 0.0705711454856449), rel=1e-12)
    peto = meta_binary(ALL_EVENTS, method="Peto", zero_cell="none")
    assert peto.estimate == pytest.approx(-0.745579060708772, rel=1e-12)
