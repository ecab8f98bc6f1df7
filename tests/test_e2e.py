"""End to end: ``make reproduce`` on the small fixture data set runs every notebook,
writes the tables, figures and HTML, is a no-op when nothing changed, reruns only what
depends on a changed file, gives byte-identical outputs twice, and a broken notebook
fails the run with its name and cell while the earlier outputs stay intact."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, STAGES, reproduce_into, run_make
from mscmeta.bundle.bench_setup import clone_tree
from test_update import R_MH_REVMAN, R_REML_HKSJ

pytestmark = pytest.mark.e2e

EXPECTED_TABLES = (
    "studies.csv", "analysis_mortality.csv", "eligibility.csv", "provenance_summary.csv", "table1.csv",
    "risk_of_bias.csv",
    "mortality_studies.csv", "pooled_mortality.csv", "sensitivity_mortality.csv", "reproduction_scorecard.csv",
    "subgroups_mortality.csv",
    "secondary_outcomes.csv", "adverse_events.csv",
    "influence_mortality.csv", "cumulative_mortality.csv", "small_study_tests.csv", "what_would_it_take.csv",
    "claims.csv", "headline.csv", "characteristics.csv", "study_flow.csv", "scenario_definition.csv",
    "prisma_checklist.csv", "sparse_models_mortality.csv", "fragility_mortality.csv",
    "cumulative_by_date.csv", "updated_pooled.csv", "updated_studies.csv", "tsa.csv", "tsa_looks.csv",
    "summary_of_findings.csv", "claims_updated.csv", "missing_deaths.csv", "certainty_assessment.csv",
    "updated_period_subgroups.csv",
)
EXPECTED_FIGURES = (
    "prisma_flow", "prisma_flow_ours", "forest_mortality", "sensitivity_mortality", "cumulative_mortality", "funnel_mortality",
    "forest_subgroup_severity", "forest_subgroup_doses", "secondary_overview", "sparse_models_mortality",
    "cumulative_by_date", "forest_updated", "tsa_mortality",
)


def _digest(root, subdirs=("tables", "figures")):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in subdirs
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def test_every_stage_ran_and_wrote_its_outputs(e2e_run):
    assert not (e2e_run / "lab").exists() and not (e2e_run / "failed").exists()
    for stage in STAGES:
        executed = e2e_run / "notebooks" / f"{stage}.ipynb"
        assert executed.exists(), f"{stage} did not run"
        nb = json.loads(executed.read_text())
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{stage} has error outputs"
    for name in EXPECTED_TABLES:
        table = e2e_run / "tables" / name
        assert table.exists(), f"missing table {name}"
        assert table.with_suffix(".md").exists(), f"missing Markdown twin of {name}"
        assert len(table.read_text().splitlines()) >= 2, f"{name} has no rows"
    for stem in EXPECTED_FIGURES:
        assert (e2e_run / "figures" / f"{stem}.png").exists(), f"missing figure {stem}.png"
    for png in (e2e_run / "figures").glob("*.png"):
        assert png.with_suffix(".svg").exists(), f"{png.name} has no SVG twin"
    assert (e2e_run / "tables" / "summary_of_findings.html").exists(), "missing formatted summary of findings"
    assert not list(e2e_run.rglob("*.tmp")), "temporary files left behind"


def test_html_reports_exist_for_every_stage(e2e_run):
    html = e2e_run / "html"
    for stage in STAGES:
        full = (html / f"{stage}.html").read_text()
        report = (html / f"{stage}-report.html").read_text()
        assert "highlight hl-ipython3" in full and "highlight hl-ipython3" not in report, f"{stage}: code-free report shows code"
        for page in (full, report):
            assert not re.search(r'<script[^>]+src="https?://', page), "HTML loads a script from the network"
            assert not re.search(r'<img[^>]+src="(?!data:)', page), "HTML links an image instead of embedding it"
    report = (html / "06-update-and-certainty-report.html").read_text()
    assert "/.staging/" not in report and "object at 0x" not in report, "06: code-free report shows internals"
    index = (html / "index.html").read_text()
    for stage in STAGES:
        assert f'href="{stage}-report.html"' in index and f'href="{stage}.html"' in index
    assert "data:image/png;base64," in index
    assert 'href="methods.html"' in index and (html / "methods.html").exists()
    assert "Headline" in index and "Published (Yao et al. 2022)" in index


def _private_copy(e2e_run, e2e_raw, tmp_path):
    """Copies of a finished run and its data, mtimes kept (so everything is up to date)."""
    out, raw = tmp_path / "out", tmp_path / "raw"
    shutil.copytree(e2e_run, out)
    shutil.copytree(e2e_raw, raw)
    return out, raw


def _stages_make_would_run(out, raw, *extra):
    dry = run_make("-n", "reproduce", f"OUT={out}", f"RAW={raw}", *extra).stdout
    return dry, sorted(set(re.findall(r"pipeline run \S*/(\d\d-[a-z-]+)\.ipynb", dry)))


#: The stages a change to each sheet reruns (and only those).
SHEET_DEPENDANTS = {
    "risk_of_bias.csv": ["01-extract", "02-quality-assess", "03-pool", "04-subgroup", "06-update-and-certainty"],
    "adverse_events.csv": ["01-extract", "05-secondary-outcomes", "06-update-and-certainty"],
    "secondary_outcomes.csv": ["01-extract", "05-secondary-outcomes", "06-update-and-certainty"],
    "later_syntheses.csv": ["01-extract", "06-update-and-certainty"],
    "grade_judgements.csv": ["01-extract", "06-update-and-certainty"],
}


def test_second_run_does_nothing_and_a_data_change_reruns_only_its_dependants(e2e_run, e2e_raw, tmp_path):
    """Each sheet's change is judged on its own copy of the finished run (``make -n``); one change is
    then rebuilt for real, after which the run is up to date again."""
    for sheet, dependants in SHEET_DEPENDANTS.items():
        out, raw = _private_copy(e2e_run, e2e_raw, tmp_path / sheet)
        assert run_make("-q", "reproduce", f"OUT={out}", f"RAW={raw}", check=False).returncode == 0, (
            "make reproduce is not up to date right after a full run"
        )
        (raw / sheet).touch()
        assert _stages_make_would_run(out, raw)[1] == dependants, sheet
    run_make("reproduce", f"OUT={out}", f"RAW={raw}")
    assert run_make("-q", "reproduce", f"OUT={out}", f"RAW={raw}", check=False).returncode == 0


def test_parameters_pass_through_and_trigger_only_their_stages(e2e_run, e2e_raw, tmp_path):
    out, raw = _private_copy(e2e_run, e2e_raw, tmp_path)
    dry, rerun = _stages_make_would_run(out, raw, "MEASURE=RR")
    assert "-p 'measure=RR'" in dry
    # 02 draws its summary plots with the weights of the primary analysis, so it takes the parameters too
    assert rerun == ["02-quality-assess", "03-pool", "04-subgroup", "06-update-and-certainty"], rerun
    dry, rerun = _stages_make_would_run(out, raw, "SCENARIO=with-2022-trials")
    assert rerun == sorted(STAGES), rerun


def _touched(path, out, raw):
    """The stages make would rerun after *path* (a package file) changed; its mtime is restored."""
    stat = path.stat()
    try:
        os.utime(path)  # now: newer than the copied run's outputs, never in the future (make would remake forever)
        return _stages_make_would_run(out, raw)[1]
    finally:
        os.utime(path, (stat.st_atime, stat.st_mtime))


def test_a_package_change_reruns_only_the_stages_that_import_it(e2e_run, e2e_raw, tmp_path):
    out, raw = _private_copy(e2e_run, e2e_raw, tmp_path)
    lib = ROOT / "lib" / "mscmeta"
    assert _touched(lib / "plots" / "funnel.py", out, raw) == ["03-pool"]
    # stage 06 grades the secondary outcomes with stage 05's analyses (mscmeta.review.secondary)
    assert _touched(lib / "review" / "secondary_figures.py", out, raw) == ["05-secondary-outcomes",
                                                                          "06-update-and-certainty"]
    # the secondary outcomes' and the updated forest plots are drawn by the one forest style too
    assert _touched(lib / "plots" / "forest.py", out, raw) == ["03-pool", "04-subgroup", "05-secondary-outcomes",
                                                              "06-update-and-certainty"]
    assert _touched(lib / "plots" / "tsa.py", out, raw) == ["06-update-and-certainty"]
    assert _touched(lib / "engine" / "tau2.py", out, raw) == sorted(STAGES)


# Two runs give byte-identical outputs (every file of outputs/): test_e2e_robustness.py, whose
# concurrency test builds the bundle a second time in another folder.


def test_broken_notebook_fails_the_run_by_name_and_keeps_earlier_outputs(e2e_run, e2e_raw, tmp_path):
    import nbformat

    out = tmp_path / "out"
    shutil.copytree(e2e_run, out)  # copy2 keeps mtimes: everything is up to date
    src = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", src)
    broken = src / "03-pool.ipynb"
    nb = nbformat.read(broken, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken for the test')"))
    nbformat.write(nb, broken)
    before = _digest(out, ("tables", "figures", "notebooks", "html"))
    proc = reproduce_into(out, e2e_raw, f"NB_SRC={src}", check=False)
    assert proc.returncode != 0
    assert "03-pool.ipynb failed in cell" in proc.stderr and "deliberately broken" in proc.stderr, proc.stderr
    assert _digest(out, ("tables", "figures", "notebooks", "html")) == before


def test_a_fresh_clone_builds_stage_06_on_the_project_data_and_agrees_with_r(tmp_path):
    """From a fresh clone (what ``git clone`` gives: :func:`mscmeta.bundle.bench_setup.clone_tree`, no
    outputs), ``make`` builds stage 06 on the project's own data (``data/raw``), running stage 02 first
    for its risk of bias. The clone uses this checkout's venv (``.venv`` linked, its ``lib/`` first on
    ``PYTHONPATH``, so the clone's package is the one imported) to avoid a second install.

    The updated pooled odds ratios it writes to ``outputs/tables/updated_pooled.csv`` equal the values
    R metafor computed from the rows of ``updated_studies.csv`` (``test_update.R_MH_REVMAN`` and
    ``R_REML_HKSJ``: R 4.2.2, metafor 3.8.1, calls in their docstrings)."""
    tree = clone_tree(tmp_path / "clone", ROOT)
    assert not (tree / "outputs" / "tables").exists()
    (tree / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env["PYTHONPATH"] = str(tree / "lib")
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(tree), "outputs/notebooks/06-update-and-certainty.ipynb"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = re.findall(r"^\[(\d\d-[a-z-]+)\] done in ", proc.stdout + proc.stderr, flags=re.M)
    assert sorted(ran) == ["02-quality-assess", "06-update-and-certainty"], ran
    out = tree / "outputs"
    for name in ("updated_pooled.csv", "updated_studies.csv", "cumulative_by_date.csv", "tsa.csv",
                 "summary_of_findings.csv", "summary_of_findings.html", "missing_deaths.csv", "claims_updated.csv"):
        assert (out / "tables" / name).exists(), name
    for stem in ("forest_updated", "cumulative_by_date", "tsa_mortality"):
        assert (out / "figures" / f"{stem}.png").exists() and (out / "figures" / f"{stem}.svg").exists(), stem
    pooled = pd.read_csv(out / "tables" / "updated_pooled.csv")
    for (scenario, variant), values in R_MH_REVMAN.items():
        row = pooled[(pooled["scenario"] == scenario) & (pooled["variant"] == variant) & (pooled["analysis"] == "MH fixed")]
        np.testing.assert_allclose(np.log(row[["estimate", "ci_low", "ci_high"]].to_numpy(float)[0]), np.log(values),
                                   atol=1e-6, err_msg=f"{scenario} {variant}")
    for (scenario, variant), values in R_REML_HKSJ.items():
        row = pooled[(pooled["scenario"] == scenario) & (pooled["variant"] == variant)
                     & (pooled["analysis"] == "REML + HKSJ")]
        np.testing.assert_allclose(np.log(row[["estimate", "ci_low", "ci_high", "pi_low", "pi_high"]].to_numpy(float)[0]),
                                   np.log(values[:5]), atol=1e-6, err_msg=f"{scenario} {variant}")


def test_html_rendered_in_parallel_equals_html_rendered_one_page_at_a_time(e2e_run, tmp_path):
    """``make`` renders the stage pages with --jobs (forked workers); one at a time gives the same bytes."""
    out = tmp_path / "out"
    shutil.copytree(e2e_run, out)
    shutil.rmtree(out / "html")
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "mscmeta.bundle.report", "--out", str(out), "--jobs", "1"],
                   check=True, capture_output=True, cwd=ROOT)
    assert _digest(out, ("html",)) == _digest(e2e_run, ("html",))
