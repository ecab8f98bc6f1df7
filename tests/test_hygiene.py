"""Source notebooks are committed clean: no outputs, one literal parameters cell, thin."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, STAGES
from mscmeta.bundle.hygiene import check_notebook, parameter_problems, strip_notebook


@pytest.mark.parametrize("stage", STAGES)
def test_source_notebook_is_clean(stage):
    path = ROOT / "notebooks" / f"{stage}.ipynb"
    assert path.exists(), f"{path} is missing"
    assert check_notebook(path) == []


def test_no_other_notebooks_slip_in():
    found = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert found == sorted(STAGES)


def test_parameters_need_literals_and_comments():
    assert parameter_problems('out_dir = "../outputs"  # where outputs go') == []
    assert any("not a literal" in p for p in parameter_problems('out_dir = str(1)  # x'))
    assert any("no comment" in p for p in parameter_problems('out_dir = "../outputs"'))
    assert any("no out_dir" in p for p in parameter_problems('x = 1  # y'))


def test_check_flags_outputs_and_strip_removes_them(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "mscmeta", "display_name": "Python (mscmeta)", "language": "python"}
    params = nbformat.v4.new_code_cell('out_dir = "../outputs"  # outputs root')
    params.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    problems = check_notebook(path)
    assert any("has outputs" in p for p in problems) and any("execution count" in p for p in problems)
    assert strip_notebook(path) is True
    assert check_notebook(path) == []
    assert json.loads(path.read_text())["cells"][2]["outputs"] == []
