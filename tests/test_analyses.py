"""The analysis set of notebooks 03 and 04: specs, tables, sensitivity, subgroups, small-study tests."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mscmeta.plots import intervals as I
from mscmeta.review import figures as F
from mscmeta.review import inputs as IN
from mscmeta.review import mortality as M
from mscmeta.review import sensitivity as SE
from mscmeta.review import subgroup as G
from mscmeta.plots import forest
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.options import BinaryOptions


def frame(rows, **extra) -> pd.DataFrame:
    """Analysis rows in our column names (study_id, events_msc, n_msc, events_control, n_control)."""
    df = pd.DataFrame(rows, columns=["study_id", "events_msc", "n_msc", "events_control", "n_control"])
    df["label"] = [f"Study {s}" for s in df["study_id"]]
    defaults = {
        "randomised": True, "severity": "severe", "severity_subgroup": "severe", "doses": 1,
        "msc_source": "umbilical cord", "country": "China", "pub_date": "2021-01-01", "source_level": "primary paper",
        "derived": False,
    }
    for key, value in {**defaults, **extra}.items():
        df[key] = value if not isinstance(value, list) else value
    return df


# dat.bcg (metafor docs/reference/escalc.html; research note meta-analysis-tools.md §4.1).
_BCG = [(4, 119, 11, 128), (6, 300, 29, 274), (3, 228, 11, 209), (62, 13536, 248, 12619), (33, 5036, 47, 5761),
        (180, 1361, 372, 1079), (8, 2537, 10, 619), (505, 87886, 499, 87892), (29, 7470, 45, 7232),
        (17, 1699, 65, 1600), (186, 50448, 141, 27197), (5, 2493, 3, 2338), (27, 16886, 29, 17825)]
BCG = frame([(f"bcg{i + 1:02d}", a, a + b, c, c + d) for i, (a, b, c, d) in enumerate(_BCG)])

# statsmodels stats/tests/test_contingency_tables.py::TestStratified1 (R mantelhaen.test), five strata with
# zero cells: ai = (0,3,6,5,2), bi = (6,3,0,1,0), ci = (0,0,2,6,5), di = (5,6,4,0,0)
# (research note meta-analysis-tools.md §4.7).
_AI, _BI, _CI, _DI = (0, 3, 6, 5, 2), (6, 3, 0, 1, 0), (0, 0, 2, 6, 5), (5, 6, 4, 0, 0)
STRATA = frame([(f"s{i + 1}", a, a + b, c, c + d) for i, (a, b, c, d) in enumerate(zip(_AI, _BI, _CI, _DI))])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# ---------------------------------------------------------------- specs and options


def test_default_primary_is_revman_mh_fixed_or_and_comparators_are_distinct():
    specs = M.main_specs()
    assert specs[0].name == "primary"
    assert specs[0].options == BinaryOptions(measure="OR", method="MH", model="fixed", zero_cell="revman")
    names = [s.name for s in specs]
    assert names == ["primary", "MH exact", "DL random", "REML + HKSJ"]  # "MH RevMan" equals the primary
    # with zero_cell="none" the primary is the exact MH and RevMan's convention becomes a comparator
    assert [s.name for s in M.main_specs(zero_cell="none", tau2_method="REML")] == ["primary", "MH RevMan", "DL random", "REML + HKSJ"]


@pytest.mark.parametrize(("kwargs", "name"), [({"measure": "HR"}, "measure"), ({"model": "mixed"}, "model"),
                                              ({"zero_cell": "tacc"}, "zero_cell"), ({"tau2_method": "XX"}, "tau2_method")])
def test_bad_parameter_is_a_clear_error(kwargs, name):
    with pytest.raises(M.AnalysisOptionError, match=rf"parameter {name}=.*not valid; use one of"):
        M.main_specs(**kwargs)
    assert issubclass(M.AnalysisOptionError, ValueError)


# ---------------------------------------------------------------- pooled table


def test_pooled_table_reports_mh_on_the_ratio_scale():
    specs = M.main_specs()
    results = M.main_analyses(BCG, specs)
    table = M.pooled_table(results, specs, BCG, "test")
    prim = table.iloc[0]
    # dat.bcg MH OR 0.6229 [0.5748, 0.6750], Q = 163.9426, I² 92.68 % (metafor docs/reference/rma.mh.html,
    # checked against Stata metan `fixed ... or`; research note meta-analysis-tools.md §4.3)
    assert prim["estimate"] == pytest.approx(0.6229, abs=5e-5)
    assert (prim["ci_low"], prim["ci_high"]) == pytest.approx((0.5748, 0.6750), abs=5e-5)
    assert prim["Q"] == pytest.approx(163.9426, abs=5e-5)
    assert prim["I2"] == pytest.approx(92.68, abs=5e-3)
    assert prim["k"] == 13 and prim["Q_df"] == 12
    assert prim["events_msc"] == sum(a for a, _, _, _ in _BCG)
    assert list(table.columns) == list(M.POOLED_COLUMNS)


def test_pooled_row_converts_prediction_interval_to_ratio_scale():
    # dat.bcg log RR, REML: PI on the RR scale [0.15, 1.55], estimate exp(-0.7145) (metafor
    # docs/reference/predict.rma.html and rma.uni.html; meta-analysis-tools.md §4.2)
    res = meta_binary(BCG, measure="RR", method="IV", model="random", tau2_method="REML", columns=M.ARM_COLUMNS)
    row = M.pooled_row("reml", res, BCG, "test")
    assert row["estimate"] == pytest.approx(np.exp(-0.7145), abs=5e-5)
    assert round(row["pi_low"], 2) == 0.15 and round(row["pi_high"], 2) == 1.55
    assert row["tau2"] == pytest.approx(0.3132, abs=5e-5)


def test_exact_mh_has_no_continuity_correction():
    # R mantelhaen.test on statsmodels TestStratified1: OR = 7, 95% CI [1.026713, 47.725133]
    # (statsmodels stats/tests/test_contingency_tables.py; meta-analysis-tools.md §4.7)
    specs = M.main_specs()
    results = M.main_analyses(STRATA, specs)
    exact = M.pooled_table(results, specs, STRATA, "t").set_index("analysis").loc["MH exact"]
    assert exact["estimate"] == pytest.approx(7.0, rel=1e-6)
    assert (exact["ci_low"], exact["ci_high"]) == pytest.approx((1.026713, 47.725133), rel=1e-6)


def test_studies_table_keeps_double_zero_studies_without_weight():
    data = frame([("a", 2, 20, 6, 20), ("b", 0, 15, 0, 15), ("c", 1, 10, 4, 12)])
    res = meta_binary(data, columns=M.ARM_COLUMNS)
    table = M.mortality_studies_table(res, data)
    assert list(table.columns) == list(M.MORTALITY_STUDY_COLUMNS)
    row_b = table.set_index("study_id").loc["b"]
    assert not row_b["estimable"] and np.isnan(row_b["weight"]) and "no events in either arm" in row_b["note"]
    row_a = table.set_index("study_id").loc["a"]
    assert row_a["estimate"] == pytest.approx(np.exp(row_a["yi"]))
    assert row_a["estimate"] == pytest.approx((2 / 18) / (6 / 14))  # odds ratio of the raw 2x2 table
    assert table["weight"].sum() == pytest.approx(100.0)


def test_all_double_zero_data_gives_a_not_estimable_row_not_a_crash():
    data = frame([("a", 0, 20, 0, 20), ("b", 0, 15, 0, 15)])
    specs = M.main_specs()
    results = M.main_analyses(data, specs)
    assert results["primary"] is None
    table = M.pooled_table(results, specs, data, "t")
    assert (table["k"] == 0).all() and table["estimate"].isna().all()
    assert "not estimable" in M.pooled_markdown(table, results)
    assert isinstance(F.forest_figure(None, None), plt.Figure)


# ---------------------------------------------------------------- sensitivity


def sens_data():
    return frame(
        [("a", 2, 20, 6, 20), ("b", 3, 25, 5, 24), ("c", 1, 10, 4, 12), ("d", 0, 12, 3, 11), ("e", 4, 30, 6, 28)],
        randomised=[True, True, False, False, False], severity=["severe", "critical", "mixed", "severe", "critical"],
    )


def test_sensitivity_analyses_cover_every_requested_group():
    data = sens_data()
    opts = M.main_specs()[0].options
    other = {"alt": data.iloc[:3]}
    table = SE.sensitivity_analyses(data, opts, scenario_data=other, high_risk={"c", "d"})
    groups = set(table["group"])
    assert groups == {"primary", "leave-one-out", "design", "risk of bias", "severity", "scenario", "zero cells", "measure"}
    loo = table[table["group"] == "leave-one-out"]
    assert len(loo) == 5 and (loo["k"] == 4).all()
    # leave-one-out equals pooling the remaining studies
    without_a = meta_binary(data.iloc[1:], columns=M.ARM_COLUMNS)
    assert loo.iloc[0]["estimate"] == pytest.approx(np.exp(without_a.estimate))
    rct = table[table["group"] == "design"].iloc[0]
    assert rct["k"] == 2 and rct["studies"] == "a; b"
    rob = table[table["group"] == "risk of bias"].iloc[0]
    assert rob["studies"] == "a; b; e" and "2 studies excluded" in rob["analysis"]
    assert table[table["group"] == "severity"].iloc[0]["k"] == 4
    assert set(table[table["group"] == "measure"]["measure"]) == {"RR", "RD"}
    assert table[table["group"] == "zero cells"].iloc[0]["zero_cell"] == "none"


def test_sensitivity_without_rob_or_rcts_is_reported_not_crashed():
    data = sens_data().assign(randomised=False)
    table = SE.sensitivity_analyses(data, M.main_specs()[0].options, high_risk=None)
    assert "not available" in table[table["group"] == "risk of bias"].iloc[0]["note"]
    assert table[table["group"] == "design"].iloc[0]["note"] == "no randomised trial in this set"
    fig = I.sensitivity_plot(table)
    assert fig.axes[0].get_xscale() == "log"
    assert "no randomised trial in this set" in SE.sensitivity_markdown(table)


def test_influence_and_cumulative_tables():
    data = sens_data().assign(pub_date=["2021-05-01", "2020", "2021-01-02", "2022-01-01", "2020-06-01"])
    opts = M.main_specs()[0].options
    infl = SE.influence_table(data, opts)
    assert list(infl["study_id"]) == ["a", "b", "c", "d", "e"] and "IV fixed" in infl["model"].iloc[0]
    res = M.pool(data, opts)
    cum = SE.cumulative_table(res, data)
    assert list(cum["study_id"]) == ["b", "e", "c", "a", "d"]  # by publication date
    last = cum.iloc[-1]
    assert last["estimate"] == pytest.approx(np.exp(res.estimate)) and last["k"] == 5
    assert I.cumulative_plot(cum, "OR").axes[0].get_xscale() == "log"


# ---------------------------------------------------------------- small-study effects


def test_small_study_table_applies_or_only_tests_and_reports_too_few_studies():
    data = sens_data()
    res = M.pool(data, M.main_specs()[0].options)
    table = SE.small_study_table(res, data)
    assert list(table["test"]) == ["Egger", "Begg", "Peters", "Harbord", "Trim and fill (L0)"]
    assert table["caveat"].str.contains("at least 10 studies").all()
    rr = M.pool(data, M.main_specs("RR")[0].options)
    rr_table = SE.small_study_table(rr, data).set_index("test")
    assert rr_table.loc["Peters", "caveat"].startswith("not applicable")
    two = data.iloc[:2]
    few = SE.small_study_table(M.pool(two, M.main_specs()[0].options), two)
    assert few.set_index("test").loc["Egger", "caveat"].startswith("not computed")
    assert "Caveat" in SE.small_study_markdown(table)


# ---------------------------------------------------------------- subgroups


def test_single_study_and_all_zero_subgroups_are_reported_not_crashed():
    data = frame(
        [("a", 2, 20, 6, 20), ("b", 3, 25, 5, 24), ("c", 0, 10, 0, 12), ("d", 0, 12, 0, 11), ("e", 1, 30, 6, 28)],
        severity=["critical", "critical", "severe", "severe", "mixed"],
    )
    factor = next(f for f in G.SUBGROUP_FACTORS if f.name == "severity")
    sg = G.run_subgroups(data, factor, M.main_specs()[0].options)
    rows = G.subgroup_table(G.subgroup_rows(factor, data, sg)).set_index("subgroup")
    assert list(rows.index) == ["severe", "critical", "mixed", "overall"]
    assert rows.loc["severe", "k"] == 0 and rows.loc["severe", "note"].startswith("not estimable")
    assert rows.loc["mixed", "k"] == 1 and rows.loc["mixed", "note"].startswith("single study")
    assert rows.loc["mixed", "estimate"] == pytest.approx((1 / 29) / (6 / 22))
    assert rows.loc["critical", "df_between"] == 1  # two estimable subgroups
    # the subgroup forest plot lists the studies of the all-zero subgroup as "Not estimable"
    fig_rows = forest.subgroup_forest_rows(sg, data=G.grouped(data, factor), study_column="study_id")
    severe_rows = [r for r in fig_rows if r.label in ("c", "d")]
    assert len(severe_rows) == 2 and all(r.effect == "Not estimable" for r in severe_rows)
    assert isinstance(G.subgroup_figure(data, factor, sg), plt.Figure)
    assert "not estimable" in G.subgroup_markdown(G.subgroup_table(G.subgroup_rows(factor, data, sg)))


def test_factor_with_one_subgroup_gives_one_note_row():
    data = sens_data()
    factor = next(f for f in G.SUBGROUP_FACTORS if f.name == "country")
    assert G.run_subgroups(data, factor, M.main_specs()[0].options) is None
    rows = G.subgroup_rows(factor, data, None)
    assert len(rows) == 1 and rows[0]["note"].startswith("single subgroup")


def test_subgroup_labels_for_doses_design_and_continent():
    data = frame([("a", 1, 10, 2, 10), ("b", 1, 10, 2, 10), ("c", 1, 10, 2, 10)],
                 doses=[1, 3, pd.NA], randomised=[True, False, True], country=["Turkey", "France", "USA"])
    by_name = {f.name: f for f in G.SUBGROUP_FACTORS}
    assert list(by_name["doses"].derive(data)) == ["1 dose", "3 doses", "not reported / variable"]
    assert list(by_name["design"].derive(data)) == ["randomised", "non-randomised", "randomised"]
    # UN M49: Turkey is in Western Asia, the USA in the Americas
    assert list(by_name["continent"].derive(data)) == ["Asia", "Europe", "Americas"]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(8, 30), st.integers(0, 8), st.integers(8, 30)), min_size=3, max_size=7))
def test_subgroup_totals_add_up_to_the_overall_row(rows):
    data = frame([(f"s{i}", a, n1, c, n2) for i, (a, n1, c, n2) in enumerate(rows)],
                 randomised=[i % 2 == 0 for i in range(len(rows))])
    factor = next(f for f in G.SUBGROUP_FACTORS if f.name == "design")
    opts = M.main_specs("RD")[0].options  # RD is always estimable
    sg = G.run_subgroups(data, factor, opts)
    table = G.subgroup_table(G.subgroup_rows(factor, data, sg))
    subs, overall = table[table["subgroup"] != "overall"], table[table["subgroup"] == "overall"].iloc[0]
    for col in ("events_msc", "n_msc", "events_control", "n_control"):
        assert subs[col].sum() == overall[col]
