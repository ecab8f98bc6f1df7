"""The display format of the reports (mscmeta.review.display), the settings banner and pages
of mscmeta.bundle.report, and the figures that changed shape for reviewers (one forest style,
the secondary overview by scale, the sensitivity plot without rows of another scale)."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_DATA
from mscmeta.bundle import pages as P
from mscmeta.bundle import report as R
from mscmeta.plots import intervals as I
from mscmeta.plots import style
from mscmeta.plots.forest import symmetric_limits
from mscmeta.review import display as D
from mscmeta.review import extract as E
from mscmeta.review import reporting as REP
from mscmeta.review import secondary as S
from mscmeta.review import secondary_sheets as SD
from mscmeta.review import tables as T
from mscmeta.review import update as U


# ----------------------------------------------------------------------------- cell formats


def test_numbers_read_as_in_a_journal():
    assert D.fmt_estimate(0.190987, 0.0912, 0.4001) == "0.19 [0.09, 0.40]"
    assert D.fmt_estimate(-0.06, -0.12, -0.0004) == "-0.06 [-0.12, 0.00]"  # never a negative zero
    assert D.fmt_number(-0.004) == "0.00" and D.fmt_number(-0.006) == "-0.01"
    assert D.fmt_pvalue(0.000013) == "<0.001" and D.fmt_pvalue(0.0004) == "<0.001"
    assert D.fmt_pvalue(0.0234) == "0.023" and D.fmt_pvalue(0.9998) == ">0.999"
    assert D.fmt_percent(12.34) == "12%" and D.fmt_integer(12.0) == "12"
    for missing in (np.nan, None, pd.NA, ""):
        assert D.fmt_number(missing) == D.MISSING and D.fmt_text(missing) == D.MISSING
    assert D.fmt_yes_no(True) == "yes" and D.fmt_yes_no(np.False_) == "no" and D.fmt_text(False) == "no"


def test_a_displayed_table_has_human_headers_no_index_and_no_raw_values():
    df = pd.DataFrame({"study_id": ["a", "b"], "estimate": [0.190987, np.nan], "ci_low": [0.09, np.nan],
                       "ci_high": [0.4, np.nan], "p_value": [0.000013, np.nan], "Q_df": [3, 2],
                       "estimable": [True, False], "note": [None, "not estimable"]})
    shown = D.show_table(df, "Pooled")
    assert list(shown.frame.columns) == ["Study ID", "Estimate [95% CI]", "P", "df", "Estimable", "Note"]
    text = shown._repr_html_() + shown.to_markdown()
    for raw in ("NaN", "<NA>", "True", "False", "0.190987", "ci_low", "Q_df", "0.000"):
        assert raw not in text, raw
    assert "0.19 [0.09, 0.40]" in text and "<0.001" not in shown.to_markdown().split("|")[1] and "&lt;0.001" in text
    assert f"{D.MISSING} not applicable or not reported." in shown.notes
    assert 'id="tbl-pooled"' in text and "http" not in shown._repr_html_()  # deterministic id, nothing from the web


def test_save_table_keeps_the_csv_tidy_and_the_markdown_twin_in_the_display_format(tmp_path):
    df = pd.DataFrame({"label": ["Adas 2021"], "estimate": [0.5], "ci_low": [0.25], "ci_high": [1.0], "p_value": [0.0004]})
    D.save_table(df, tmp_path / "x.csv", T.pooled_spec("OR"))
    assert (tmp_path / "x.csv").read_text().splitlines()[0] == "label,estimate,ci_low,ci_high,p_value"
    md = (tmp_path / "x.md").read_text()
    assert "| OR [95% CI] |" in md and "0.50 [0.25, 1.00]" in md and "<0.001" in md


def test_public_text_drops_references_to_documents_outside_the_bundle():
    text = ("Kirkham AM et al. 2022 (https://pmc.ncbi.nlm.nih.gov/articles/PMC9299509); evidence dossier §5.1–5.2; "
            "mortality addendum §6 (Wei arm sizes).")
    assert D.public_text(text) == "Kirkham AM et al. 2022 (https://pmc.ncbi.nlm.nih.gov/articles/PMC9299509)."
    assert D.public_text("Sham-controlled (double-blind per the research notes); deaths counted.") == (
        "Sham-controlled; deaths counted.")
    raw = E.load_raw(FIXTURE_DATA)
    for table in (raw.studies, raw.scenario_definitions, raw.mortality):
        for value in table.astype(str).to_numpy().ravel():
            assert not D.mentions_internal_document(D.public_text(value)), value


def test_long_tokens_get_break_opportunities_in_html_only():
    url = "https://pmc.ncbi.nlm.nih.gov/articles/PMC9299509/table/tbl2"
    assert "\u200b" in D.breakable(url) and D.breakable(url).replace("\u200b", "") == url
    assert D.breakable("short words only") == "short words only"


# ----------------------------------------------------------------------------- stage 01 tables


def test_characteristics_and_flow_are_counted_from_the_sheets():
    raw = E.load_raw(FIXTURE_DATA)
    chars = E.characteristics_table(raw, "primary")
    assert list(chars.columns) == ["study_id", "study", "methods", "participants", "interventions", "outcomes", "notes"]
    assert set(chars["study_id"]) == set(E.scenario_studies(raw, "primary")["study_id"])
    flow = E.study_flow(raw, "primary").set_index("step")
    mort = E.analysis_mortality(raw, "primary")
    assert flow.at["identified", "count"] == len(raw.studies)
    assert flow.at["mortality", "count"] == len(mort)
    zero = int(((mort["events_msc"] == 0) & (mort["events_control"] == 0)).sum())
    assert flow.at["estimable", "count"] == len(mort) - zero and flow.at["mortality", "side_count"] == zero


def test_prisma_checklist_covers_every_item_of_prisma_2020():
    table = REP.prisma_checklist()
    assert len(table) == 42 and table["item"].is_unique  # 27 items, 42 with their sub-items (Page 2021, Table 1)
    assert set(table["status"]) <= {"reported", "partly", "not reported", "not applicable"}
    assert "42 PRISMA 2020 items" in REP.checklist_markdown(table)


# ----------------------------------------------------------------------------- report helpers


def test_banner_names_every_parameter_but_no_path_and_is_deterministic(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    params = {"data_dir": str(tmp_path), "out_dir": "/tmp/x", "scenario": "kirkham-like", "measure": "RR",
              "model": "fixed", "zero_cell": "revman", "tau2_method": "REML"}
    banner = P.banner_html("03-pool", params)
    assert banner == P.banner_html("03-pool", params)
    text = re.sub(r"<[^>]+>", " ", banner)
    for word in ("kirkham-like", "RR (risk ratio)", "fixed effect", "RevMan", "REML (random-effects analyses only)",
                 "Data checksum: sha256", "(1 sheets)"):
        assert word in text, word
    assert str(tmp_path) not in banner and "/tmp/x" not in banner
    assert re.search(r"commit [0-9a-f]{12}|not a git checkout", banner)
    before = P.data_checksum(tmp_path)
    (tmp_path / "a.csv").write_text("x\n2\n")
    assert P.data_checksum(tmp_path) != before


def test_with_code_pages_show_paths_relative_to_the_project():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f'data_dir = "{P.PROJECT_ROOT / "data" / "raw"}"\nout_dir = "/tmp/run/.staging/03"')
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells = [cell]
    P.hide_machine_paths(nb)
    assert nb.cells[0].source == 'data_dir = "data/raw"\nout_dir = "…/03"'


def test_parameters_are_read_from_the_defaults_and_papermill():
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('scenario: str = "primary"  # x\nmeasure = "OR"  # y')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    nb.metadata["papermill"] = {"parameters": {"measure": "RR"}}
    assert P.notebook_parameters(nb) == {"scenario": "primary", "measure": "RR"}


# ----------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def secondary_report():
    style.use_style()
    return S.analyse_secondary(SD.load_secondary(FIXTURE_DATA))


def test_secondary_forest_plots_are_the_revman_forest_with_msc_and_control(secondary_report):
    for oa in secondary_report.pooled():
        fig = S.outcome_forest_plot(oa)
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " ".join(t.get_text() for t in fig.texts)
        assert "MSC" in texts and "Control" in texts and "Heterogeneity" in texts and "Test for overall effect" in texts
        assert oa.info.label in texts  # titled
        if oa.info.kind == "continuous":
            assert "Mean (SD)" in texts
        plt.close(fig)


def test_overview_draws_each_outcome_on_the_scale_of_its_forest_plot(secondary_report):
    panels, _ = __import__("mscmeta.review.secondary_figures", fromlist=["x"]).overview_rows(secondary_report)
    for key, rows in panels.items():
        for r in rows:
            assert key.split(" ", 1)[0] == r["analysis"].measure == r["oa"].primary.measure
    fig = S.overview_plot(secondary_report)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "favours" not in texts.lower()  # no verdict words beside the estimates
    plt.close(fig)


def test_sensitivity_plot_keeps_rows_of_another_measure_off_the_axis():
    table = pd.DataFrame({
        "group": ["primary", "measure", "measure"], "analysis": ["primary", "RR", "RD"], "measure": ["OR", "RR", "RD"],
        "estimate": [0.2, 0.4, -0.1], "ci_low": [0.1, 0.2, -0.2], "ci_high": [0.4, 0.8, 0.0], "k": [5, 5, 5],
    })
    fig = I.sensitivity_plot(table)
    ax = fig.axes[0]
    drawn = [x for line in ax.lines for x in line.get_xdata() if line.get_linestyle() == "-"]
    assert 0.8 not in drawn and 0.4 not in [round(x, 3) for c in ax.collections for x, _ in c.get_offsets()]
    assert "RR: other scale, not drawn" in " ".join(t.get_text() for t in ax.texts)
    plt.close(fig)


def test_one_axis_policy_for_every_forest():
    assert symmetric_limits([0.21, 0.12, 0.43], ratio=True) == (0.1, 10.0)
    assert symmetric_limits([0.6, 1.9], ratio=True) == (0.5, 2.0)
    assert symmetric_limits([-3.66, -8.1, 1.0], ratio=False) == (-10.0, 10.0)
    assert symmetric_limits([-0.06, -0.12], ratio=False) == (-0.2, 0.2)


def test_papermill_knows_the_type_of_every_notebook_parameter():
    import papermill

    from conftest import ROOT, STAGES

    for stage in STAGES:
        params = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{stage}.ipynb"))
        untyped = [name for name, p in params.items() if p["inferred_type_name"] in ("None", "", None)]
        assert not untyped, f"{stage}: no type annotation for {untyped}"


def test_prose_never_prints_a_negative_zero():
    from mscmeta.review.text import fmt_ci

    assert fmt_ci(-0.06, -0.12, -0.001) == "-0.06 (95% CI -0.12 to 0.00)"


# ----------------------------------------------------------------------------- report 06


def _raw_values(frame: pd.DataFrame) -> list[str]:
    """Cells that print a raw value: NaN, booleans, a negative zero or a float at full precision."""
    bad = re.compile(r"\bnan\b|<NA>|\bTrue\b|\bFalse\b|-0\.0+\b|\d\.\d{5,}|dossier|addendum|research notes",
                     re.IGNORECASE)
    return [str(v) for v in frame.to_numpy().ravel() if bad.search(str(v))]


def test_every_table_of_report_06_reads_as_in_a_journal():
    """The tables of stage 06 (on the fixture data) in the display format: no raw values, estimates
    with their intervals, P values and percentages formatted; notes without project documents."""
    inputs = U.load_update_inputs(FIXTURE_DATA, FIXTURE_DATA, U.compared_scenarios("primary"))
    specs = U.update_specs("OR", "revman")
    runs = U.run_updated(inputs, specs)
    tsa_runs = U.run_tsa(inputs, U.UPDATED_SCENARIOS, specs[0].options)
    sof, _ = U.sof_table(inputs, runs, "primary", "updated-all")
    shown = [
        U.show_table(U.missing_table(inputs, U.compared_scenarios("primary")), U.MISSING_DEATHS),
        U.show_table(U.updated_pooled_table(runs, specs), U.updated_pooled_spec("OR")),
        U.show_table(U.updated_studies_table(runs), U.UPDATED_STUDIES),
        U.show_table(U.period_table(inputs, U.UPDATED_SCENARIOS, specs[0].options), U.period_spec("OR")),
        U.show_table(U.cumulative_by_date(inputs, U.UPDATED_SCENARIOS, specs[0].options), U.cumulative_by_date_spec("OR")),
        U.show_table(U.tsa_view(U.tsa_table(tsa_runs)), U.TSA),
        U.show_table(U.sof_tidy(sof), U.SOF_TIDY),
        U.show_table(U.certainty_rows(sof), U.CERTAINTY),
        U.sof_report_table(sof),
    ]
    for table in shown:
        assert len(table.frame), table.title
        assert not _raw_values(table.frame), (table.title, _raw_values(table.frame)[:3])
        assert not any(D.mentions_internal_document(n) for n in table.notes), table.title
    pooled = shown[1].frame
    assert pooled["OR [95% CI]"].str.fullmatch(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]|\u2014").all()
    assert pooled["P"].str.fullmatch(r"<0\.001|>0\.999|\d\.\d{3}|\u2014").all()
    sof_shown = shown[-1]
    assert any(n.startswith("a. ") for n in sof_shown.notes)  # the lettered reasons follow the table
    assert "Footnotes" not in sof_shown.frame.columns


def test_report_06_is_on_the_front_page_and_the_methods_page():
    assert "06-update-and-certainty" in P.STAGE_TITLES
    assert {"forest_updated", "tsa_mortality"} <= {stem for stem, _ in R.KEY_FIGURES}
    methods = (P.PAGES_DIR / "methods.html.j2").read_text(encoding="utf-8")
    for term in ("Trial sequential analysis", "GRADE", "summary-of-findings", "2022"):
        assert term in methods, term
    checklist = REP.prisma_checklist().set_index("item")
    assert "report 06" in checklist.loc["15", "where"].lower() and checklist.loc["22", "status"] == "reported"
    for item in ("13d", "13f", "20d"):  # notebook 03's section "Models for sparse data"
        assert "models for sparse data" in checklist.loc[item, "where"].lower(), item
