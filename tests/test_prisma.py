"""PRISMA 2020 flow diagram (Page MJ et al. BMJ 2021;372:n71, Figure 1): every box is
drawn with its count, unknown counts as "not reported", at a fixed size."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mscmeta.review.sheets import load_raw
from mscmeta.bundle.paths import PROJECT_ROOT
from mscmeta.plots.prisma import FIGURE_SIZE, PRISMA_BOXES, count_text, prisma_flow

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "data_small"


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def search_table(counts: dict[str, int | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "box": list(PRISMA_BOXES),
            "label": [f"Box {b}" for b in PRISMA_BOXES],
            "count": pd.array([counts.get(b) for b in PRISMA_BOXES], dtype="Int64"),
        }
    )


def test_count_text():
    assert count_text(3644) == "n = 3644"
    assert count_text(0) == "n = 0"
    assert count_text(None) == "n = not reported"
    assert count_text(pd.NA) == "n = not reported"
    assert count_text(float("nan")) == "n = not reported"


def test_real_search_counts_are_drawn():
    raw = load_raw(FIXTURE)
    fig = prisma_flow(raw.search)
    try:
        assert tuple(fig.get_size_inches()) == pytest.approx(FIGURE_SIZE)
        drawn = "\n".join(texts(fig))
        known = raw.search.dropna(subset=["count"])
        for _, row in known.iterrows():
            assert f"(n = {int(row['count'])})" in drawn
        unknown = raw.search["count"].isna().sum()
        assert drawn.count("(n = not reported)") == unknown
        for label in raw.search["label"]:
            assert label.split()[0] in drawn
    finally:
        plt.close(fig)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=100000)),
                min_size=len(PRISMA_BOXES), max_size=len(PRISMA_BOXES)))
def test_every_box_shows_its_count_or_not_reported(values):
    counts = dict(zip(PRISMA_BOXES, values))
    fig = prisma_flow(search_table(counts), title=None)
    try:
        drawn = texts(fig)
        for box, value in counts.items():
            block = next(t for t in drawn if f"Box {box}\n" in t)
            assert f"Box {box}\n({count_text(value)})" in block
        assert tuple(fig.get_size_inches()) == pytest.approx(FIGURE_SIZE)
    finally:
        plt.close(fig)


def test_missing_or_duplicated_box_is_an_error():
    table = search_table({})
    with pytest.raises(ValueError, match="reports_assessed"):
        prisma_flow(table[table["box"] != "reports_assessed"])
    with pytest.raises(ValueError, match="duplicated boxes \\['records_screened'\\]"):
        prisma_flow(pd.concat([table, table[table["box"] == "records_screened"]]))


def test_svg_is_deterministic(tmp_path):
    from mscmeta.bundle.io import save_figure

    raw = load_raw(FIXTURE)
    digests = []
    for run in ("a", "b"):
        fig = prisma_flow(raw.search)
        save_figure(fig, tmp_path / run / "prisma_flow", close=True)
        digests.append(((tmp_path / run / "prisma_flow.svg").read_bytes(), (tmp_path / run / "prisma_flow.png").read_bytes()))
    assert digests[0] == digests[1]
