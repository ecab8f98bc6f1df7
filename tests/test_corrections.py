"""Continuity corrections (metafor ``add``/``to``, Sweeting's treatment-arm correction) and the
arcsine difference, against R metafor 3.8.1.

Reference values: R 4.2.2, metafor 3.8.1, on the seven tables of ``SPARSE`` (zero cells,
one double-zero study, unequal arms); each test names the exact call. The treatment-arm
correction is not in metafor: its reference is computed in R from the documented formula
(Sweeting, Sutton & Lambert 2004; R ``meta`` ``incr="TACC"``: ``incr.e = n.e/(n.e + n.c)``,
``incr.c = n.c/(n.e + n.c)``) and passed to ``rma.mh``/``rma`` as corrected cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.effects import ContinuityCorrection, ZeroCellRule, escalc_binary
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.validation import DataError

AI, N1, CI, N2 = [0, 2, 1, 0, 5, 3, 0], [20, 15, 30, 12, 40, 25, 10], [3, 4, 0, 0, 9, 6, 2], [10, 15, 12, 12, 40, 50, 30]
SPARSE = pd.DataFrame({"study": [f"s{i + 1}" for i in range(7)], "events_t": AI, "n_t": N1, "events_c": CI, "n_c": N2})
REL = 1e-12


def close(res, estimate, se, q, k):
    assert res.estimate == pytest.approx(estimate, rel=REL)
    assert res.se == pytest.approx(se, rel=REL)
    assert res.Q == pytest.approx(q, rel=1e-10)
    assert res.k == k


@pytest.mark.parametrize("to", ["all", "if0all"])
def test_mh_with_correction_to_all_studies(to):
    """``rma.mh(measure="OR", add=c(.5,.5), to=c(to, to), drop00=c(TRUE,TRUE))``:
    -0.630357847199432, SE 0.357398667407113, QE 3.42600420188565, k 6 (both)."""
    res = meta_binary(SPARSE, measure="OR", add=0.5, to=to)
    close(res, -0.630357847199432, 0.357398667407113, 3.42600420188565, 6)
    assert res.zero_cell == f"revman add=0.5 to={to}"
    assert "0.5 added to each cell (study estimate and MH estimator)" in res.studies["note"].iloc[1]


def test_mh_risk_ratio_with_a_small_constant():
    """``rma.mh(measure="RR", add=c(.1,.1), to=c("only0","only0"), drop00=c(TRUE,TRUE))``:
    -0.633302412152036, SE 0.331964989487947, QE 2.70636630932331."""
    res = meta_binary(SPARSE, measure="RR", add=0.1)
    close(res, -0.633302412152036, 0.331964989487947, 2.70636630932331, 6)
    assert "0.1 added to each cell" in res.studies["note"].iloc[0]


def test_metafor_convention_corrects_only_the_study_estimates():
    """``rma.mh(measure="OR", add=c(.25,0), to=c("all","none"), drop00=c(TRUE,FALSE))``:
    -0.744567299989996, SE 0.392040833816929, QE 3.43793402873182 (metafor k 7 counts the
    double-zero table, which adds nothing)."""
    res = meta_binary(SPARSE, measure="OR", zero_cell="none", add=0.25, to="all")
    close(res, -0.744567299989996, 0.392040833816929, 3.43793402873182, 6)
    assert res.zero_cell == "none add=0.25 to=all"


def test_inverse_variance_with_correction():
    """``rma(measure="OR", add=.5, to="all", drop00=TRUE, method="DL")``:
    -0.562393565950563, SE 0.370292021316076, QE 3.39231639428854."""
    res = meta_binary(SPARSE, measure="OR", method="IV", model="random", tau2_method="DL", add=0.5, to="all")
    close(res, -0.562393565950563, 0.370292021316076, 3.39231639428854, 6)


def test_peto_with_explicit_correction():
    """``rma.peto(add=c(.5,.5), to=c("only0","only0"), drop00=c(TRUE,TRUE))``:
    -0.688869350005689, SE 0.359849220621337, QE 4.21768210222037."""
    res = meta_binary(SPARSE, method="Peto", add=0.5)
    close(res, -0.688869350005689, 0.359849220621337, 4.21768210222037, 6)
    # the RevMan default never corrects Peto's estimator
    assert meta_binary(SPARSE, method="Peto").estimate != pytest.approx(res.estimate, rel=1e-3)


TA_YI = [-2.64552984412088, -0.860201265223111, 0.908568685780245, -0.709147521906387, 0, -1.36653521113943]
TA_VI = [1.98475073313783, 0.917832167832168, 4.19838252832439, 0.371940604198669, 0.568181818181818,
         4.49597994794177]


def test_treatment_arm_correction_study_estimates():
    """Sweeting et al. (2004) / R meta ``incr="TACC"``, computed in R from the formula:
    ``kT = n1/(n1+n2)``, ``kC = n2/(n1+n2)`` to the cells of zero-cell studies, then
    ``log(a d/(b c))`` and ``1/a + 1/b + 1/c + 1/d`` (double-zero study dropped)."""
    yi, vi = escalc_binary("OR", AI, N1, CI, N2, to="only0", drop00=True, correction="treatment-arm")
    keep = np.isfinite(yi)
    assert keep.tolist() == [True, True, True, False, True, True, True]
    np.testing.assert_allclose(yi[keep], TA_YI, rtol=REL, atol=1e-15)
    np.testing.assert_allclose(vi[keep], TA_VI, rtol=REL)
    # equal arms: the treatment-arm correction equals the constant one
    eq = escalc_binary("OR", [0], [12], [3], [12], correction="treatment-arm")
    assert eq[0][0] == pytest.approx(escalc_binary("OR", [0], [12], [3], [12])[0][0], rel=1e-15)


def test_treatment_arm_correction_in_mh_and_iv():
    """R: ``rma.mh(measure="OR", ai=a, bi=b, ci=c, di=d, add=c(0,0), to=c("none","none"))`` on the
    TACC-corrected cells: -0.691318732030528, SE 0.375253589737609, QE 3.50829103833686;
    ``rma(yi, vi, method="EE")`` on them: -0.655784789746995, SE 0.392154612458948."""
    res = meta_binary(SPARSE, measure="OR", correction="treatment-arm")
    close(res, -0.691318732030528, 0.375253589737609, 3.50829103833686, 6)
    assert res.zero_cell == "revman treatment-arm add=0.5 to=only0"
    assert "added to each treatment cell" in res.studies["note"].iloc[0]
    iv = meta_binary(SPARSE, measure="OR", method="IV", correction="treatment-arm")
    assert (iv.estimate, iv.se) == pytest.approx((-0.655784789746995, 0.392154612458948), rel=REL)


def test_arcsine_difference():
    """``rma(measure="AS", ai, n1i, ci, n2i, method="REML")`` (double-zero study kept, no
    correction): -0.122345645643791, SE 0.0804768910686685, QE 10.7640756574693, k 7,
    tau2 0.0189764070508085."""
    res = meta_binary(SPARSE, measure="AS", model="random", tau2_method="REML")
    close(res, -0.122345645643791, 0.0804768910686685, 10.7640756574693, 7)
    assert res.method == "IV" and res.tau2 == pytest.approx(0.0189764070508085, rel=1e-6)
    assert res.studies["yi"].iloc[3] == 0.0 and res.studies["note"].iloc[3] == "no events in either arm"
    assert res.notes[0].startswith("arcsine difference: no continuity correction")
    # definition (Rücker et al. 2009)
    assert res.studies["yi"].iloc[1] == pytest.approx(np.arcsin(np.sqrt(2 / 15)) - np.arcsin(np.sqrt(4 / 15)))


def test_correction_options_are_validated():
    with pytest.raises(DataError, match="unknown to 'some'; valid values: only0, if0all, all, none"):
        BinaryOptions(to="some")
    with pytest.raises(DataError, match="add must be a number >= 0"):
        BinaryOptions(add=-1)
    with pytest.raises(DataError, match="unknown correction 'empirical'"):
        BinaryOptions(correction="empirical")
    with pytest.raises(DataError, match="arcsine difference needs no continuity correction"):
        BinaryOptions(measure="AS", add=0.5)
    with pytest.raises(DataError, match="pooled by inverse variance"):
        BinaryOptions(measure="AS", method="Peto")
    assert BinaryOptions(measure="AS").method == "IV"
    assert BinaryOptions(correction="TACC").correction == "treatment-arm"


def test_default_rule_is_unchanged_and_keeps_its_name():
    assert ZeroCellRule.from_options("revman").label == "revman"
    assert ZeroCellRule.from_options("revman").pool == ContinuityCorrection(0.5, "only0")
    assert not ZeroCellRule.from_options("revman").peto_pool.active
    assert meta_binary(SPARSE).zero_cell == "revman"
