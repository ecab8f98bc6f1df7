"""Issue 13 end to end, through ``make``: one run at a time per outputs folder, byte-identical
outputs wherever they are built, invalid input stopped before any stage publishes, a missing
sheet named, a notebook run by hand kept away from the batch outputs.

**Determinism exclusion list** (files of ``outputs/`` a rebuild may change): empty. Every
file -- tables, figures, executed notebooks, HTML, manifests, make's bookkeeping
(``.params``, ``.deps``) and the (empty) lock file -- is compared byte for byte.

"Outputs unchanged" after a refused run compares what a run publishes (``tables``,
``figures``, ``notebooks``, ``html``, ``.manifests``); the parameter files ``.params/`` are
make's record of the *requested* parameters and are rewritten by a refused run that asked
for others, after which ``make -q`` truthfully reports the outputs as out of date.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, STAGES, reproduce_into, run_make
from robustness_battery import duplicate_row, no_mortality_scenario

pytestmark = pytest.mark.e2e

#: Files of outputs/ that two builds may give different bytes (see the module docstring).
DETERMINISM_EXCLUDED: tuple[str, ...] = ()
#: What a run publishes (compared after a refused run).
PUBLISHED = ("tables", "figures", "notebooks", "html", ".manifests")


def _digest(root, subdirs=None):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if subdirs is not None:
        files = [p for p in files if p.relative_to(root).parts[0] in subdirs]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if str(p.relative_to(root)) not in DETERMINISM_EXCLUDED}


def _make(*args):
    """``make ARGS`` as a user types it: in the project folder, no flags, no MAKEFLAGS inherited."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.Popen(["make", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _notebook_parameters(path):
    params = json.loads(path.read_text())["metadata"]["papermill"]["parameters"]
    return {k: v for k, v in params.items() if k != "out_dir"}


def _consistent(out, allowed_models):
    """Problems of the published state right now: each stage's notebook, manifest and files agree,
    and its parameters are one of the two runs' (05's model: *allowed_models*)."""
    problems = []
    for stage in STAGES:
        nb = out / "notebooks" / f"{stage}.ipynb"
        manifest = out / ".manifests" / f"{stage}.json"
        try:
            stamp = nb.stat().st_mtime_ns
            params = _notebook_parameters(nb)
            recorded = json.loads(manifest.read_text())
            digests = {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in recorded["files"]}
            if nb.stat().st_mtime_ns != stamp:
                continue  # published while we looked: sample again next time
        except (FileNotFoundError, ValueError, KeyError):
            continue  # between the deletion of the old notebook and the publication of the new one
        if recorded["parameters"] != params:
            problems.append(f"{stage}: manifest parameters {recorded['parameters']} != notebook {params}")
        if digests != recorded["files"]:
            problems.append(f"{stage}: published files differ from its manifest")
        if stage == "05-secondary-outcomes" and params["model"] not in allowed_models:
            problems.append(f"{stage}: model {params['model']}")
        if stage != "05-secondary-outcomes" and params.get("scenario") != "primary":
            problems.append(f"{stage}: {params}")
    return problems


def test_two_runs_at_once_never_interleave_and_rebuild_the_bundle_byte_for_byte(e2e_run, e2e_raw, tmp_path):
    """Two ``make reproduce`` in one fresh folder, with different parameters, started together:
    the second waits; the outputs match one parameter set throughout; the last run's outputs
    equal, byte for byte, the session's run in another folder; ``make -q`` is truthful."""
    out = tmp_path / "outputs"
    common = [f"OUT={out}", f"RAW={e2e_raw}"]
    first = _make("reproduce", *common, "SECONDARY_MODEL=fixed")
    deadline = time.monotonic() + 120
    while "SECONDARY_MODEL=fixed" not in ((out / ".lock").read_text() if (out / ".lock").exists() else ""):
        assert time.monotonic() < deadline and first.poll() is None, "the first run never took the lock"
        time.sleep(0.2)
    second = _make("reproduce", *common)
    problems = []
    while first.poll() is None or second.poll() is None:
        problems += _consistent(out, {"fixed", "random"})
        time.sleep(1)
    (out1, err1), (out2, err2) = first.communicate(), second.communicate()
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert not problems, problems[:5]
    assert "waiting: " in err2 and "SECONDARY_MODEL=fixed" in err2, err2
    assert err1 == "" and err2.count("\n") == 1, f"noise on stderr: {err1!r} {err2!r}"
    assert "[05-secondary-outcomes] started" in out2 and "[03-pool]" not in out2, "the second run redid more than 05"
    for log in (out1, out2):
        assert log.splitlines()[-1] == f"Reports: {out}/html/index.html", log
        quiet = ("[", "Reports: ", "make: Nothing", "make[1]: Nothing")
        assert all(line.startswith(quiet) for line in log.splitlines()), log
    assert _consistent(out, {"random"}) == []
    first_files, final = _digest(e2e_run), _digest(out)
    assert sorted(final) == sorted(first_files), set(final) ^ set(first_files)
    assert [f for f in final if final[f] != first_files[f]] == [], "not byte-identical between two builds"
    assert run_make("-q", "reproduce", *common, check=False).returncode == 0
    assert run_make("-q", "reproduce", *common, "SECONDARY_MODEL=fixed", check=False).returncode == 1
    assert run_make("-q", "reproduce", *common, check=False).returncode == 0, "make -q rewrote the parameters"


def _private_copy(e2e_run, e2e_raw, tmp_path):
    out, raw = tmp_path / "out", tmp_path / "raw"
    shutil.copytree(e2e_run, out)
    shutil.copytree(e2e_raw, raw)
    return out, raw


def test_a_missing_sheet_stops_the_run_naming_it_and_make_q_says_so(e2e_run, e2e_raw, tmp_path):
    out, raw = _private_copy(e2e_run, e2e_raw, tmp_path)
    (raw / "studies.csv").unlink()
    before = _digest(out)
    assert run_make("-q", "reproduce", f"OUT={out}", f"RAW={raw}", check=False).returncode == 1
    proc = reproduce_into(out, raw, check=False)
    assert proc.returncode != 0
    assert f"error: the data sheet {raw}/studies.csv is missing" in proc.stderr, proc.stderr
    assert _digest(out) == before


def _scenario_without_deaths(raw):
    no_mortality_scenario(raw)
    return ["SCENARIO=no-deaths"]


CASES = {
    "duplicated row in risk_of_bias.csv": (lambda raw: duplicate_row("risk_of_bias.csv", 0)(raw) or [],
                                           "risk_of_bias.csv, line 3, study shu2020"),
    "MEASURE with a space": (lambda raw: ["MEASURE=OR RR"], "parameter measure='OR RR' is not valid"),
    "SCENARIO with a quote": (lambda raw: ["SCENARIO=x'y"], "unknown scenario \"x'y\""),
    "scenario without deaths": (_scenario_without_deaths, "scenario 'no-deaths': none of its 1 study"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_input_stops_the_run_before_any_stage_and_keeps_the_outputs(name, e2e_run, e2e_raw, tmp_path):
    out, raw = _private_copy(e2e_run, e2e_raw, tmp_path)
    edit, fragment = CASES[name]
    extra = edit(raw)
    before = _digest(out, PUBLISHED)
    proc = reproduce_into(out, raw, *extra, check=False)
    assert proc.returncode != 0
    assert "error: the run was stopped before any stage ran" in proc.stderr and fragment in proc.stderr, proc.stderr
    assert "started" not in proc.stdout, "a stage ran"
    assert _digest(out, PUBLISHED) == before
    assert run_make("-q", "reproduce", f"OUT={out}", f"RAW={raw}", *extra, check=False).returncode == 1


def test_a_notebook_run_by_hand_leaves_the_batch_outputs_untouched(e2e_run, e2e_raw, tmp_path):
    """03 run as in JupyterLab (papermill without the runner's out_dir) with another measure."""
    import papermill

    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    batch = project / "outputs"
    shutil.copytree(e2e_run, batch)
    before = _digest(batch)
    common = {"data_dir": str(e2e_raw), "tables_in": str(batch / "tables")}
    papermill.execute_notebook(str(project / "notebooks" / "03-pool.ipynb"), str(tmp_path / "lab.ipynb"),
                               parameters={**common, "measure": "RR"}, kernel_name="mscmeta",
                               cwd=str(project / "notebooks"), progress_bar=False)
    lab = batch / "lab"
    assert {k: v for k, v in _digest(batch).items() if not k.startswith("lab/")} == before
    assert "RR" in (lab / "tables" / "pooled_mortality.csv").read_text()
    assert run_make("-q", "reproduce", f"OUT={batch}", f"RAW={e2e_raw}", check=False).returncode == 0
    with pytest.raises(papermill.PapermillExecutionError, match="make reproduce manages"):
        papermill.execute_notebook(str(project / "notebooks" / "03-pool.ipynb"), str(tmp_path / "lab2.ipynb"),
                                   parameters={**common, "out_dir": "../outputs"}, kernel_name="mscmeta",
                                   cwd=str(project / "notebooks"), progress_bar=False)
    assert {k: v for k, v in _digest(batch).items() if not k.startswith("lab/")} == before
