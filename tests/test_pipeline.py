"""The stage runner is all-or-nothing and names the notebook and cell that failed."""

from __future__ import annotations

import hashlib

import nbformat
import pytest

from mscmeta.bundle.pipeline import StageError, parse_assignments, run_stage


def _notebook(path, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "mscmeta", "display_name": "Python (mscmeta)", "language": "python"}
    params = nbformat.v4.new_code_cell('out_dir = "../outputs"  # outputs root\nlabel = "a"  # a label')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params, *(nbformat.v4.new_code_cell(c) for c in code)]
    nbformat.write(nb, path)


WRITE = (
    "import pandas as pd\nfrom mscmeta.bundle.io import write_table\n"
    "write_table(pd.DataFrame({'label': [label], 'x': [0.1]}), out_dir + '/tables/t.csv')"
)


def _digest(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_successful_stage_publishes_tables_and_notebook(tmp_path):
    nb = tmp_path / "07-ok.ipynb"
    _notebook(nb, WRITE)
    out = tmp_path / "out"
    target = run_stage(nb, out=out, params={"label": "first"})
    assert target == out / "notebooks" / "07-ok.ipynb"
    assert (out / "tables" / "t.csv").read_text() == "label,x\nfirst,0.1\n"
    assert (out / "tables" / "t.md").exists()
    assert not (out / ".staging" / "07-ok").exists()


def test_failing_stage_names_notebook_and_cell_and_keeps_previous_outputs(tmp_path):
    out = tmp_path / "out"
    good = tmp_path / "good" / "07-stage.ipynb"
    good.parent.mkdir()
    _notebook(good, WRITE)
    run_stage(good, out=out, params={"label": "first"})
    before = _digest(out)
    bad = tmp_path / "bad" / "07-stage.ipynb"
    bad.parent.mkdir()
    _notebook(bad, WRITE, "raise ValueError('study lanzoni2021: column events_msc is broken')")
    with pytest.raises(StageError) as err:
        run_stage(bad, out=out, params={"label": "second"})
    message = str(err.value)
    assert "07-stage.ipynb" in message and "cell" in message and "In [" in message
    assert "lanzoni2021" in message
    after = {k: v for k, v in _digest(out).items() if k.parts[0] != "failed"}
    assert after == before, "a failed stage changed the published outputs"
    assert (out / "failed" / "07-stage.ipynb").exists()


def test_unknown_parameter_is_refused_with_the_declared_ones(tmp_path):
    nb = tmp_path / "07-x.ipynb"
    _notebook(nb, "pass")
    with pytest.raises(StageError, match=r"unknown parameter\(s\) measure; it declares label, out_dir"):
        run_stage(nb, out=tmp_path / "out", params={"measure": "RR"})


def test_parse_assignments():
    assert parse_assignments(["measure=RR", "k=3", "level=0.9", "hksj=true"]) == {
        "measure": "RR", "k": 3, "level": 0.9, "hksj": True,
    }
    with pytest.raises(StageError):
        parse_assignments(["not an assignment"])


# --------------------------------------------------------------------------- issue 13: the runner

import json
import os
import resource
import shutil
import subprocess
import sys

from conftest import ROOT
from mscmeta.bundle.io import BatchOutputsError, output_dirs
from mscmeta.bundle.outlock import outputs_lock
from mscmeta.bundle.pipeline import main as pipeline_main
from mscmeta.bundle.pipeline import declared_parameters, typed_parameters

#: A stage whose outputs follow its parameters: a.csv always, b.csv unless label is "one", a
#: temporary file that must never be published, and a table of *size* rows (to fill a disk).
STAGE = (
    "import pathlib\nimport pandas as pd\nfrom mscmeta.bundle.io import write_table\n"
    "write_table(pd.DataFrame({'label': [label]}), out_dir + '/tables/a.csv')\n"
    "if label != 'one':\n    write_table(pd.DataFrame({'x': [1]}), out_dir + '/tables/b.csv')\n"
    "pathlib.Path(out_dir, 'tables', '.a.csv.x1y2.tmp').write_text('half written')\n"
    "if size:\n    write_table(pd.DataFrame({'x': range(size)}), out_dir + '/tables/big.csv')"
)


def _stage_notebook(path, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "mscmeta", "display_name": "Python (mscmeta)", "language": "python"}
    params = nbformat.v4.new_code_cell('out_dir = "../outputs/lab"  # outputs root\nlabel = "a"  # a label\n'
                                       'size = 0  # rows of big.csv')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params, *(nbformat.v4.new_code_cell(c) for c in code)]
    nbformat.write(nb, path)


def _published(root):
    return {str(k): v for k, v in _digest(root).items() if k.parts[0] != "failed" and k.name != ".lock"}


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage")
    _stage_notebook(folder / "07-stage.ipynb", STAGE)
    return folder


@pytest.fixture(scope="module")
def good_run(stage_dir, tmp_path_factory):
    """One successful run of the stage (label 'both'): a.csv, b.csv, the manifest, the notebook."""
    out = tmp_path_factory.mktemp("good") / "out"
    run_stage(stage_dir / "07-stage.ipynb", out=out, data_dir=stage_dir, params={"label": "both"})
    return out


def _copy(good_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(good_run, out)
    return out


def test_publishing_keeps_a_manifest_and_never_a_temporary_file(good_run):
    manifest = json.loads((good_run / ".manifests" / "07-stage.json").read_text())
    assert sorted(manifest["files"]) == ["tables/a.csv", "tables/a.md", "tables/b.csv", "tables/b.md"]
    assert manifest["parameters"]["label"] == "both"
    assert not list(good_run.rglob("*.tmp")) and not (good_run / ".staging").exists() or not any(
        (good_run / ".staging").iterdir())


def test_a_stage_removes_the_outputs_it_no_longer_produces(good_run, stage_dir, tmp_path):
    out = _copy(good_run, tmp_path)
    (out / "tables" / ".old.csv.abc.tmp").write_text("left by an interrupted write of an older version")
    run_stage(stage_dir / "07-stage.ipynb", out=out, data_dir=stage_dir, params={"label": "one"})
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["a.csv", "a.md"]
    manifest = json.loads((out / ".manifests" / "07-stage.json").read_text())
    assert sorted(manifest["files"]) == ["tables/a.csv", "tables/a.md"]


def test_executed_notebooks_and_manifests_are_byte_identical_wherever_they_ran(good_run, stage_dir, tmp_path):
    out = tmp_path / "elsewhere" / "out"
    run_stage(stage_dir / "07-stage.ipynb", out=out, data_dir=stage_dir, params={"label": "both"})
    assert _published(out) == _published(good_run)
    text = (out / "notebooks" / "07-stage.ipynb").read_text()
    assert str(tmp_path) not in text and str(good_run) not in text and str(stage_dir) not in text
    assert "start_time" not in text and "duration" not in text and '"id": "injected-parameters"' in text
    assert 'out_dir = \\"outputs\\"' in text


def test_two_stages_cannot_publish_the_same_file(good_run, tmp_path):
    out = _copy(good_run, tmp_path)
    before = _published(out)
    other = tmp_path / "08-other.ipynb"
    _stage_notebook(other, STAGE)
    with pytest.raises(StageError, match=r"tables/a.csv \(published by 07-stage\)"):
        run_stage(other, out=out, data_dir=tmp_path, params={"label": "both"})
    assert _published(out) == before


def test_a_dead_kernel_is_reported_with_its_cell(tmp_path):
    nb = tmp_path / "07-dies.ipynb"
    _stage_notebook(nb, "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "y = 2")
    with pytest.raises(StageError) as err:
        run_stage(nb, out=tmp_path / "out", data_dir=tmp_path)
    message = str(err.value)
    assert "the kernel died in cell 4" in message and "cell starts with: import os, signal" in message
    assert "DeadKernelError" not in message


def _flaky_kernel(tmp_path, failures: int) -> Path:
    """A kernel spec ``flaky`` (in a JUPYTER_PATH under *tmp_path*) whose first *failures*
    starts exit before the kernel comes up, as a kernel whose port was taken would."""
    count = tmp_path / "starts"
    script = tmp_path / "flaky_kernel.py"
    script.write_text(
        "import os, sys\n"
        f"count = {str(count)!r}\n"
        "n = int(open(count).read()) if os.path.exists(count) else 0\n"
        "open(count, 'w').write(str(n + 1))\n"
        f"if n < {failures}:\n"
        "    sys.exit(1)\n"
        "from ipykernel.kernelapp import launch_new_instance\n"
        "launch_new_instance(argv=sys.argv[1:])\n"
    )
    spec = tmp_path / "jupyter" / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, str(script), "-f", "{connection_file}"], "display_name": "flaky", "language": "python"}))
    return count


def test_a_kernel_that_dies_before_its_first_cell_is_started_once_more(tmp_path, monkeypatch):
    count = _flaky_kernel(tmp_path, failures=1)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = tmp_path / "07-flaky.ipynb"
    _stage_notebook(nb, "x = 1")
    executed = run_stage(nb, out=tmp_path / "out", data_dir=tmp_path, kernel="flaky")
    assert executed.exists() and count.read_text() == "2"


def test_a_kernel_that_never_starts_is_reported_after_one_more_try(tmp_path, monkeypatch):
    count = _flaky_kernel(tmp_path, failures=99)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = tmp_path / "07-flaky.ipynb"
    _stage_notebook(nb, "x = 1")
    with pytest.raises(StageError, match="the kernel died"):
        run_stage(nb, out=tmp_path / "out", data_dir=tmp_path, kernel="flaky")
    assert count.read_text() == "2"
    assert not (tmp_path / "out" / "notebooks" / "07-flaky.ipynb").exists()


def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_names_the_file_and_keeps_the_outputs(good_run, stage_dir, tmp_path):
    out = _copy(good_run, tmp_path)
    before = _published(out)
    proc = subprocess.run(
        [sys.executable, "-m", "mscmeta.bundle.pipeline", "run", str(stage_dir / "07-stage.ipynb"), "--out", str(out),
         "--data-dir", str(stage_dir), "-p", "label=both", "-p", "size=200000"],
        capture_output=True, text=True, timeout=600, preexec_fn=_limited(256 * 1024),
    )
    assert proc.returncode == 1
    assert f"cannot write {out}/tables/big.csv: the file size limit was reached" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _published(out) == before


def _immutable(path, on: bool) -> None:
    subprocess.run(["chattr", "-R", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def test_a_read_only_outputs_folder_is_named_before_a_kernel_starts(good_run, stage_dir, tmp_path):
    out = _copy(good_run, tmp_path)
    before = _published(out)
    if os.geteuid() == 0:  # root ignores permissions; an immutable folder is read-only even for root
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr")
        _immutable(out, True)
    else:
        for p in [out, *out.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        with pytest.raises(StageError, match=r"cannot lock the outputs folder: .*\.lock: .*read-only\?\)"):
            run_stage(stage_dir / "07-stage.ipynb", out=out, data_dir=stage_dir, params={"label": "one"})
    finally:
        if os.geteuid() == 0:
            _immutable(out, False)
        else:
            for p in [out, *out.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)
    assert _published(out) == before


def test_a_second_run_waits_for_the_lock_then_reports_progress_without_kernel_noise(good_run, stage_dir, tmp_path):
    out = _copy(good_run, tmp_path)
    with outputs_lock(out, what="a test holding the lock"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mscmeta.bundle.pipeline", "run", str(stage_dir / "07-stage.ipynb"), "--out",
             str(out), "--data-dir", str(stage_dir), "-p", "label=one"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        waiting = proc.stderr.readline()
        assert "waiting" in waiting and "a test holding the lock" in waiting
        assert (out / "tables" / "b.csv").exists(), "the second run wrote while the first held the lock"
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert stderr == "", f"kernel noise on success: {stderr!r}"
    lines = stdout.splitlines()
    assert lines[0] == "[07-stage] started" and lines[-1].startswith("[07-stage] done in ") and len(lines) == 2
    assert not (out / "tables" / "b.csv").exists()


def test_parameters_keep_their_declared_type_and_bad_options_stop_before_a_kernel(tmp_path, capsys):
    declared = {"label": {"inferred_type_name": "str"}, "size": {"inferred_type_name": "int"},
                "measure": {"inferred_type_name": "str"}}
    assert typed_parameters("07-x", {"label": "1", "size": "3", "measure": "rr"}, declared) == {
        "label": "1", "size": 3, "measure": "rr"}
    with pytest.raises(StageError, match=r"parameter size='many' must be a whole number"):
        typed_parameters("07-x", {"size": "many"}, declared)
    nb = tmp_path / "07-x.ipynb"
    _notebook(nb, "pass")
    nb_text = nb.read_text().replace('label = \\"a\\"  # a label', 'label = \\"a\\"  # a label\\nmeasure = \\"OR\\"  # m')
    nb.write_text(nb_text)
    assert pipeline_main(["run", str(nb), "--out", str(tmp_path / "out"), "-p", "measure=OR RR"]) == 1
    err = capsys.readouterr().err
    assert "parameter measure: unknown measure 'OR RR'; valid values: OR, RR, RD, PETO" in err
    assert not (tmp_path / "out").exists(), "a refused parameter created outputs"


def test_a_notebook_run_by_hand_cannot_write_into_the_batch_outputs(good_run, tmp_path):
    with pytest.raises(BatchOutputsError, match="outputs/lab"):
        output_dirs(good_run)
    assert output_dirs(good_run / "lab")["tables"] == good_run / "lab" / "tables"
    shutil.rmtree(good_run / "lab")
    defaults = {nb.name: declared_parameters(nb)["out_dir"]["default"] for nb in (ROOT / "notebooks").glob("*.ipynb")}
    assert defaults and set(defaults.values()) == {'"../outputs/lab"'}, defaults


def test_the_build_order_runs_every_stage_once():
    """The Makefile's BUILD_ORDER (the order make meets the stages in, for scheduling) is a
    permutation of STAGES: reordering for speed must never drop or repeat a stage."""
    from conftest import ROOT

    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    values = dict(line.split(" := ", 1) for line in text.splitlines() if line.startswith(("STAGES :=", "BUILD_ORDER :=")))
    stages, order = values["STAGES"].split(), values["BUILD_ORDER"].split()
    assert sorted(order) == sorted(stages) and len(order) == len(set(order)) == 6
