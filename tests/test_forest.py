"""RevMan-style forest plots: what the rows say, how the figure is built, determinism."""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mscmeta.bundle import io
from mscmeta.plots import forest, style
from mscmeta.engine.binary import meta_binary

# dat.nielweise2007 (18 RCTs, one double zero: Yucel 2004), as printed by metadat 1.2.0
# (research note meta-analysis-tools.md §4.6).
NIELWEISE = pd.DataFrame(
    [
        ("Bach 1996", 0, 116, 3, 117), ("George 1997", 1, 44, 3, 35), ("Maki 1997", 2, 208, 9, 195),
        ("Raad 1997", 0, 130, 7, 136), ("Heard 1998", 5, 151, 6, 157), ("Collin 1999", 1, 98, 4, 139),
        ("Hannan 1999", 1, 174, 3, 177), ("Marik 1999", 1, 74, 2, 39), ("Pierce 2000", 1, 97, 19, 103),
        ("Sheng 2000", 1, 113, 2, 122), ("Chatzinikolaou 2003", 0, 66, 7, 64), ("Corral 2003", 0, 70, 1, 58),
        ("Brun-Buisson 2004", 3, 188, 5, 175), ("Leon 2004", 6, 187, 11, 180), ("Yucel 2004", 0, 118, 0, 105),
        ("Moretti 2005", 0, 252, 1, 262), ("Rupp 2005", 1, 345, 3, 362), ("Osma 2006", 4, 64, 1, 69),
    ],
    columns=["study", "events_t", "n_t", "events_c", "n_c"],
)


@pytest.fixture(autouse=True)
def _style_and_close():
    style.use_style()
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def revman_fit():
    return meta_binary(NIELWEISE, measure="OR", method="MH", model="fixed", zero_cell="revman")


def test_pooled_text_matches_revman_reference(revman_fit):
    # RevMan-style MH OR on dat.nielweise2007 = 0.3171 [0.2083, 0.4827], k = 17, Q = 16.4064
    # (metafor rma.mh(add=.5, to="only0", drop00=TRUE) and PythonMeta 1.26, which follows
    # RevMan 5's algorithms; research note meta-analysis-tools.md §4.6). RevMan prints 2 decimals.
    table = forest.forest_table(revman_fit)
    total = table[table["kind"] == "total"].iloc[0]
    assert total["effect"] == "0.32 [0.21, 0.48]"
    assert total["weight"] == "100.0%"
    het = table[table["label"].str.startswith("Heterogeneity")].iloc[0]["label"]
    assert het.startswith("Heterogeneity: Chi² = 16.41, df = 16 (P = ")
    assert "Tau²" not in het  # fixed-effect model: no Tau² (RevMan)


def test_double_zero_study_is_listed_as_not_estimable(revman_fit):
    table = forest.forest_table(revman_fit)
    yucel = table[table["label"] == "Yucel 2004"].iloc[0]
    assert yucel["effect"] == "Not estimable"
    assert yucel["weight"] == ""
    assert (yucel["events_t"], yucel["n_t"], yucel["events_c"], yucel["n_c"]) == ("0", "118", "0", "105")
    rows = forest.forest_rows(revman_fit)
    assert all(np.isnan(r.est) for r in rows if r.label == "Yucel 2004")


def test_totals_row_sums_all_studies_including_not_estimable(revman_fit):
    table = forest.forest_table(revman_fit)
    total = table[table["kind"] == "total"].iloc[0]
    events = table[table["kind"] == "events"].iloc[0]
    assert int(total["n_t"]) == NIELWEISE["n_t"].sum() and int(total["n_c"]) == NIELWEISE["n_c"].sum()
    assert int(events["events_t"]) == NIELWEISE["events_t"].sum()
    assert int(events["events_c"]) == NIELWEISE["events_c"].sum()


def test_random_effects_lines_show_tau2_and_prediction_interval():
    res = meta_binary(NIELWEISE, measure="OR", method="IV", model="random", tau2_method="REML", hksj=True, zero_cell="revman")
    table = forest.forest_table(res)
    assert table["label"].str.startswith("Heterogeneity: Tau² = ").any()
    assert table["label"].str.startswith("Test for overall effect: t = ").any()
    assert (table["kind"] == "pi").sum() == 1
    assert "IV, Random (REML, HKSJ), 95% CI" in forest.effect_column_title(res)


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.998, "= 1.00"), (0.05, "= 0.05"), (0.0072, "= 0.007"), (0.00031, "= 0.0003"), (0.00005, "< 0.0001"), (2e-7, "< 0.00001")],
)
def test_p_values_are_printed_like_revman(p, text):
    assert forest.format_p_revman(p) == text


def test_figure_has_log_axis_favours_labels_and_fixed_size(revman_fit):
    fig = forest.forest_plot(revman_fit)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "Favours MSC" in texts and "Favours control" in texts
    assert "Not estimable" in texts
    plot_ax = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert len(plot_ax) == 1
    width, height = fig.get_size_inches()
    assert width == pytest.approx(style.PAGE_WIDTH)
    # Height grows linearly with the number of rows.
    fig_small = forest.forest_plot(meta_binary(NIELWEISE.iloc[:5], measure="OR"))
    n_big, n_small = len(forest.forest_rows(revman_fit)), len(forest.forest_rows(meta_binary(NIELWEISE.iloc[:5], measure="OR")))
    per_row = (height - fig_small.get_size_inches()[1]) / (n_big - n_small)
    assert per_row == pytest.approx(forest.ROW_HEIGHT)


def test_risk_difference_uses_a_linear_axis():
    res = meta_binary(NIELWEISE, measure="RD", method="MH", zero_cell="revman")
    fig = forest.forest_plot(res)
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)
    assert "Risk Difference" in forest.effect_column_title(res)


def test_column_width_falls_back_to_compact_layout():
    short_names = NIELWEISE[NIELWEISE["study"].str.len() <= 14]
    fig = forest.forest_plot(meta_binary(short_names, measure="OR"), width=style.COLUMN_WIDTH, fontsize=5)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "n/N" in texts and "0/118" in texts


def test_too_narrow_width_is_a_clear_error(revman_fit):
    with pytest.raises(ValueError, match="too narrow"):
        forest.forest_plot(revman_fit, width=1.5)


def test_bad_arm_labels_are_rejected(revman_fit):
    with pytest.raises(ValueError, match="two arms"):
        forest.forest_plot(revman_fit, arm_labels=("MSC",))


def test_non_result_is_rejected():
    with pytest.raises(TypeError, match="MetaResult"):
        forest.forest_plot(object())


def test_saving_twice_gives_identical_svg_and_png(tmp_path, revman_fit):
    digests = []
    for name in ("a", "b"):
        fig = forest.forest_plot(revman_fit, labels={"Bach 1996": "Bach et al. 1996"})
        paths = io.save_figure(fig, tmp_path / name, close=True)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]


def test_rob_column_adds_letters_and_legend(revman_fit):
    rob = pd.DataFrame({"Randomisation": ["low", "high"], "Overall": ["some concerns", "high"]}, index=["Bach 1996", "Maki 1997"])
    fig = forest.forest_plot(revman_fit, rob=rob)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("Risk of bias: (A) Randomisation; (B) Overall") for t in texts)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 15), st.integers(15, 40), st.integers(0, 15), st.integers(15, 40)),
        min_size=2, max_size=8,
    )
)
def test_weights_of_estimable_studies_sum_to_100(rows):
    df = pd.DataFrame(
        [(f"S{i}", a, n1, c, n2) for i, (a, n1, c, n2) in enumerate(rows)],
        columns=["study", "events_t", "n_t", "events_c", "n_c"],
    )
    if ((df["events_t"] == 0) & (df["events_c"] == 0)).all():
        return
    res = meta_binary(df, measure="OR")
    rows_ = forest.forest_rows(res)
    weights = [r.weight_value for r in rows_ if r.kind == "study" and np.isfinite(r.weight_value)]
    assert sum(weights) == pytest.approx(100.0)
    shown = [r for r in rows_ if r.kind == "study"]
    assert sum(r.effect == "Not estimable" for r in shown) == int((~res.studies["estimable"]).sum())
