"""Cochran-Mantel-Haenszel and Tarone's tests (:mod:`mscmeta.engine.mh_tests`) against metafor
``rma.mh`` and published values (moved from the standalone module of /work/scratch/bayes).

Reference sources
-----------------
* ``[metafor]``: metafor 3.8.1 on R 4.2.2 (R version 4.2.2 Patched
  (2022-11-10 r83330)), computed here with ``refgen/mh_refs.R``; the exact
  call is quoted in each test. Values are ``res$MH``, ``res$MHp``,
  ``res$TA``, ``res$TAp``, ``res$BD``, ``res$k.pos`` printed with 15
  significant digits (the R script is kept with the standalone module's reference
  generators). Closed-form statistics: relative tolerance 1e-9.
* ``[Rothman]``: Rothman, Greenland & Lash (2008), Modern Epidemiology 3rd
  ed., Tables 15-1 and 15-5, as checked in metafor's own test suite
  (``tests/testthat/test_analysis_example_rothman2008.r``); 4 published
  decimals, so absolute tolerance 1e-4 (rounding limit).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.mh_tests import cmh_test, mh_tests, tables_from_events, tarone_test
from mscmeta.engine.validation import DataError

REL = 1e-9

# metafor dat.bcg (Colditz et al. 1994): tpos, tneg, cpos, cneg
BCG = (
    [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
    [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
    [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
    [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825],
)

# synthetic sparse mortality data (events/total per arm); S5 is a double-zero study
SPARSE_EVENTS = dict(
    events_t=[2, 0, 1, 3, 0, 4, 1, 6, 0], n_t=[20, 13, 50, 100, 10, 31, 12, 101, 20],
    events_c=[5, 2, 4, 5, 0, 9, 1, 10, 3], n_c=[20, 12, 50, 100, 10, 30, 12, 99, 20])


def test_bcg_default_correct() -> None:
    """[metafor] rma.mh(measure="OR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)

    printed: CMH = 135.6889, df = 1; Tarone X^2 = 171.7567, df = 12.
    """
    res = mh_tests(*BCG)
    assert res.cmh.statistic == pytest.approx(135.688943723906, rel=REL)
    assert res.cmh.pvalue == pytest.approx(2.33369633183248e-31, rel=1e-7)
    assert res.tarone.statistic == pytest.approx(171.756672993871, rel=REL)
    assert res.tarone.pvalue == pytest.approx(2.08678239453652e-30, rel=1e-7)
    assert res.tarone.breslow_day == pytest.approx(171.765366579396, rel=REL)
    assert (res.tarone.df, res.tarone.k_used) == (12, 13)
    text = str(res)
    assert "CMH = 135.6889, df = 1, p-val < 0.0001" in text
    assert "X^2 = 171.7567, df = 12, p-val < 0.0001" in text


def test_bcg_no_correction() -> None:
    """[metafor] rma.mh(measure="OR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, correct=FALSE)"""
    res = cmh_test(*BCG, correct=False)
    assert res.statistic == pytest.approx(136.162976744635, rel=REL)
    assert res.pvalue == pytest.approx(1.83807338632165e-31, rel=1e-7)


@pytest.mark.parametrize("cells, mh, mhp, ta, tap", [
    # Table 15-1 (tolbutamide, age strata): MH 1.1914 (p .2750), Tarone 0.3489 (p .5547)
    (([8, 22], [98, 76], [5, 16], [115, 69]), 1.1914, 0.2750, 0.3489, 0.5547),
    # Table 15-5 (spermicide / Down syndrome): MH 5.8092 (p .0159), Tarone 0.1391 (p .7092)
    (([3, 1], [9, 3], [104, 5], [1059, 86]), 5.8092, 0.0159, 0.1391, 0.7092),
])
def test_rothman_published(cells: tuple[list[int], ...], mh: float, mhp: float, ta: float,
                           tap: float) -> None:
    """[Rothman] rma.mh(..., measure="OR", correct=FALSE); 4 published decimals."""
    res = mh_tests(*cells, correct=False)
    assert res.cmh.statistic == pytest.approx(mh, abs=1e-4)
    assert res.cmh.pvalue == pytest.approx(mhp, abs=1e-4)
    assert res.tarone.statistic == pytest.approx(ta, abs=1e-4)
    assert res.tarone.pvalue == pytest.approx(tap, abs=1e-4)


def test_sparse_zero_cells_and_double_zero() -> None:
    """[metafor] rma.mh(measure="OR", ai=dt, n1i=nt, ci=dc, n2i=nc, data=sp) (+ correct=FALSE):
    no continuity correction; the double-zero study S5 stays in but adds nothing;
    k.pos = 8 of 9 tables enter Tarone's test."""
    a, b, c, d = tables_from_events(**SPARSE_EVENTS)
    res = mh_tests(a, b, c, d)
    assert res.cmh.statistic == pytest.approx(9.14943399310711, rel=REL)
    assert res.cmh.pvalue == pytest.approx(0.00248795013384441, rel=1e-8)
    assert res.tarone.statistic == pytest.approx(3.78657243575367, rel=REL)
    assert res.tarone.pvalue == pytest.approx(0.804005794844493, rel=1e-8)
    assert res.tarone.breslow_day == pytest.approx(3.78712117230624, rel=REL)
    assert (res.tarone.k_used, res.tarone.df) == (8, 7)
    assert cmh_test(a, b, c, d, correct=False).statistic == pytest.approx(10.0222840808571, rel=REL)


def test_correction_not_truncated_when_difference_below_half() -> None:
    """[metafor] rma.mh(measure="OR", ai=c(3,2), bi=c(7,8), ci=c(2,3), di=c(8,7)):
    sum(O - E) = 0 yet CMH = (0 - 0.5)^2 / V = 0.126666666666667 (no max(0, .))."""
    res = cmh_test([3, 2], [7, 8], [2, 3], [8, 7])
    assert res.statistic == pytest.approx(0.126666666666667, rel=REL)
    assert res.pvalue == pytest.approx(0.721913502318055, rel=1e-8)


def test_tarone_when_mh_or_is_one_up_to_rounding() -> None:
    """Same tables as above. Exact MH OR is 1 (R = S = 1.9), so E_i = 10*5/20 = 2.5,
    1/V_i = 2/2.5 + 2/7.5, BD = 2 * 0.25 * 0.9375^-1 = 8/15 and sum(O - E) = 0:
    Tarone X^2 = 8/15 (hand calculation). metafor 3.8.1 returns NA here because
    its (A - B)/(2(psi - 1)) form cancels catastrophically at psi = 1 - 1e-16;
    this module uses the algebraically identical stable form (see module doc)."""
    res = tarone_test([3, 2], [7, 8], [2, 3], [8, 7])
    assert res.statistic == pytest.approx(8.0 / 15.0, rel=1e-12)
    assert (res.k_used, res.df) == (2, 1)


def test_psi_exactly_one() -> None:
    """[metafor] rma.mh(measure="OR", ai=c(3,5), bi=c(7,5), ci=c(5,3), di=c(5,7))"""
    res = mh_tests([3, 5], [7, 5], [5, 3], [5, 7])
    assert res.cmh.statistic == pytest.approx(0.0989583333333333, rel=REL)
    assert res.tarone.statistic == pytest.approx(1.66666666666667, rel=REL)
    assert res.tarone.pvalue == pytest.approx(0.196705602458947, rel=1e-8)


def test_single_table() -> None:
    """[metafor] rma.mh(measure="OR", ai=4, bi=16, ci=9, di=11): CMH 1.77777777777778;
    Tarone X^2 = 0 with df = 0 and p-val NA (k.pos = 1)."""
    res = mh_tests([4], [16], [9], [11])
    assert res.cmh.statistic == pytest.approx(1.77777777777778, rel=REL)
    assert res.cmh.pvalue == pytest.approx(0.182422439451736, rel=1e-8)
    assert res.tarone.statistic == pytest.approx(0.0, abs=1e-12)
    assert (res.tarone.df, res.tarone.k_used) == (0, 1)
    assert math.isnan(res.tarone.pvalue)
    assert "df = 0, p-val NA" in str(res)


def test_no_events_not_computable() -> None:
    """[metafor] rma.mh(measure="OR", ai=c(0,0), bi=c(10,12), ci=c(0,0), di=c(11,9)):
    MH, MHp, TA, TAp all NA ("test value not computable for these data")."""
    res = mh_tests([0, 0], [10, 12], [0, 0], [11, 9])
    assert not res.cmh.computable and math.isnan(res.cmh.statistic)
    assert not res.tarone.computable and math.isnan(res.tarone.statistic)
    assert str(res).count("test value not computable for these data") == 2
    assert json.loads(json.dumps(res.to_dict()))["cmh"]["statistic"] is None


def test_mh_or_undefined_tarone_not_computable() -> None:
    """[metafor] rma.mh(measure="OR", ai=c(2,3), bi=c(0,5), ci=c(4,0), di=c(6,7)):
    sum(b c / N) = 0 so the MH OR (and Tarone) is NA, CMH = 3.29817275747508."""
    res = mh_tests([2, 3], [0, 5], [4, 0], [6, 7])
    assert res.cmh.statistic == pytest.approx(3.29817275747508, rel=REL)
    assert res.cmh.pvalue == pytest.approx(0.0693569952163627, rel=1e-8)
    assert not res.tarone.computable


def test_tables_excluded_from_tarone() -> None:
    """[metafor] rma.mh(measure="OR", ai=c(0,5,7,2), bi=c(10,15,13,18), ci=c(0,9,12,6),
    di=c(10,11,8,14)): the no-event table is dropped from Tarone (k.pos = 3)."""
    res = mh_tests([0, 5, 7, 2], [10, 15, 13, 18], [0, 9, 12, 6], [10, 11, 8, 14])
    assert res.cmh.statistic == pytest.approx(5.51128557409225, rel=REL)
    assert res.tarone.statistic == pytest.approx(0.164898139439522, rel=REL)
    assert res.tarone.pvalue == pytest.approx(0.920858336235646, rel=1e-8)
    assert res.tarone.breslow_day == pytest.approx(0.164912134215358, rel=REL)
    assert (res.tarone.k_used, res.tarone.df) == (3, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(events_t=[3, 12], n_t=[10, 10], events_c=[1, 2], n_c=[10, 10]), "study 'study 2': events_t"),
    (dict(events_t=[3, -1], n_t=[10, 10], events_c=[1, 2], n_c=[10, 10]), "events_t must be"),
    (dict(events_t=[3, 1], n_t=[10, 10], events_c=[1], n_c=[10, 10]), "events_c: length 1"),
])
def test_events_input_errors(kwargs: dict[str, list[int]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        tables_from_events(**kwargs)


def test_table_input_errors() -> None:
    with pytest.raises(DataError, match="study 'B': empty arm"):
        cmh_test([1, 0], [2, 0], [1, 3], [2, 4], studies=["A", "B"])
    with pytest.raises(DataError, match="di must be a finite count"):
        tarone_test([1], [2], [3], [float("nan")])
    with pytest.raises(DataError, match="no tables"):
        mh_tests([], [], [], [])


def test_events_interface_matches_cells() -> None:
    a, b, c, d = tables_from_events(**SPARSE_EVENTS)
    assert np.array_equal(b, np.array(SPARSE_EVENTS["n_t"]) - np.array(SPARSE_EVENTS["events_t"]))
    assert np.array_equal(d, np.array(SPARSE_EVENTS["n_c"]) - np.array(SPARSE_EVENTS["events_c"]))


def test_printed_beside_a_mantel_haenszel_odds_ratio() -> None:
    """[metafor] rma.mh(measure="OR", ai, n1i, ci, n2i) on this review's primary mortality set
    (analysis_mortality.csv, scenario primary, 10 studies, 2 double zero): MH = 19.2763180771311
    (p 1.13100513965099e-05), TA = 1.75561956445553 (p 0.972121376330513), k.pos 8."""
    import pandas as pd

    data = pd.DataFrame({
        "study": ["adas", "dilogo", "haberle", "lanzoni", "leng", "meng", "shi", "shu", "xu", "zhu"],
        "events_t": [3, 10, 1, 2, 0, 0, 0, 0, 2, 0], "n_t": [10, 20, 5, 12, 7, 9, 65, 12, 26, 29],
        "events_c": [6, 16, 10, 7, 1, 0, 0, 3, 6, 2], "n_c": [10, 20, 18, 12, 3, 9, 35, 29, 18, 29]})
    for zero_cell in ("revman", "none"):  # the tests use the raw tables whatever the pooling convention
        res = meta_binary(data, zero_cell=zero_cell)
        d = res.to_dict()
        assert d["cmh"] == pytest.approx(19.2763180771311, rel=REL)
        assert d["cmh_p"] == pytest.approx(1.13100513965099e-05, rel=1e-8)
        assert d["tarone"] == pytest.approx(1.75561956445553, rel=REL) and d["tarone_df"] == 7
        assert d["tarone_p"] == pytest.approx(0.972121376330513, rel=1e-8)
        assert "Cochran-Mantel-Haenszel Test:    CMH = 19.2763, df = 1, p-val < 0.0001" in str(res)
    assert meta_binary(data, measure="RR").mh_tests is None
    assert "cmh" not in meta_binary(data, method="IV").to_dict()
