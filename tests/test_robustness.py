"""Issue 13: nothing lost, nothing stale, nothing accepted that is wrong -- the battery.

Every bad input of ``tests/robustness_battery.py`` (a table: the edit of the fixture data, the
stages that must refuse it, the fragments of the one line that says why) is refused by the
first stage that reads it before that stage writes anything; each stage refuses what it
reads (a matrix below); awkward but valid files are accepted; the command line applies the
same rules. The stages run in-process (their notebooks' code cells in order), the runner
and ``make`` are tested in ``test_pipeline.py`` and ``test_e2e_robustness.py``.
"""

from __future__ import annotations

import shutil

import pytest

from robustness_battery import (
    CLI_CASES,
    DATA_CASES,
    FIXTURE_DATA,
    check_case,
    check_cli_case,
    no_mortality_scenario,
)
from mscmeta.engine.csvtext import CsvProblem, parse_csv_text
from mscmeta.engine.validation import DataError
from mscmeta.review.preflight import main as preflight_main
from mscmeta.review.preflight import preflight

BY_NAME = {c.name: c for c in DATA_CASES}


def _first(stages: tuple[str, ...]) -> tuple[str, ...]:
    return stages[:1]


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.name)
def test_bad_data_is_refused_by_the_first_stage_that_reads_it_before_it_writes(case, tmp_path):
    stages = _first(case.refused_by) + case.accepted_by
    assert check_case(case, tmp_path, stages=stages) == []


#: Every stage refuses what it reads: a core sheet, the optional sheet it owns, the scenario.
STAGE_MATRIX = (
    ("mortality.csv semicolon-separated", "02-quality-assess"),
    ("mortality.csv semicolon-separated", "03-pool"),
    ("mortality.csv semicolon-separated", "04-subgroup"),
    ("mortality.csv semicolon-separated", "05-secondary-outcomes"),
    ("risk_of_bias.csv: the same study assessed twice", "02-quality-assess"),
    ("adverse_events.csv: a duplicated row", "05-secondary-outcomes"),
    ("scenario without comparative deaths", "03-pool"),
    ("no study estimable (no deaths at all)", "04-subgroup"),
)


@pytest.mark.parametrize(("name", "stage"), STAGE_MATRIX, ids=lambda v: v if isinstance(v, str) else "")
def test_every_stage_refuses_what_it_reads(name, stage, tmp_path):
    assert check_case(BY_NAME[name], tmp_path, stages=(stage,)) == []


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_the_command_line_applies_the_same_rules(case, tmp_path):
    assert check_cli_case(case, tmp_path) == []


# --------------------------------------------------------------------------- the run-level check


def test_preflight_passes_the_fixture_and_names_the_scenario(tmp_path):
    assert preflight(FIXTURE_DATA) == (
        "checked: every sheet of data_small/ is valid; scenario 'primary' has 3 studies in its mortality analysis"
    )
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURE_DATA, raw)
    no_mortality_scenario(raw)
    with pytest.raises(DataError, match=r"scenario 'no-deaths': none of its 1 study has comparative deaths"):
        preflight(raw, scenario="no-deaths")
    with pytest.raises(DataError, match=r"unknown scenario \"x'y\""):
        preflight(raw, scenario="x'y")


@pytest.mark.parametrize(
    ("param", "fragment"),
    [
        ("measure=OR RR", "parameter measure='OR RR' is not valid"),
        ("model=randomm", "model"),
        ("tau2_method=XX", "tau2"),
        ("secondary_model=both", "SECONDARY_MODEL"),
        ("colour=red", "unknown parameter(s) colour"),
    ],
)
def test_preflight_refuses_a_bad_parameter_in_one_line(param, fragment, capsys):
    assert preflight_main(["--data-dir", str(FIXTURE_DATA), "-p", param]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


# --------------------------------------------------------------------------- the CSV reader


def test_physical_lines_survive_multiline_cells_and_blank_records():
    text = 'a,b\n1,"x\ny\nz"\n\n,\n2,w\n'
    parsed = parse_csv_text(text)
    assert parsed.rows == [["1", "x\ny\nz"], ["2", "w"]]
    assert parsed.lines == [2, 7]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a;b\n1;2\n", 1, "semicolon-separated"),
        ("a\tb\n1\t2\n", 1, "tab-separated"),
        ('a,b\n1,2\n"3,4\n5,6\n', 3, "never closed"),
        ('a,b\n1,"2"x\n', 2, "unbalanced quote"),
        ("  \n\n", None, "empty"),
    ],
)
def test_file_level_failures_are_one_problem_with_its_physical_line(text, line, fragment):
    problem = parse_csv_text(text)
    assert isinstance(problem, CsvProblem) and problem.fatal
    assert problem.line == line and fragment in problem.message
