"""Raw data sheets: schema validation, cross-file rules, and the tables of stage 01.

Every rejection case of issue 4 ("Done when") is tested on a copy of the small fixture
data set: the error must name the file, the study (where a row is concerned) and the
column, and stage 01 (:func:`mscmeta.review.extract.write_extract`) must not write anything.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mscmeta.review import schema as S
from mscmeta.engine.validation import DataError
from mscmeta.review.csvsheet import DataValidationError
from mscmeta.review.extract import (
    eligibility_table,
    extract_tables,
    provenance_summary,
    study_set_comparison,
    table1,
    write_extract,
)
from mscmeta.review.scenarios import ANALYSIS_COLUMNS, analysis_mortality, scenario_studies, scenarios
from mscmeta.review.sheets import load_raw
from mscmeta.bundle.paths import DATA_RAW, PROJECT_ROOT

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "data_small"


# --------------------------------------------------------------------------- helpers


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def set_cell(path: Path, key: str, key_value: str, column: str, value: str) -> None:
    header, rows = read_rows(path)
    hits = [r for r in rows if r[key] == key_value]
    assert hits, f"{key}={key_value} not in {path.name}"
    for r in hits:
        r[column] = value
    write_rows(path, header, rows)


@pytest.fixture
def small(tmp_path) -> Path:
    """A private, writable copy of the fixture data."""
    dst = tmp_path / "raw"
    shutil.copytree(FIXTURE, dst)
    return dst


def assert_rejected(data_dir: Path, out_dir: Path, *fragments: str) -> DataValidationError:
    """Stage 01 must refuse *data_dir* with a message containing every fragment on one
    line, and must not have written (or even created) *out_dir*."""
    with pytest.raises(DataValidationError) as info:
        write_extract(data_dir, out_dir)
    lines = str(info.value).splitlines()
    assert any(all(f in line for f in fragments) for line in lines), (
        f"no line of the error names all of {fragments}:\n{info.value}"
    )
    assert not out_dir.exists(), "outputs were written although the data are invalid"
    return info.value


# --------------------------------------------------------------------------- the real data


def test_real_raw_data_validate():
    raw = load_raw(DATA_RAW)
    assert raw.studies["study_id"].is_unique
    assert scenarios(raw)[0] == "primary"
    assert {"primary", "kirkham-like", "with-2022-trials"} <= set(scenarios(raw))
    for name in scenarios(raw):
        table = analysis_mortality(raw, name)
        assert list(table.columns) == ANALYSIS_COLUMNS
        assert (table["events_msc"] <= table["n_msc"]).all() and (table["events_control"] <= table["n_control"]).all()


def test_fixture_data_validate():
    raw = load_raw(FIXTURE)
    assert 3 <= len(analysis_mortality(raw, "primary")) <= 4
    assert set(scenarios(raw)) == set(scenarios(load_raw(DATA_RAW)))


def test_kirkham_like_scenario_reproduces_kirkham_totals():
    # Kirkham AM et al., Stem Cells Transl Med 2022 (PMC9299509), abstract: "Eleven studies
    # were identified (403 patients ... including 207 given MSCs and 196 controls)"; Table 2:
    # MSC infusions per patient 1: 80, 2: 15, 3: 112. The scenario is the dossier's
    # reconstruction (§5.2); Häberle's 5 MSC patients had 2 (3 patients) or 3 (2 patients).
    raw = load_raw(DATA_RAW)
    st_ = scenario_studies(raw, "kirkham-like")
    assert len(st_) == 11
    assert int(st_["n_msc"].sum()) == 207
    assert int(st_["n_control"].sum()) == 196
    by_dose = st_.groupby(st_["doses"].fillna(0).astype(int))["n_msc"].sum().to_dict()
    unknown = st_[st_["doses"].isna()]["study_id"].tolist()
    assert sorted(unknown) == ["haberle2021", "leng2020", "wei2021"]
    # Leng (7) and Wei (12) counted as single infusions in the reconstruction, Häberle 3 + 2:
    assert by_dose[1] + 7 + 12 == 80
    assert by_dose.get(2, 0) + 3 == 15
    assert by_dose[3] + 2 == 112


def test_primary_scenario_follows_the_decisions():
    raw = load_raw(DATA_RAW)
    included = set(raw.studies.loc[raw.studies["decision"] == "included", "study_id"])
    assert set(scenario_studies(raw, "primary")["study_id"]) == included
    # studies without located deaths are in the review set but never in the analysis
    no_deaths = set(raw.studies.loc[raw.studies["mortality_data"] != "reported", "study_id"])
    for name in scenarios(raw):
        assert not no_deaths & set(analysis_mortality(raw, name)["study_id"])


def test_raw_sheets_are_sorted_and_utf8():
    for name, spec in S.SHEETS.items():
        text = (DATA_RAW / name).read_bytes().decode("utf-8")
        assert "\r\n" not in text, f"{name} has CRLF line endings"
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        if "study_id" in df.columns and name != "scenarios.csv":
            keys = ["study_id", "row_id"] if name == "mortality.csv" else ["study_id"]
            assert df[keys].values.tolist() == df.sort_values(keys)[keys].values.tolist(), f"{name} is not sorted"


def test_every_schema_column_is_documented():
    readme = (PROJECT_ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name, columns in S.documented_columns().items():
        assert f"`{name}`" in readme, f"{name} has no section in data/README.md"
        for col in columns:
            assert f"`{col}`" in readme, f"column {name}:{col} is not documented in data/README.md"


def test_other_stages_sheets_are_documented():
    # data/README.md documents the sheets of notebooks 02 and 05 from their declarations.
    from mscmeta.review import schema_secondary as SS
    from mscmeta.review.rob_sheet import COLUMNS as ROB_COLUMNS

    readme = (PROJECT_ROOT / "data" / "README.md").read_text(encoding="utf-8")
    sheets = {SS.AE_SHEET.file: SS.AE_SHEET.columns, SS.SECONDARY_SHEET.file: SS.SECONDARY_SHEET.columns,
              "risk_of_bias.csv": list(ROB_COLUMNS)}
    for name, columns in sheets.items():
        assert f"`{name}`" in readme
        for col in columns:
            assert f"`{col}`" in readme, f"column {name}:{col} is not documented in data/README.md"


def test_published_values_live_only_in_published_results():
    # The overall OR of Yao 2022 must be read from the data, never typed into stage 01's code.
    raw = load_raw(DATA_RAW)
    p = raw.published_results
    overall = p[(p["quantity"] == "mortality_or") & (p["subgroup"] == "overall")].iloc[0]
    needle = f"{overall['estimate']:.2f}"
    stage01 = ("review/extract.py", "review/sheets.py", "review/csvsheet.py", "review/scenarios.py", "review/schema.py",
               "plots/prisma.py")
    for name in stage01:  # the modules of stage 01
        module = PROJECT_ROOT / "lib" / "mscmeta" / name
        text = module.read_text(encoding="utf-8")
        assert not re.search(rf"(?<![\d.]){re.escape(needle)}(?!\d)", text), f"{module.name} types {needle}"


# --------------------------------------------------------------------------- rejection cases of the issue


def test_rejects_events_greater_than_n(small, tmp_path):
    set_cell(small / "mortality.csv", "row_id", "dilogo2021-survival", "events_msc", "21")
    err = assert_rejected(small, tmp_path / "out", "mortality.csv", "study dilogo2021", "column events_msc", "exceeds n_msc")
    assert "line " in str(err)


def test_rejects_negative_count(small, tmp_path):
    set_cell(small / "mortality.csv", "row_id", "shu2020-d28", "events_control", "-1")
    assert_rejected(small, tmp_path / "out", "mortality.csv", "study shu2020", "column events_control", ">= 0")


@pytest.mark.parametrize("value", ["7.5", "7.0", "seven"])
def test_rejects_fractional_or_non_numeric_count(small, tmp_path, value):
    set_cell(small / "mortality.csv", "row_id", "lanzoni2021-d31", "events_control", value)
    assert_rejected(small, tmp_path / "out", "mortality.csv", "study lanzoni2021", "column events_control", "whole number")


def test_rejects_missing_column(small, tmp_path):
    header, rows = read_rows(small / "mortality.csv")
    header.remove("n_control")
    for r in rows:
        del r["n_control"]
    write_rows(small / "mortality.csv", header, rows)
    # A missing header column concerns every row, so the message names file, line 1 and column.
    assert_rejected(small, tmp_path / "out", "mortality.csv", "line 1", "column n_control", "missing")


def test_rejects_unknown_column(small, tmp_path):
    header, rows = read_rows(small / "studies.csv")
    header.append("comment")
    for r in rows:
        r["comment"] = ""
    write_rows(small / "studies.csv", header, rows)
    assert_rejected(small, tmp_path / "out", "studies.csv", "column comment", "unknown column")


def test_rejects_study_in_mortality_absent_from_studies(small, tmp_path):
    header, rows = read_rows(small / "mortality.csv")
    ghost = dict(rows[0], row_id="ghost2020-d28", study_id="ghost2020", use="alternative")
    write_rows(small / "mortality.csv", header, rows + [ghost])
    assert_rejected(
        small, tmp_path / "out", "mortality.csv", "study ghost2020", "column study_id", "not a study_id of studies.csv"
    )


def test_rejects_duplicate_study(small, tmp_path):
    header, rows = read_rows(small / "studies.csv")
    dup = next(r for r in rows if r["study_id"] == "dilogo2021")
    rows.insert(rows.index(dup) + 1, dict(dup, label="Dilogo 2021 (copy)"))
    write_rows(small / "studies.csv", header, rows)
    assert_rejected(small, tmp_path / "out", "studies.csv", "study dilogo2021", "column study_id", "duplicate")


def test_rejects_unknown_design(small, tmp_path):
    set_cell(small / "studies.csv", "study_id", "shu2020", "design", "cohort")
    assert_rejected(small, tmp_path / "out", "studies.csv", "study shu2020", "column design", "must be one of")


def test_rejects_unknown_severity(small, tmp_path):
    set_cell(small / "studies.csv", "study_id", "lanzoni2021", "severity", "moderate")
    assert_rejected(small, tmp_path / "out", "studies.csv", "study lanzoni2021", "column severity", "must be one of")


def test_rejects_included_study_without_mortality_row(small, tmp_path):
    header, rows = read_rows(small / "mortality.csv")
    write_rows(small / "mortality.csv", header, [r for r in rows if r["study_id"] != "dilogo2021"])
    err = assert_rejected(
        small, tmp_path / "out", "studies.csv", "study dilogo2021", "column mortality_data", "has no mortality.csv row"
    )
    # the scenarios that pointed at the removed row are reported too, in the same error
    assert "scenarios.csv" in str(err) and "dilogo2021-survival" in str(err)


def test_rejects_scenario_using_a_row_of_a_study_without_data(small, tmp_path):
    # Shi's deaths are 'not located'; its inferred alternative row may not be used.
    header, rows = read_rows(small / "mortality.csv")
    shi = dict(rows[0], row_id="shi2021-guess", study_id="shi2021", events_msc="0", n_msc="65",
               events_control="0", n_control="35", use="alternative")
    write_rows(small / "mortality.csv", header, sorted(rows + [shi], key=lambda r: (r["study_id"], r["row_id"])))
    set_cell(small / "scenarios.csv", "study_id", "shi2021", "mortality_row", "shi2021-guess")
    assert_rejected(small, tmp_path / "out", "scenarios.csv", "study shi2021", "column mortality_row", "not located")


def test_reports_every_problem_at_once(small, tmp_path):
    set_cell(small / "mortality.csv", "row_id", "dilogo2021-survival", "events_msc", "21")
    set_cell(small / "studies.csv", "study_id", "shu2020", "design", "cohort")
    set_cell(small / "studies.csv", "study_id", "lanzoni2021", "blinding", "blind")
    err = assert_rejected(small, tmp_path / "out", "mortality.csv", "dilogo2021", "events_msc")
    assert len(err.failures) == 3
    text = str(err)
    assert "column design" in text and "column blinding" in text
    assert isinstance(err, ValueError) and isinstance(err, DataError)


def test_missing_sheet_and_missing_folder(small, tmp_path):
    (small / "search.csv").unlink()
    assert_rejected(small, tmp_path / "out", "search.csv", "required sheet is missing")
    with pytest.raises(DataValidationError, match="does not exist"):
        load_raw(tmp_path / "nowhere")


def test_optional_sheet_with_unknown_study(small, tmp_path):
    set_cell(small / "risk_of_bias.csv", "study_id", "shu2020", "study_id", "shu2099")
    assert_rejected(small, tmp_path / "out", "risk_of_bias.csv", "study shu2099", "column study_id")


def test_line_numbers_point_at_the_csv_line(small, tmp_path):
    header, rows = read_rows(small / "studies.csv")
    index = next(i for i, r in enumerate(rows) if r["study_id"] == "shu2020")
    set_cell(small / "studies.csv", "study_id", "shu2020", "msc_source", "cord")
    assert_rejected(small, tmp_path / "out", "studies.csv", f"line {index + 2}", "study shu2020", "column msc_source")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.integers(min_value=-3, max_value=40), n=st.integers(min_value=1, max_value=30))
def test_validation_accepts_exactly_the_possible_counts(tmp_path_factory, events, n):
    # Property: a 2x2 cell passes iff 0 <= events <= n (n at most the study's arm size, 20).
    data = tmp_path_factory.mktemp("prop") / "raw"
    shutil.copytree(FIXTURE, data)
    set_cell(data / "mortality.csv", "row_id", "dilogo2021-survival", "events_msc", str(events))
    set_cell(data / "mortality.csv", "row_id", "dilogo2021-survival", "n_msc", str(n))
    ok = 0 <= events <= n <= 20
    if ok:
        row = analysis_mortality(load_raw(data)).set_index("study_id").loc["dilogo2021"]
        assert (row["events_msc"], row["n_msc"]) == (events, n)
    else:
        with pytest.raises(DataValidationError):
            load_raw(data)


# --------------------------------------------------------------------------- tables


def test_analysis_mortality_contract():
    raw = load_raw(FIXTURE)
    t = analysis_mortality(raw, "primary")
    assert list(t.columns) == ANALYSIS_COLUMNS
    assert t["study_id"].tolist() == sorted(t["study_id"])
    assert t["randomised"].tolist() == (t["design"] == "RCT").tolist()
    assert t["derived"].dtype == bool
    # the review-only study (Shi, deaths not located) is not in the analysis table
    assert "shi2021" not in set(t["study_id"])


def test_scenarios_select_rows():
    raw = load_raw(FIXTURE)
    primary = analysis_mortality(raw, "primary").set_index("study_id")
    kirkham = analysis_mortality(raw, "kirkham-like").set_index("study_id")
    assert primary.loc["lanzoni2021", "row_id"] == "lanzoni2021-d31"
    assert kirkham.loc["lanzoni2021", "row_id"] == "lanzoni2021-s1"
    assert "monsel2022" in set(analysis_mortality(raw, "with-2022-trials")["study_id"])
    assert "monsel2022" not in set(primary.index)


def test_unknown_scenario_is_a_clear_error():
    raw = load_raw(FIXTURE)
    with pytest.raises(DataError, match="unknown scenario 'rct-only'.*primary"):
        analysis_mortality(raw, "rct-only")


def test_reporting_tables():
    raw = load_raw(FIXTURE)
    t1 = table1(raw, "primary")
    assert t1["study_id"].tolist() == sorted(scenario_studies(raw, "primary")["study_id"])
    shi = t1.set_index("study_id").loc["shi2021"]
    assert shi["Deaths MSC"] == "—" and "not located" in shi["Source of deaths"]
    elig = eligibility_table(raw)
    assert len(elig) == len(raw.studies)
    roles = elig.set_index("study_id")
    assert roles.loc["shi2021", "in_primary"] == "review only"
    assert roles.loc["monsel2022", "in_primary"] == "no"
    assert roles.loc["monsel2022", "in_with-2022-trials"].startswith("mortality")
    prov = provenance_summary(raw)
    primary_rows = prov[(prov["scope"] == "primary") & (prov["table"] == "mortality.csv")]
    assert primary_rows["rows"].sum() == len(analysis_mortality(raw, "primary"))
    assert (prov["numbers"] == prov["rows"] * prov["table"].map({"mortality.csv": 4}).fillna(1)).all()
    cmp = study_set_comparison(raw, "primary").set_index("quantity")
    assert cmp.loc["studies", "this_scenario"] == 4
    p = raw.published_results
    assert cmp.loc["studies", "published"] == p.loc[p["quantity"] == "studies", "estimate"].iloc[0]


def test_write_extract_writes_every_table_and_the_figure(tmp_path):
    written = write_extract(FIXTURE, tmp_path / "out", "primary")
    names = {p.name for p in written}
    for stem in extract_tables(load_raw(FIXTURE), "primary"):
        assert f"{stem}.csv" in names
        assert (tmp_path / "out" / "tables" / f"{stem}.md").exists()
    assert {"prisma_flow.png", "prisma_flow.svg"} <= names
    again = write_extract(FIXTURE, tmp_path / "out2", "primary")
    for a, b in zip(sorted(written), sorted(again)):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs"
