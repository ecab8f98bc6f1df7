"""The robustness battery of issue 13: bad inputs as a careless user or a hostile file gives them.

Each case is a mutation of the small fixture data set (or a CSV for the command line) with
what must happen: which stages refuse it and the fragments of the one clear line that says
why (file, line, study, column, or scenario), or that it is accepted. ``tests/test_robustness.py``
runs every case; the stages run in-process (their notebooks' code cells executed in order, as
papermill would, into a private folder), so a case costs a second rather than a kernel start.

The table is plain data so the same battery can be run against any version of the bundle
(``python tests/robustness_battery.py`` prints how many cases pass).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data_small"
STAGES = ("01-extract", "02-quality-assess", "03-pool", "04-subgroup", "05-secondary-outcomes",
          "06-update-and-certainty")
CORE = ("studies.csv", "mortality.csv", "scenarios.csv", "scenario_definitions.csv", "search.csv",
        "published_results.csv")
#: The stages that read each sheet (stage 01 validates every sheet; 03 and 04 read stage 02's
#: risk-of-bias table, and the raw sheet only when that table is absent).
READERS = {**{s: STAGES for s in CORE},
           "risk_of_bias.csv": ("01-extract", "02-quality-assess"),
           "adverse_events.csv": ("01-extract", "05-secondary-outcomes", "06-update-and-certainty"),
           "secondary_outcomes.csv": ("01-extract", "05-secondary-outcomes", "06-update-and-certainty"),
           "grade_judgements.csv": ("01-extract", "06-update-and-certainty"),
           "later_syntheses.csv": ("01-extract", "06-update-and-certainty")}


# --------------------------------------------------------------------------- editing a copy of the data


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def write_rows(path: Path, rows: list[list[str]], **kw) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n", **kw).writerows(rows)


def set_cell(sheet: str, key: tuple[str, str], column: str, value: str) -> Callable[[Path], None]:
    """Set *column* of the row whose column ``key[0]`` is ``key[1]``."""

    def edit(raw: Path) -> None:
        rows = read_rows(raw / sheet)
        head = rows[0]
        hits = [r for r in rows[1:] if r[head.index(key[0])] == key[1]]
        assert hits, f"no row {key} in {sheet}"
        for r in hits:
            r[head.index(column)] = value
        write_rows(raw / sheet, rows)

    return edit


def map_rows(sheet: str, fn: Callable[[list[str], list[str]], list[list[str]]]) -> Callable[[Path], None]:
    """Replace every data row r by ``fn(header, r)`` (a list of rows)."""

    def edit(raw: Path) -> None:
        rows = read_rows(raw / sheet)
        out = [rows[0]]
        for r in rows[1:]:
            out += fn(rows[0], r)
        write_rows(raw / sheet, out)

    return edit


def header_only(sheet: str) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        write_rows(raw / sheet, read_rows(raw / sheet)[:1])

    return edit


def with_delimiter(sheet: str, delimiter: str) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        rows = read_rows(raw / sheet)
        write_rows(raw / sheet, rows, delimiter=delimiter)

    return edit


def replace_bytes(sheet: str, old: bytes, new: bytes, count: int = 1) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        data = (raw / sheet).read_bytes()
        assert old in data, (sheet, old)
        (raw / sheet).write_bytes(data.replace(old, new, count))

    return edit


def write_bytes(sheet: str, data: bytes) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        (raw / sheet).write_bytes(data)

    return edit


def delete(sheet: str) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        (raw / sheet).unlink()

    return edit


def both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        for e in edits:
            e(raw)

    return edit


def duplicate_row(sheet: str, index: int = 0) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        rows = read_rows(raw / sheet)
        rows.insert(index + 2, list(rows[index + 1]))
        write_rows(raw / sheet, rows)

    return edit


def no_mortality_scenario(raw: Path) -> None:
    """A scenario 'no-deaths' whose review set has no study with comparative deaths."""
    defs = read_rows(raw / "scenario_definitions.csv")
    head = defs[0]
    new = dict(zip(head, defs[1]))
    new.update(scenario="no-deaths", order="99", label="No deaths", description="Battery case.", basis="test")
    defs.append([new[c] for c in head])
    write_rows(raw / "scenario_definitions.csv", defs)
    sc = read_rows(raw / "scenarios.csv")
    sc.append(["no-deaths", "shi2021", "", "battery: per-arm deaths not located"])
    write_rows(raw / "scenarios.csv", sc)


def zero_deaths(header: list[str], row: list[str]) -> list[list[str]]:
    row = list(row)
    row[header.index("events_msc")] = "0"
    row[header.index("events_control")] = "0"
    return [row]


def multiline_note_then_bad_year(raw: Path) -> None:
    """A quoted three-line note in dilogo2021 (physical lines 2-4), then a bad year in lanzoni2021 (line 5)."""
    set_cell("studies.csv", ("study_id", "dilogo2021"), "notes", "first line\nsecond line\nthird line")(raw)
    set_cell("studies.csv", ("study_id", "lanzoni2021"), "year", "twenty")(raw)


def latin1_in_line3(raw: Path) -> None:
    data = (raw / "studies.csv").read_bytes()
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b"Lanzoni G", b"Lanz\xf6ni G", 1)  # a Latin-1 o-umlaut in line 3
    (raw / "studies.csv").write_bytes(b"\n".join(lines))


def unbalanced_quote(raw: Path) -> None:
    data = (raw / "mortality.csv").read_text(encoding="utf-8").split("\n")
    data[3] = data[3].replace('infusion)",', "infusion),", 1)  # line 4: a quoted cell loses its closing quote
    (raw / "mortality.csv").write_text("\n".join(data), encoding="utf-8")


def extra_field(raw: Path) -> None:
    data = (raw / "search.csv").read_text(encoding="utf-8").split("\n")
    data[2] = data[2] + ",an extra field"  # line 3
    (raw / "search.csv").write_text("\n".join(data), encoding="utf-8")


def duplicate_header(sheet: str, column: str) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        rows = read_rows(raw / sheet)
        i = rows[0].index(column)
        rows = [r + [r[i]] for r in rows]
        write_rows(raw / sheet, rows)

    return edit


def crlf_everywhere(raw: Path) -> None:
    for p in raw.glob("*.csv"):
        text = p.read_bytes().replace(b"\r\n", b"\n")
        p.write_bytes(text.replace(b"\n", b"\r\n"))


def bom(sheet: str) -> Callable[[Path], None]:
    def edit(raw: Path) -> None:
        (raw / sheet).write_bytes(b"\xef\xbb\xbf" + (raw / sheet).read_bytes())

    return edit


def trailing_blank_lines(raw: Path) -> None:
    with (raw / "studies.csv").open("a", encoding="utf-8") as fh:
        fh.write("\n\n")


# --------------------------------------------------------------------------- the cases

#: Pseudo-stage: the sheets are read and validated (mscmeta.review.sheets.load_raw), nothing more.
LOAD = "load_raw"


@dataclass(frozen=True)
class Case:
    """One bad (or awkward but valid) input and what must happen.

    ``refused_by``: stages that must stop before writing anything, with every fragment of
    ``fragments`` on one line of their message; ``accepted_by``: stages that must succeed.
    ``max_problems``: the message may list at most this many problems (no cascades).
    """

    name: str
    edit: Callable[[Path], None]
    fragments: tuple[str, ...] = ()
    refused_by: tuple[str, ...] = ()
    accepted_by: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    max_problems: int | None = None


def refused(name, edit, sheet, *fragments, stages=None, max_problems=None, **params) -> Case:
    return Case(name, edit, fragments, tuple(stages or READERS[sheet]), (), params, max_problems)


DATA_CASES: tuple[Case, ...] = (
    # semantic checks
    refused("n_severe beyond the study's n", set_cell("studies.csv", ("study_id", "shu2020"), "n_severe", "999"),
            "studies.csv", "studies.csv, line 6, study shu2020, column n_severe", "999", stages=("01-extract",)),
    refused("n_critical beyond the study's n", set_cell("studies.csv", ("study_id", "dilogo2021"), "n_critical", "41"),
            "studies.csv", "studies.csv, line 2, study dilogo2021, column n_critical", "41", stages=("01-extract",)),
    refused("PRISMA: screened more than identified", set_cell("search.csv", ("box", "records_screened"), "count", "5000"),
            "search.csv", "search.csv, line 4, column count", "5000", "3644"),
    refused("PRISMA: excluded more than screened", both(
        set_cell("search.csv", ("box", "records_screened"), "count", "100"),
        set_cell("search.csv", ("box", "records_excluded"), "count", "150")),
            "search.csv", "search.csv, line 5, column count", "150", "100"),
    refused("PRISMA: more studies included than reports", set_cell("search.csv", ("box", "studies_included"), "count", "15"),
            "search.csv", "search.csv, line 10, column count", "15", "14"),
    refused("published count negative", set_cell("published_results.csv", ("quantity", "studies"), "estimate", "-1"),
            "published_results.csv", "published_results.csv, line 9, column estimate", "-1"),
    refused("published odds ratio not positive", set_cell("published_results.csv", ("subgroup", "severe"), "estimate", "0"),
            "published_results.csv", "published_results.csv, line 4, column estimate", "0"),
    refused("published count not whole", set_cell("published_results.csv", ("quantity", "patients"), "estimate", "557.5"),
            "published_results.csv", "published_results.csv, line 11, column estimate", "557.5"),
    refused("published_results.csv header only", header_only("published_results.csv"), "published_results.csv",
            "published_results.csv", "no rows", max_problems=1),
    refused("studies.csv header only", header_only("studies.csv"), "studies.csv", "studies.csv", "no rows",
            max_problems=1),
    refused("mortality.csv header only", header_only("mortality.csv"), "mortality.csv", "mortality.csv", "no rows",
            max_problems=1),
    refused("adverse_events.csv header only", header_only("adverse_events.csv"), "adverse_events.csv",
            "adverse_events.csv", "no rows", max_problems=1),
    refused("label with a line break", set_cell("studies.csv", ("study_id", "shi2021"), "label", "Shi\n2021"),
            "studies.csv", "studies.csv, line 5, study shi2021, column label", "control character"),
    # integers: plain ASCII digits in a sane range
    refused("full-width digit", set_cell("mortality.csv", ("row_id", "shu2020-d28"), "events_msc", "\uff13"),
            "mortality.csv", "mortality.csv, line 9, study shu2020, column events_msc", "whole number"),
    refused("integer written as 1e1", set_cell("mortality.csv", ("row_id", "shu2020-d28"), "n_msc", "1e1"),
            "mortality.csv", "mortality.csv, line 9, study shu2020, column n_msc", "whole number"),
    refused("integer overflow", set_cell("mortality.csv", ("row_id", "shu2020-d28"), "n_control", "99999999999999999999"),
            "mortality.csv", "mortality.csv, line 9, study shu2020, column n_control", "99999999999999999999"),
    # optional sheets another stage owns: validated in full wherever they are read
    refused("risk_of_bias.csv: a duplicated row", duplicate_row("risk_of_bias.csv", 0), "risk_of_bias.csv",
            "risk_of_bias.csv", "shu2020", "D1"),
    refused("risk_of_bias.csv: the same study assessed twice", map_rows(
        "risk_of_bias.csv", lambda h, r: [r, [*r[:1], "mortality28", *r[2:]]] if r[0] == "shu2020" else [r]),
            "risk_of_bias.csv", "risk_of_bias.csv", "shu2020"),
    refused("adverse_events.csv: a duplicated row", duplicate_row("adverse_events.csv", 0), "adverse_events.csv",
            "adverse_events.csv, line 3, study shi2021", "primary"),
    refused("secondary_outcomes.csv: a duplicated row", duplicate_row("secondary_outcomes.csv", 0),
            "secondary_outcomes.csv", "secondary_outcomes.csv, line 3, study shu2020", "primary"),
    # file-level failures
    refused("studies.csv semicolon-separated", with_delimiter("studies.csv", ";"), "studies.csv", "studies.csv",
            "semicolon", max_problems=1),
    refused("mortality.csv semicolon-separated", with_delimiter("mortality.csv", ";"), "mortality.csv",
            "mortality.csv", "semicolon", max_problems=1),
    refused("search.csv tab-separated", with_delimiter("search.csv", "\t"), "search.csv", "search.csv", "tab",
            max_problems=1),
    refused("adverse_events.csv semicolon-separated", with_delimiter("adverse_events.csv", ";"), "adverse_events.csv",
            "adverse_events.csv", "semicolon", max_problems=1),
    refused("Latin-1 byte", latin1_in_line3, "studies.csv", "studies.csv, line 3", "UTF-8", max_problems=1),
    refused("physical line after a three-line note", multiline_note_then_bad_year, "studies.csv",
            "studies.csv, line 5, study lanzoni2021, column year", stages=("01-extract",)),
    refused("unbalanced quote", unbalanced_quote, "mortality.csv", "mortality.csv, line 4", "quote", max_problems=1),
    refused("a record with an extra field", extra_field, "search.csv", "search.csv, line 3", "fields", max_problems=1),
    refused("duplicated header column", duplicate_header("mortality.csv", "n_msc"), "mortality.csv",
            "mortality.csv, line 1, column n_msc", "twice", max_problems=1),
    refused("empty file", write_bytes("scenarios.csv", b""), "scenarios.csv", "scenarios.csv", "empty",
            max_problems=1),
    refused("missing sheet", delete("studies.csv"), "studies.csv", "studies.csv", "missing"),
    refused("missing optional sheet a stage reads", delete("risk_of_bias.csv"), "risk_of_bias.csv",
            "risk_of_bias.csv", "missing"),
    # scenario-level checks: named scenario, and stage 02 works for any valid data
    Case("scenario without comparative deaths", no_mortality_scenario, ("scenario 'no-deaths'",),
         ("01-extract", "03-pool", "04-subgroup"), ("02-quality-assess",), {"scenario": "no-deaths"}),
    Case("no study estimable (no deaths at all)", map_rows("mortality.csv", zero_deaths), ("scenario 'primary'",),
         ("01-extract", "03-pool", "04-subgroup"), ("02-quality-assess",)),
    # awkward but valid: accepted
    Case("UTF-8 byte-order mark (Excel 'CSV UTF-8')", bom("studies.csv"), accepted_by=(LOAD,)),
    Case("CRLF line endings", crlf_everywhere, accepted_by=(LOAD,)),
    Case("trailing blank lines", trailing_blank_lines, accepted_by=(LOAD,)),
    Case("a valid three-line note", set_cell("studies.csv", ("study_id", "dilogo2021"), "notes", "a\nb\nc"),
         accepted_by=(LOAD,)),
)


# --------------------------------------------------------------------------- running a stage in-process


def notebook_cells(stage: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@dataclass
class StageRun:
    error: str | None
    written: list[str]


def run_stage_in_process(stage: str, data_dir: Path, out_dir: Path, tables_in: Path | None = None,
                         **params: object) -> StageRun:
    """Execute the code cells of *stage*'s notebook in order, with its parameters, in this process."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = notebook_cells(stage)
    ns: dict = {}
    exec(cells[0], ns)  # the parameters cell: defaults
    ns.update(data_dir=str(data_dir), out_dir=str(out_dir))
    if "tables_in" in ns:
        ns["tables_in"] = str(tables_in if tables_in is not None else out_dir / "tables")
    ns.update({k: v for k, v in params.items() if k in ns})
    error = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in cells[1:]:
                exec(cell, ns)
    except Exception as exc:  # noqa: BLE001 - the battery records every refusal
        error = f"{type(exc).__name__}: {exc}"
    finally:
        plt.close("all")
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()) if out_dir.exists() else []
    return StageRun(error, written)


def problem_count(message: str) -> int:
    """Problems listed in a message (the data layer lists one per line, '  - ...')."""
    listed = [ln for ln in message.splitlines() if ln.lstrip().startswith("- ")]
    return len(listed) or 1


def _load_only(raw: Path) -> StageRun:
    from mscmeta.review.sheets import load_raw

    try:
        load_raw(raw)
    except Exception as exc:  # noqa: BLE001
        return StageRun(f"{type(exc).__name__}: {exc}", [])
    return StageRun(None, [])


def check_case(case: Case, tmp: Path, tables_in: Path | None = None, stages: tuple[str, ...] | None = None) -> list[str]:
    """Run *case* (only *stages* of it, if given); return what went wrong (empty: the case passes)."""
    raw = tmp / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    shutil.copytree(FIXTURE_DATA, raw)
    case.edit(raw)
    problems = []
    for stage in (*case.refused_by, *case.accepted_by):
        if stages is not None and stage not in stages:
            continue
        out = tmp / "out" / stage
        shutil.rmtree(out, ignore_errors=True)
        if stage == LOAD:
            run = _load_only(raw)
        else:
            run = run_stage_in_process(stage, raw, out, tables_in=tables_in, **case.params)
        if stage in case.accepted_by:
            if run.error:
                problems.append(f"{stage}: refused valid input: {run.error[:300]}")
            continue
        if run.error is None:
            problems.append(f"{stage}: accepted it")
            continue
        if run.written:
            problems.append(f"{stage}: wrote {run.written[:3]} before refusing")
        if not any(all(f in line for f in case.fragments) for line in run.error.splitlines()):
            problems.append(f"{stage}: no line with {case.fragments}: {run.error[:400]}")
        if case.max_problems is not None and problem_count(run.error) > case.max_problems:
            problems.append(f"{stage}: {problem_count(run.error)} problems listed (a cascade): {run.error[:300]}")
        if "Traceback" in run.error:
            problems.append(f"{stage}: traceback in the message")
    return problems


# --------------------------------------------------------------------------- the command line

CLI_HEADER = "study,events_t,n_t,events_c,n_c\n"
CLI_ROWS = "A,1,10,3,20\nB,2,20,2,20\n"


@dataclass(frozen=True)
class CliCase:
    """Bytes of ``input.csv`` and the arguments of ``python -m mscmeta pool``; ``fragments``
    that the one line on stderr must hold (exit 2), or None when the input must be accepted."""

    name: str
    content: bytes
    args: tuple[str, ...] = ()
    fragments: tuple[str, ...] | None = None


def _csv(text: str) -> bytes:
    return text.encode("utf-8")


CLI_CASES: tuple[CliCase, ...] = (
    CliCase("count overflows int64", _csv(CLI_HEADER + "A,1,99999999999999999999,3,20\nB,2,20,2,20\n"),
            fragments=("input.csv", "study 'A'", "column 'n_t'", "99999999999999999999")),
    CliCase("count written 1e1", _csv(CLI_HEADER + "A,1e1,10,3,20\nB,2,20,2,20\n"),
            fragments=("study 'A'", "column 'events_t'", "'1e1'", "digits 0-9")),
    CliCase("full-width digit", _csv(CLI_HEADER + "A,\uff13,10,3,20\nB,2,20,2,20\n"),
            fragments=("study 'A'", "column 'events_t'", "digits 0-9")),
    CliCase("count written 12.0", _csv(CLI_HEADER + "A,1,12.0,3,20\nB,2,20,2,20\n"),
            fragments=("column 'n_t'", "'12.0'", "digits 0-9")),
    CliCase("--level 1.5", _csv(CLI_HEADER + CLI_ROWS), ("--level", "1.5"), fragments=("--level 1.5",)),
    CliCase("--level 0", _csv(CLI_HEADER + CLI_ROWS), ("--level", "0"), fragments=("--level 0",)),
    CliCase("--level 100", _csv(CLI_HEADER + CLI_ROWS), ("--level", "100"), fragments=("--level 100",)),
    CliCase("--level nan", _csv(CLI_HEADER + CLI_ROWS), ("--level", "nan"), fragments=("--level nan",)),
    CliCase("--level 95 accepted", _csv(CLI_HEADER + CLI_ROWS), ("--level", "95")),
    CliCase("duplicated n_t header", _csv("study,events_t,n_t,events_c,n_c,n_t\nA,1,10,3,20,11\nB,2,20,2,20,21\n"),
            fragments=("input.csv, line 1", "column n_t", "twice")),
    CliCase("the same column in two cases", _csv("study,events_t,n_t,events_c,n_c,N_T\nA,1,10,3,20,11\nB,2,20,2,20,21\n"),
            fragments=("input.csv, line 1", "'n_t'", "twice")),
    CliCase("line break inside a study label", _csv(CLI_HEADER + '"A\nB",1,10,3,20\nC,2,20,2,20\n'),
            fragments=("column 'study'", "control character")),
    CliCase("tab inside a study label", _csv(CLI_HEADER + "A\tB,1,10,3,20\nC,2,20,2,20\n"),
            fragments=("column 'study'", "control character")),
    CliCase("semicolon-separated", _csv(CLI_HEADER.replace(",", ";") + CLI_ROWS.replace(",", ";")),
            fragments=("input.csv, line 1", "semicolon")),
    CliCase("tab-separated", _csv(CLI_HEADER.replace(",", "\t") + CLI_ROWS.replace(",", "\t")),
            fragments=("input.csv, line 1", "tab-separated")),
    CliCase("Latin-1 byte", CLI_HEADER.encode() + "Jos\u00e9,1,10,3,20\n".encode("latin-1") + b"B,2,20,2,20\n",
            fragments=("input.csv, line 2", "UTF-8")),
    CliCase("unbalanced quote", _csv(CLI_HEADER + 'A,1,10,3,20\n"B,2,20,2,20\n'),
            fragments=("input.csv, line 3", "quote")),
    CliCase("a row with an extra field", _csv(CLI_HEADER + "A,1,10,3,20,5\nB,2,20,2,20\n"),
            fragments=("input.csv, line 2", "6 fields", "header has 5")),
    CliCase("header only", _csv(CLI_HEADER), fragments=("input.csv", "no studies")),
    CliCase("empty file", b"", fragments=("input.csv", "empty")),
    CliCase("headers in any case (accepted)", _csv("Study,Events_T,N_T,EVENTS_C,n_C\n" + CLI_ROWS)),
    CliCase("UTF-8 byte-order mark and CRLF (accepted)", b"\xef\xbb\xbf" + _csv(CLI_HEADER + CLI_ROWS).replace(b"\n", b"\r\n")),
    CliCase("--labels with one name", _csv(CLI_HEADER + CLI_ROWS), ("--labels", "Treatment"), fragments=("--labels", "two names")),
    CliCase("--forest to a .pdf", _csv(CLI_HEADER + CLI_ROWS), ("--forest", "out.pdf"), fragments=("--forest", ".svg")),
)


def check_cli_case(case: CliCase, tmp: Path) -> list[str]:
    """Run ``python -m mscmeta pool`` in-process on *case*; return what went wrong."""
    from mscmeta.cli import main

    path = tmp / "input.csv"
    path.write_bytes(case.content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["pool", str(path), *case.args])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    stdout, stderr = out.getvalue(), err.getvalue()
    if case.fragments is None:
        return [] if code == 0 and stderr == "" else [f"refused valid input ({code}): {stderr.strip()}"]
    problems = []
    if code != 2 or stdout:
        problems.append(f"exit {code}, stdout {stdout[:200]!r}")
    if stderr.count("\n") != 1 or "Traceback" in stderr:
        problems.append(f"not one line: {stderr!r}")
    missing = [f for f in case.fragments if f not in stderr]
    if missing:
        problems.append(f"missing {missing} in {stderr.strip()!r}")
    return problems


if __name__ == "__main__":
    import sys
    import tempfile

    sys.path.insert(0, str(ROOT / "lib"))
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    passed = 0
    for case in (() if "--cli" in sys.argv else DATA_CASES):
        with tempfile.TemporaryDirectory() as d:
            found = check_case(case, Path(d), tables_in=Path(args[0]) if args else None)
        passed += not found
        print(("PASS " if not found else "FAIL ") + case.name + ("" if not found else "\n    " + "\n    ".join(found)))
    print(f"{passed} of {len(DATA_CASES)} data cases pass")
    cli_passed = 0
    for cli_case in CLI_CASES:
        with tempfile.TemporaryDirectory() as d:
            found = check_cli_case(cli_case, Path(d))
        cli_passed += not found
        print(("PASS " if not found else "FAIL ") + "cli: " + cli_case.name + ("" if not found else "\n    " + "\n    ".join(found)))
    print(f"{cli_passed} of {len(CLI_CASES)} command-line cases pass")
