"""Subgroup analyses and the test for subgroup differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.subgroups import subgroup_analysis, test_subgroup_differences
from mscmeta.engine.validation import DataError

# metafor dat.bcg (trial, tpos, tneg, cpos, cneg, alloc)
BCG = [
    (1, 4, 119, 11, 128, "random"), (2, 6, 300, 29, 274, "random"), (3, 3, 228, 11, 209, "random"),
    (4, 62, 13536, 248, 12619, "random"), (5, 33, 5036, 47, 5761, "alternate"), (6, 180, 1361, 372, 1079, "alternate"),
    (7, 8, 2537, 10, 619, "random"), (8, 505, 87886, 499, 87892, "random"), (9, 29, 7470, 45, 7232, "random"),
    (10, 17, 1699, 65, 1600, "systematic"), (11, 186, 50448, 141, 27197, "systematic"),
    (12, 5, 2493, 3, 2338, "systematic"), (13, 27, 16886, 29, 17825, "systematic"),
]


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    return pd.DataFrame([{"study": str(t), "events_t": a, "n_t": a + b, "events_c": c, "n_c": c + d, "alloc": g}
                         for t, a, b, c, d, g in BCG])


def test_fixed_effect_test_for_subgroup_differences(bcg):
    sg = subgroup_analysis(bcg, "alloc", measure="RR", method="IV")
    # verified locally (metafor 3.8-1, meta-analysis-tools.md 4.13; not published): common-effect model with
    # allocation as factor, QM(df = 2) = 19.8654, p = 4.86e-05
    assert abs(sg.Q_between - 19.8654) <= 0.5e-4
    assert sg.df_between == 2
    assert sg.p_between == pytest.approx(4.86e-05, abs=0.005e-05)
    assert list(sg.subgroups) == ["random", "alternate", "systematic"]


def test_fixed_q_between_is_total_minus_within(bcg):
    # identity for inverse-variance fixed-effect models: Q_total = Q_between + sum(Q_within)
    sg = subgroup_analysis(bcg, "alloc", measure="OR", method="IV")
    within = sum(r.Q for r in sg.subgroups.values())
    assert sg.Q_between == pytest.approx(sg.overall.Q - within, rel=1e-10)


def test_random_effects_subgroups_use_their_own_tau2(bcg):
    sg = subgroup_analysis(bcg, "alloc", measure="RR", method="IV", model="random", tau2_method="REML")
    # each subgroup is its own REML fit (RevMan; meta tau.common=FALSE): equals fitting the subgroup alone
    alone = meta_binary(bcg[bcg["alloc"] == "systematic"], measure="RR", method="IV", model="random",
                        tau2_method="REML")
    assert sg.subgroups["systematic"].tau2 == pytest.approx(alone.tau2, rel=1e-12)
    est = [r.estimate for r in sg.subgroups.values()]
    se = [r.se for r in sg.subgroups.values()]
    assert (sg.Q_between, sg.df_between, sg.p_between) == test_subgroup_differences(est, se)
    # (metafor's mixed-effects QM(2) = 1.7675 differs: it assumes one tau2 common to all subgroups)


def test_q_between_formula():
    # two subgroups, estimates 0 and 1, SEs 1: theta_bar = 0.5, Q = 2 * 0.25 = 0.5 with 1 df
    q, df, p = test_subgroup_differences([0.0, 1.0], [1.0, 1.0])
    assert q == pytest.approx(0.5) and df == 1
    assert p == pytest.approx(0.4795001221869535, rel=1e-12)  # R: pchisq(0.5, 1, lower.tail=FALSE)
    assert np.isnan(test_subgroup_differences([0.3], [0.1])[0])


def test_single_study_and_not_estimable_subgroups():
    df = pd.DataFrame({
        "study": ["a", "b", "c", "d", "e"],
        "events_t": [2, 3, 1, 0, 0],
        "n_t": [20, 25, 30, 15, 12],
        "events_c": [5, 6, 4, 0, 0],
        "n_c": [21, 24, 29, 14, 13],
        "grp": ["many", "many", "single", "zero", "zero"],
    })
    for model in ("fixed", "random"):
        sg = subgroup_analysis(df, "grp", measure="OR", model=model)
        assert sg.subgroups["zero"] is None
        assert sg.notes["zero"].startswith("not estimable")
        single = sg.subgroups["single"]
        assert single.k == 1 and sg.notes["single"] == "single study"
        # the single study's own (corrected-if-needed) log OR
        assert single.estimate == pytest.approx(np.log((1 * 25) / (29 * 4)), rel=1e-12)
        assert single.model == model and np.isnan(single.Q_p)
        assert sg.df_between == 1  # two estimable subgroups
        frame = sg.summary_frame()
        assert frame["subgroup"].tolist() == ["many", "single", "zero", "overall"]
        assert frame.loc[2, "k"] == 0 and frame.loc[2, "note"].startswith("not estimable")
        assert frame.loc[3, "events_c"] == 15 and frame.loc[3, "studies"] == 5
        assert single.to_dict()["Q_p"] is None and single.to_dict()["I2"] is None


def test_generic_subgroups():
    data = pd.DataFrame({"study": list("abcdef"), "yi": [0.1, 0.3, 0.2, -0.4, -0.1, -0.3],
                         "vi": [0.04, 0.05, 0.03, 0.06, 0.02, 0.05], "g": ["x", "x", "x", "y", "y", "y"]})
    sg = subgroup_analysis(data, "g", kind="generic", model="fixed", measure="MD")
    within = sum(r.Q for r in sg.subgroups.values())
    assert sg.Q_between == pytest.approx(sg.overall.Q - within, rel=1e-10)
    assert sg.overall.measure == "MD"
    re = subgroup_analysis(data, "g", kind="generic", model="random", tau2_method="DL")
    assert re.overall.model == "random" and set(re.subgroups) == {"x", "y"}


def test_subgroup_errors(bcg):
    with pytest.raises(DataError, match="missing subgroup column 'region'"):
        subgroup_analysis(bcg, "region")
    bad = bcg.copy()
    bad.loc[3, "alloc"] = None
    with pytest.raises(DataError, match="row 4, column 'alloc': missing subgroup"):
        subgroup_analysis(bad, "alloc", source="bcg.csv")
    with pytest.raises(DataError, match="unknown kind"):
        subgroup_analysis(bcg, "alloc", kind="survival")


def test_subgroup_order_does_not_change_results(bcg):
    a = subgroup_analysis(bcg, "alloc", measure="OR")
    b = subgroup_analysis(bcg.iloc[::-1].reset_index(drop=True), "alloc", measure="OR")
    assert a.Q_between == pytest.approx(b.Q_between, rel=1e-10)
    for name in a.subgroups:
        assert a.subgroups[name].estimate == pytest.approx(b.subgroups[name].estimate, rel=1e-12)


@pytest.mark.parametrize(("method", "qm", "qm_p", "tau2", "estimates"), [
    # R 4.2.2, metafor 3.8.1: rma(yi, vi, mods = ~ factor(alloc), data=escalc("RR", dat.bcg), method=m);
    # subgroup estimates from rma(yi, vi, data=subset, tau2=<common tau2>)
    ("REML", 1.767513041773, 0.41322769394331, 0.361502855889479,
     {"alternate": (-0.517955810531561, 0.44119400081867), "random": (-0.965774034173421, 0.267243862472841),
      "systematic": (-0.428917662876644, 0.344945051809233)}),
    ("DL", 1.43491245192235, 0.487992019883142, 0.559568750127703,
     {"alternate": (-0.512530155547725, 0.542122205020838), "random": (-0.990525495066523, 0.31810127677676),
      "systematic": (-0.408299342459161, 0.414170292901791)}),
])
def test_common_tau2_test_equals_metafor_mods(bcg, method, qm, qm_p, tau2, estimates):
    sg = subgroup_analysis(bcg, "alloc", measure="RR", method="IV", model="random", tau2_method=method,
                           tau2_common=True)
    assert sg.Q_between == pytest.approx(qm, rel=1e-6) and sg.df_between == 2
    assert sg.p_between == pytest.approx(qm_p, rel=1e-6)
    assert sg.tau2_common == pytest.approx(tau2, rel=1e-6)
    for name, (est, se) in estimates.items():
        assert (sg.subgroups[name].estimate, sg.subgroups[name].se) == pytest.approx((est, se), rel=1e-6)
        assert sg.subgroups[name].tau2 == pytest.approx(tau2, rel=1e-6)
    frame = sg.summary_frame()
    assert set(frame["between_test"]) == {"common tau2 (metafor mods = ~ factor)"}
    # the RevMan test with separate tau2 per subgroup, REML: 1.86144614123119 (computed in R from the
    # three separate rma(method="REML") fits); named differently
    if method == "REML":
        separate = subgroup_analysis(bcg, "alloc", measure="RR", method="IV", model="random", tau2_method="REML")
        assert separate.Q_between == pytest.approx(1.86144614123119, rel=1e-6)
        assert set(separate.summary_frame()["between_test"]) == {"separate tau2 per subgroup (RevMan)"}


def test_common_tau2_knapp_hartung_f_test(bcg):
    """metafor: rma(yi, vi, mods = ~ factor(alloc), method="REML", test="knha"): QM 0.966219985592622
    (F(2, 10)), p 0.413384043387496."""
    sg = subgroup_analysis(bcg, "alloc", measure="RR", method="IV", model="random", tau2_method="REML", hksj=True,
                           tau2_common=True)
    assert sg.Q_between == pytest.approx(0.966219985592622, rel=1e-6)
    assert sg.p_between == pytest.approx(0.413384043387496, rel=1e-6)
    assert sg.between_dist == "F(2, 10)" and "F(2, 10) test" in sg.test_name()


def test_common_tau2_is_refused_for_fixed_effect(bcg):
    with pytest.raises(DataError, match="applies to random-effects models"):
        subgroup_analysis(bcg, "alloc", measure="RR", tau2_common=True)
