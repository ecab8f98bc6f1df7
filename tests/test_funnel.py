"""Contour-enhanced funnel plots: points, contours, caveat, determinism."""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mscmeta.bundle import io
from mscmeta.plots import funnel, style
from mscmeta.engine.binary import meta_binary

# dat.bcg (13 BCG trials), metafor docs/reference/escalc.html (research note
# meta-analysis-tools.md §4.1): tpos, tneg, cpos, cneg.
BCG = pd.DataFrame(
    [
        (4, 119, 11, 128), (6, 300, 29, 274), (3, 228, 11, 209), (62, 13536, 248, 12619), (33, 5036, 47, 5761),
        (180, 1361, 372, 1079), (8, 2537, 10, 619), (505, 87886, 499, 87892), (29, 7470, 45, 7232),
        (17, 1699, 65, 1600), (186, 50448, 141, 27197), (5, 2493, 3, 2338), (27, 16886, 29, 17825),
    ],
    columns=["tpos", "tneg", "cpos", "cneg"],
)
BCG_DATA = pd.DataFrame(
    {
        "study": [f"trial {i + 1}" for i in range(13)],
        "events_t": BCG["tpos"], "n_t": BCG["tpos"] + BCG["tneg"],
        "events_c": BCG["cpos"], "n_c": BCG["cpos"] + BCG["cneg"],
    }
)


@pytest.fixture(autouse=True)
def _style_and_close():
    style.use_style()
    yield
    plt.close("all")


def test_points_are_the_study_estimates_of_the_result():
    res = meta_binary(BCG_DATA, measure="RR", method="IV")
    pts = funnel.funnel_points(res)
    # log RR of trial 1 = -0.8893, vi = 0.3256 (metafor escalc docs, meta-analysis-tools.md §4.1)
    assert pts.loc[0, "yi"] == pytest.approx(-0.8893, abs=5e-5)
    assert pts.loc[0, "vi"] == pytest.approx(0.3256, abs=5e-5)
    assert len(pts) == 13


def test_contours_are_z_times_se_around_zero():
    res = meta_binary(BCG_DATA, measure="RR", method="IV")
    c = funnel.contours_for(res)
    line = c.contours[np.isclose(c.contours["p_level"], 0.05)]
    # Peters et al. 2008: a study at standard error s is significant at 5% beyond ±1.959964·s.
    assert np.allclose(line["high"], 1.959964 * line["se"], atol=1e-6)
    assert np.allclose(line["low"], -1.959964 * line["se"], atol=1e-6)
    assert c.estimate == pytest.approx(res.estimate)


def test_caveat_printed_below_ten_studies_only():
    few = meta_binary(BCG_DATA.iloc[:6], measure="OR")
    fig = funnel.funnel_plot(few)
    assert any("fewer than 10" in t.get_text() for t in fig.texts)
    many = meta_binary(BCG_DATA, measure="OR")
    fig = funnel.funnel_plot(many)
    assert not any("fewer than 10" in t.get_text() for t in fig.texts)
    assert funnel.funnel_caveat(10) == ""


def test_double_zero_studies_are_left_out_of_the_funnel():
    df = BCG_DATA.iloc[:5].copy()
    df.loc[len(df)] = ["empty", 0, 50, 0, 50]
    res = meta_binary(df, measure="OR")
    assert list(funnel.funnel_points(res)["study"]) == list(BCG_DATA["study"].iloc[:5])


def test_ratio_axis_is_labelled_on_the_ratio_scale():
    fig = funnel.funnel_plot(meta_binary(BCG_DATA, measure="OR"))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Odds ratio (log scale)"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in labels
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # standard error axis inverted


def test_saving_twice_is_byte_identical(tmp_path):
    res = meta_binary(BCG_DATA, measure="OR")
    digests = []
    for name in ("a", "b"):
        paths = io.save_figure(funnel.funnel_plot(res), tmp_path / name, close=True)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
