"""robvis-style risk-of-bias figures: they render, carry one symbol per judgement, use
robvis's colours and shapes, and save byte-identically.

Colour and shape references: robvis (McGuinness & Higgins, Res Syn Meth 2021;12:55-61),
repository mcguinlu/robvis, ``R/helpers.R`` ``get_colour`` (colour = "cochrane":
low "#02C100", some concerns "#E2DF07", high "#BF0000", critical "#820000", no
information "#4EA1F7") and ``R/rob_traffic_light.R`` ``scale_shape_manual`` (RoB 2:
h = 120 "x", s = 45 "-", l = 43 "+", n = 63 "?"; ROBINS-I: c = 33 "!", s = 120 "x",
m = 45 "-", l = 43 "+", n = 63 "?").
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from mscmeta.bundle.io import save_figure
from mscmeta.engine.rob_tools import OVERALL, ROB2, ROBINS_I
from mscmeta.review.rob_sheet import load_risk_of_bias, validate_risk_of_bias
from mscmeta.bundle.paths import DATA_RAW
from mscmeta.plots.robplots import ROB_COLOURS, ROB_SYMBOLS, rob_columns_for_forest, summary_bar, traffic_light
from mscmeta.plots.style import PAGE_WIDTH, use_style
from test_quality import NI, assessment

ROBVIS_ROB2 = {"low": "#02C100", "some concerns": "#E2DF07", "high": "#BF0000"}
ROBVIS_ROBINS = {"low": "#02C100", "moderate": "#E2DF07", "serious": "#BF0000", "critical": "#820000", NI: "#4EA1F7"}


@pytest.fixture(autouse=True)
def _style():
    use_style()
    yield
    plt.close("all")


@pytest.fixture
def df() -> pd.DataFrame:
    rows = (
        assessment("a_rct", "RoB 2", ["low"] * 5)
        + assessment("b_rct", "RoB 2", ["low", "some concerns", "low", "low", "some concerns"])
        + assessment("c_rct", "RoB 2", ["some concerns", "low", "high", "low", "some concerns"])
        + assessment("a_nrs", "ROBINS-I", ["serious", NI, "low", NI, "low", "low", "moderate"])
        + assessment("b_nrs", "ROBINS-I", ["critical", "serious", "low", "low", "low", "low", "low"])
    )
    return validate_risk_of_bias(pd.DataFrame(rows))


def _symbols(fig) -> list:
    return [t for t in fig.axes[0].texts if t.get_gid() == "rob-symbol"]


def test_robvis_palette_and_shapes():
    assert ROB_COLOURS["RoB 2"] == ROBVIS_ROB2
    assert ROB_COLOURS["ROBINS-I"] == ROBVIS_ROBINS
    assert ROB_SYMBOLS["RoB 2"] == {"low": "+", "some concerns": "\u2212", "high": "X"}
    assert ROB_SYMBOLS["ROBINS-I"] == {"low": "+", "moderate": "\u2212", "serious": "X", "critical": "!", NI: "?"}


@pytest.mark.parametrize(("tool", "n_studies"), [("RoB 2", 3), ("ROBINS-I", 2)])
def test_traffic_light_one_symbol_per_cell(df, tool, n_studies):
    spec = ROB2 if tool == "RoB 2" else ROBINS_I
    fig = traffic_light(df, tool)
    symbols = _symbols(fig)
    assert len(symbols) == n_studies * (len(spec.domains) + 1)
    # Each symbol sits in its cell and matches that cell's judgement.
    rows = df[df.tool == tool]
    studies = sorted(rows.study_id.unique())
    columns = [*spec.domain_codes, OVERALL]
    for text in symbols:
        x, y = text.get_position()
        study, domain = studies[int(y)], columns[int(x)]
        judgement = rows[(rows.study_id == study) & (rows.domain == domain)].judgement.item()
        assert text.get_text() == ROB_SYMBOLS[tool][judgement]
    assert not traffic_light(df, tool, overall=False) is None


@pytest.mark.parametrize("tool", ["RoB 2", "ROBINS-I"])
def test_traffic_light_colours_match_robvis(df, tool):
    fig = traffic_light(df, tool)
    rows = df[df.tool == tool]
    collections = [c for c in fig.axes[0].collections if (c.get_gid() or "").startswith("rob-")]
    seen = {}
    for coll in collections:
        level = coll.get_gid()[4:].replace("-", " ")
        colours = {tuple(np.round(fc, 6)) for fc in coll.get_facecolors()}
        assert colours == {tuple(np.round(to_rgba(ROB_COLOURS[tool][level]), 6))}
        seen[level] = len(coll.get_offsets())
    expected = rows.judgement.value_counts().to_dict()
    assert seen == expected
    # The legend lists exactly the judgements present, in the tool's order, with robvis colours.
    legend = fig.legends[0]
    present = [j for j in (ROB2 if tool == "RoB 2" else ROBINS_I).judgements if j in expected]
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == len(present)
    for handle, level in zip(legend.legend_handles, present):
        assert to_rgba(handle.get_markerfacecolor()) == to_rgba(ROB_COLOURS[tool][level])


def test_traffic_light_labels_and_caption(df):
    fig = traffic_light(df, "RoB 2", labels={"a_rct": "Zed 2020", "b_rct": "Alpha 2021"})
    ax_texts = [t.get_text() for t in fig.axes[0].texts]
    assert ax_texts.index("Alpha 2021") < ax_texts.index("c_rct") < ax_texts.index("Zed 2020")
    captions = [t.get_text() for t in fig.texts]
    assert any("D1: Bias arising from the randomisation process." in c for c in captions)


def test_figure_sizes_are_fixed(df):
    a = traffic_light(df, "ROBINS-I").get_size_inches()
    b = traffic_light(df, "ROBINS-I", labels={"a_nrs": "A much longer study label 2021"}).get_size_inches()
    assert np.allclose(a, b)
    assert summary_bar(df, "RoB 2").get_size_inches()[0] == pytest.approx(PAGE_WIDTH)


def _bar_widths(fig) -> dict[tuple[str, str], float]:
    out = {}
    for patch in fig.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("rob-bar-"):
            domain, level = gid[len("rob-bar-"):].split("-", 1)
            out[(domain, level.replace("-", " "))] = patch.get_width()
    return out


def test_summary_bar_unweighted_shares(df):
    widths = _bar_widths(summary_bar(df, "RoB 2"))
    assert widths[("D1", "low")] == pytest.approx(2 / 3)
    assert widths[("D1", "some concerns")] == pytest.approx(1 / 3)
    assert widths[("Overall", "high")] == pytest.approx(1 / 3)
    for domain in [*ROB2.domain_codes, OVERALL]:
        assert sum(w for (d, _), w in widths.items() if d == domain) == pytest.approx(1.0)


def test_summary_bar_weighted_shares(df):
    weights = {"a_rct": 50.0, "b_rct": 30.0, "c_rct": 20.0, "unrelated": 99.0}
    widths = _bar_widths(summary_bar(df, "RoB 2", weights=weights))
    # D1: a, b low (80 of 100), c some concerns (20 of 100).
    assert widths[("D1", "low")] == pytest.approx(0.8)
    assert widths[("D1", "some concerns")] == pytest.approx(0.2)
    assert widths[("Overall", "low")] == pytest.approx(0.5)


def test_summary_bar_leaves_out_unweighted_studies_and_says_so(df):
    fig = summary_bar(df, "RoB 2", weights={"a_rct": 1.0, "c_rct": 3.0})
    widths = _bar_widths(fig)
    assert widths[("Overall", "high")] == pytest.approx(0.75)
    assert ("Overall", "some concerns") not in widths
    assert any("2 of 3 assessed studies" in t.get_text() and "b_rct" in t.get_text() for t in fig.texts)


def test_summary_bar_refuses_bad_weights(df):
    with pytest.raises(ValueError, match="non-negative"):
        summary_bar(df, "RoB 2", weights={"a_rct": -1.0})
    with pytest.raises(ValueError, match="positive weight"):
        summary_bar(df, "RoB 2", weights={"x": 1.0})


def test_summary_bar_colours_match_robvis(df):
    fig = summary_bar(df, "ROBINS-I")
    for patch in fig.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("rob-bar-"):
            level = gid.split("-", 3)[3].replace("-", " ")
            assert to_rgba(patch.get_facecolor()) == to_rgba(ROB_COLOURS["ROBINS-I"][level])


def test_errors_for_missing_tool_or_judgements(df):
    with pytest.raises(ValueError, match="no RoB 2 assessments"):
        traffic_light(df[df.tool == "ROBINS-I"], "RoB 2")
    with pytest.raises(ValueError, match="unknown risk-of-bias tool"):
        summary_bar(df, "QUADAS-2")
    gap = df[~((df.study_id == "b_rct") & (df.domain == "D4"))]
    with pytest.raises(ValueError, match="b_rct D4"):
        traffic_light(gap, "RoB 2")


@pytest.mark.parametrize("tool", ["RoB 2", "ROBINS-I"])
def test_saved_twice_is_byte_identical(df, tool, tmp_path):
    for name, make in (("tl", traffic_light), ("sb", summary_bar)):
        first = save_figure(make(df, tool), tmp_path / f"{name}1")
        second = save_figure(make(df, tool), tmp_path / f"{name}2")
        for a, b in zip(first, second):
            assert a.read_bytes() == b.read_bytes(), a.name


def test_rob_columns_for_forest(df):
    table = rob_columns_for_forest(df)
    assert list(table.index) == sorted(df.study_id.unique())
    assert table.loc["c_rct", "D3"] == "high" and table.loc["c_rct", "D3_symbol"] == "X"
    assert table.loc["c_rct", "D3_colour"] == "#BF0000"
    assert table.loc["b_nrs", "Overall_colour"] == "#820000" and table.loc["b_nrs", "Overall_symbol"] == "!"
    assert table.loc["a_rct", "D6"] == ""  # RoB 2 has no D6
    plain = rob_columns_for_forest(df, tool="RoB 2", style_columns=False)
    assert list(plain.columns) == [*ROB2.domain_codes, OVERALL]
    assert plain.loc["b_rct"].tolist() == ["low", "some concerns", "low", "low", "some concerns", "some concerns"]


@pytest.mark.parametrize("tool", ["RoB 2", "ROBINS-I"])
def test_real_assessments_render(tool):
    rob = load_risk_of_bias(DATA_RAW / "risk_of_bias.csv")
    n = rob[(rob.tool == tool) & (rob.domain == OVERALL)].shape[0]
    fig = traffic_light(rob, tool)
    spec = ROB2 if tool == "RoB 2" else ROBINS_I
    assert len(_symbols(fig)) == n * (len(spec.domains) + 1)
    summary_bar(rob, tool)


def test_rob_column_plugs_into_the_forest_plot(df):
    # The forest-plot helper takes judgement-only columns indexed by study_id.
    from mscmeta.engine.binary import meta_binary
    from mscmeta.plots.forest import forest_plot

    counts = pd.DataFrame(
        {"study": ["a_rct", "b_rct", "c_rct"], "events_t": [1, 2, 3], "n_t": [10, 20, 30], "events_c": [2, 4, 3], "n_c": [10, 20, 30]}
    )
    fig = forest_plot(meta_binary(counts), rob=rob_columns_for_forest(df, tool="RoB 2", style_columns=False))
    assert fig.get_size_inches()[0] > 0


def test_summary_bar_names_unweighted_studies_by_label(df):
    fig = summary_bar(df, "RoB 2", weights={"a_rct": 1.0, "c_rct": 0.0}, labels={"b_rct": "Bee 2021", "c_rct": "Cee 2020"})
    assert any("no weight: Bee 2021, Cee 2020" in t.get_text() for t in fig.texts)
