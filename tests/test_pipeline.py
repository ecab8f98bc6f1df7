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
