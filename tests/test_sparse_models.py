"""Notebook 03's models for sparse data (mscmeta.review.sparse) on the primary scenario.

Every estimate is an engine result whose agreement with R is tested in the engine's own
tests; here the literals are the R values for this data set (R 4.2.2, metafor 3.8-1,
bayesmeta 3.4 sourced; the calls are in tests/test_glmm.py, tests/test_bayes.py and
tests/test_fragility.py), to check that the section runs each model on the right data.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.options import BinaryOptions
from mscmeta.plots.intervals import model_comparison_plot
from mscmeta.review.mortality import ARM_COLUMNS
from mscmeta.review import sparse, tables
from mscmeta.review.display import show_table

PRIMARY = pd.DataFrame({
    "study_id": ["adas2021", "dilogo2021", "haberle2021", "lanzoni2021", "leng2020", "meng2020", "shi2021", "shu2020",
                 "xu2021", "zhu2021"],
    "label": ["Adas 2021", "Dilogo 2021", "Häberle 2021", "Lanzoni 2021", "Leng 2020", "Meng 2020", "Shi 2021",
              "Shu 2020", "Xu 2021", "Zhu 2021"],
    "events_msc": [3, 10, 1, 2, 0, 0, 0, 0, 2, 0], "n_msc": [10, 20, 5, 12, 7, 9, 65, 12, 26, 29],
    "events_control": [6, 16, 10, 7, 1, 0, 0, 3, 6, 2], "n_control": [10, 20, 18, 12, 3, 9, 35, 29, 18, 29],
})

#: log OR per row (R): rma.mh(add=c(.5,.5), to=c("only0","only0"), drop00=c(TRUE,TRUE)); rma.mh default;
#: rma.peto; rma.glmm UM.FS, UM.RS (lme4 run to convergence; 1e-3: Laplace log-determinant, see test_glmm),
#: CM.AL, CM.EL (at tau2 = 0: method="EE"); bayesmeta posterior medians of mu (half-normal 0.5, Turner).
R_LOG_OR = [(-1.57829601461877, 1e-9), (-1.74166361942152, 1e-9), (-1.51604421838865, 1e-9),
            (-1.72239961587732, 1e-6), (-1.67421132893297, 1e-3), (-0.922620856705346, 1e-6),
            (-1.65726058504974, 1e-6), (-1.58463803717, 1e-5), (-1.5820770134, 1e-5)]


@pytest.fixture(scope="module")
def section():
    primary = meta_binary(PRIMARY, columns=ARM_COLUMNS)  # the default run's primary analysis (MH, RevMan)
    name, frag, note = sparse.primary_fragility(PRIMARY, primary)
    assert note == ""
    frag_table = sparse.fragility_table(PRIMARY, name, frag, note)
    table = sparse.sparse_models(PRIMARY, BinaryOptions(), fragility=frag)
    return table, frag_table


def test_one_row_per_model_with_the_r_values(section):
    table, _ = section
    assert list(table.columns) == list(sparse.SPARSE_COLUMNS)
    assert table["model"].tolist() == [
        "MH, RevMan 0.5 correction", "MH, no correction", "Peto", "GLMM UM.FS", "GLMM UM.RS", "GLMM CM.AL",
        "exact conditional (CM.EL)", "Bayesian, half-normal(0.5)", "Bayesian, Turner mortality"]
    for (log_or, tol), est in zip(R_LOG_OR, table["estimate"], strict=True):
        assert math.log(est) == pytest.approx(log_or, abs=tol * max(1.0, abs(log_or)))
    assert (table["k"] == 8).all() and table["group"].tolist()[0] == "primary"
    assert table.loc[7, "prob_or_below_1"] == pytest.approx(0.999924717469, abs=1e-6)
    assert table["interval"].tolist()[-1] == "95% CrI (central)" and table["note"].eq("").all()


def test_fragility_beside_the_primary_result(section):
    table, frag = section
    assert table.loc[0, "fragility_index"] == 12 and np.isnan(table.loc[1, "fragility_index"])
    assert list(frag.columns) == list(sparse.FRAGILITY_COLUMNS) and len(frag) == 12
    # authors' code (frag_ma): final MSC deaths 3 10 5 2 0 7 0 0 2 0, control 6 16 10 7 0 0 0 3 6 2
    last = frag.groupby(["study_id", "arm"])["events_after"].last().to_dict()
    assert last == {("haberle2021", "MSC"): 5, ("meng2020", "MSC"): 7, ("leng2020", "control"): 0}
    assert frag["label"].iloc[0] == "Meng 2020" and frag["ci_high"].iloc[-1] > 1 > frag["ci_high"].iloc[-2]


def test_prose_is_computed_from_the_tables(section):
    table, frag = section
    text = sparse.sparse_markdown(table, frag, PRIMARY)
    assert "every interval excludes 1" in text
    assert f"{table['estimate'].min():.2f} (MH, no correction)" in text
    assert "fragility index of the primary result is 12" in text and "7 more deaths in the MSC arm of Meng 2020" in text
    assert "in studies without any death in either arm" in text
    assert "rests on 69 deaths in 10 studies" in text


def test_a_model_that_cannot_be_fitted_is_a_row_with_the_reason():
    two = PRIMARY.iloc[[0, 5]].reset_index(drop=True)  # one informative study left for the GLMMs
    table = sparse.sparse_models(two, BinaryOptions())
    glmm = table[table["family"] == "GLMM"]
    assert (glmm["k"] == 0).all() and glmm["note"].str.startswith("not estimable: GLMM").all()
    assert table.loc[0, "k"] == 1


def test_fragility_goes_on_the_row_of_the_analysis_it_is_computed_for():
    name, frag, note = sparse.primary_fragility(PRIMARY, None)
    assert name == sparse.MH_REVMAN and note.startswith("computed for")
    table = sparse.sparse_models(PRIMARY, BinaryOptions(), fragility=frag, fragility_analysis=sparse.MH_NONE)
    assert np.isnan(table.loc[0, "fragility_index"]) and table.loc[1, "fragility_index"] == 12
    assert "another model" in sparse.sparse_markdown(table, sparse.fragility_table(PRIMARY, name, frag, note), PRIMARY)


def test_the_section_displays_in_the_report_format(section):
    table, frag = section
    shown = show_table(table, tables.sparse_models_spec(table)).to_markdown()
    shown += show_table(frag, tables.fragility_spec(frag)).to_markdown()
    for leak in ("nan", "NaN", "True", "False", "None", "-0.00", "meng2020", "DataFrame"):
        assert leak not in shown.replace("<0.001", "").replace(">0.999", ""), leak
    assert "| MH, RevMan 0.5 correction |" in shown and "0.21 [0.10, 0.43]" in shown and "| 12 |" in shown
    assert tables.fragility_spec(frag).title == "Fragility index of the pooled result (MH, RevMan 0.5 correction): 12"
    assert "Note" not in shown.split("\n")[0]  # no empty Note column
    assert sparse.sparse_models_caption(table).startswith("Pooled mortality odds ratio")


def test_the_figure_has_one_row_per_model_on_a_log_axis(section):
    table, _ = section
    fig = model_comparison_plot(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == table["model"].tolist()
    assert ax.get_xscale() == "log"
    drawn = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if len(c.get_offsets())])
    assert sorted(drawn) == pytest.approx(sorted(table["estimate"]))
    plt.close(fig)
