"""Load and validate the raw data sheets; build the tidy tables of stage 01-extract.

Entry points
------------
:func:`load_raw`
    Read every sheet of ``data/raw/``, validate it against :mod:`mscmeta.review.schema`
    (per-sheet pandera schemas, then the cross-file rules) and return a
    :class:`RawData`. *Every* problem is collected and raised at once in one
    :class:`DataValidationError`, whose message lists file, line, study, column and
    what is wrong. Nothing is written by this module.
:func:`analysis_mortality`
    The mortality rows of one inclusion scenario, with the study characteristics the
    later stages need (the stage contract of notebook 01).
:func:`table1`, :func:`eligibility_table`, :func:`provenance_summary`,
:func:`study_set_comparison`, :func:`extract_tables`
    Reporting tables. :func:`write_extract` builds all of them in memory first and
    only then writes them, so a failure leaves no output behind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from mscmeta.review import schema as S
from mscmeta.engine.validation import DataError

__all__ = [
    "DataError",
    "DataValidationError",
    "Failure",
    "RawData",
    "load_raw",
    "scenarios",
    "scenario_definition",
    "scenario_studies",
    "analysis_mortality",
    "studies_table",
    "table1",
    "eligibility_table",
    "provenance_summary",
    "study_set_comparison",
    "scenario_summary_markdown",
    "readings_markdown",
    "derivations_markdown",
    "extract_tables",
    "write_extract",
]


# --------------------------------------------------------------------------- errors




@dataclass(frozen=True, order=True)
class Failure:
    """One validation problem: where (file, CSV line, study, column) and what."""

    file: str
    line: int | None
    study: str | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        where.append(f"line {self.line}" if self.line is not None else "whole file")
        if self.study:
            where.append(f"study {self.study}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


class DataValidationError(DataError):
    """Raised by :func:`load_raw` with *all* problems found in the raw sheets.

    A :class:`mscmeta.engine.validation.DataError` (hence a :class:`ValueError`). Unlike the
    engine's one-line messages, the message lists one problem per line.

    Attributes
    ----------
    failures : list of Failure
        Sorted by file, line, column.
    """

    def __init__(self, failures: Iterable[Failure], data_dir: str | os.PathLike = "") -> None:
        self.failures = sorted(set(failures), key=lambda f: (f.file, f.line or 0, f.column or "", f.message))
        self.data_dir = str(data_dir)
        lines = [f"{len(self.failures)} problem(s) in the raw data sheets of {self.data_dir}:"]
        lines += [f"  - {f}" for f in self.failures]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- container


@dataclass(frozen=True)
class RawData:
    """The validated raw sheets (converted to typed columns)."""

    studies: pd.DataFrame
    mortality: pd.DataFrame
    scenarios: pd.DataFrame
    scenario_definitions: pd.DataFrame
    search: pd.DataFrame
    published_results: pd.DataFrame
    optional: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    data_dir: Path = Path(".")

    @property
    def adverse_events(self) -> pd.DataFrame | None:
        return self.optional.get("adverse_events.csv")

    @property
    def secondary_outcomes(self) -> pd.DataFrame | None:
        return self.optional.get("secondary_outcomes.csv")

    @property
    def risk_of_bias(self) -> pd.DataFrame | None:
        return self.optional.get("risk_of_bias.csv")


# --------------------------------------------------------------------------- reading


def _line(index: object) -> int | None:
    """CSV line of a DataFrame row index (header is line 1)."""
    try:
        i = int(index)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return i + 2 if i >= 0 else None


def _read_csv(path: Path) -> tuple[pd.DataFrame | None, list[Failure]]:
    """Read a sheet with every cell as text; empty cells become missing."""
    name = path.name
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
            quoting=csv.QUOTE_MINIMAL,
        )
    except UnicodeDecodeError as exc:
        return None, [Failure(name, None, None, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")]
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return None, [Failure(name, None, None, None, f"cannot be parsed as CSV: {exc}")]
    dupes = [c for c in df.columns if "." in c and c.rsplit(".", 1)[0] in df.columns]
    failures = [Failure(name, 1, None, c.rsplit(".", 1)[0], "column appears twice in the header") for c in dupes]
    return df, failures


def _study_of(df: pd.DataFrame, index: object, key: str | None) -> str | None:
    if key is None or key not in df.columns:
        return None
    try:
        value = df.at[index, key]
    except KeyError:
        return None
    return None if pd.isna(value) else str(value)


def _translate_case(
    case: object, spec: S.SheetSpec, df: pd.DataFrame, skip: set[tuple[int, str]]
) -> Failure | None:
    """Translate one pandera failure case into a :class:`Failure` (None = skip)."""
    rules = {f"rule:{r.name}": r for r in spec.row_rules}
    check = str(case.check)
    column = None if case.column is None or pd.isna(case.column) else str(case.column)
    index = None if case.index is None or pd.isna(case.index) else case.index
    value = case.failure_case
    if check == "column_in_dataframe":
        return Failure(spec.file, 1, None, str(value), "required column is missing from the header")
    if check == "column_in_schema":
        return Failure(spec.file, 1, None, str(value), "unknown column (not in the schema; see data/README.md)")
    if index is None:
        if check in rules:
            return None
        return Failure(spec.file, None, None, column, f"{check} ({value})")
    study = _study_of(df, index, spec.key_column)
    if check in rules:
        rule = rules[check]
        return Failure(spec.file, _line(index), study, rule.column, rule.message(df.loc[index]))
    if check == "multiple_fields_uniqueness" or (column is None and "unique" in check):
        keys = ", ".join(spec.unique_together)
        return Failure(spec.file, _line(index), study, keys, f"duplicate combination of ({keys})")
    if column is not None and (int(index), column) in skip:
        return None
    if check == "not_nullable":
        message = "required value is empty"
    elif check == "field_uniqueness":
        message = f"duplicate value {value!r} (must be unique)"
    elif check.startswith(("dtype(", "coerce_dtype(")):
        message = f"value {value!r} has the wrong type"
    else:
        message = f"{check}, found {S._fmt(value)}"
    return Failure(spec.file, _line(index), study, column, message)


def _failures_of(
    err: pa.errors.SchemaErrors, spec: S.SheetSpec, df: pd.DataFrame, skip: set[tuple[int, str]]
) -> list[Failure]:
    out = (_translate_case(case, spec, df, skip) for case in err.failure_cases.itertuples(index=False))
    return [f for f in out if f is not None]


def _validate_sheet(spec: S.SheetSpec, text: pd.DataFrame) -> tuple[pd.DataFrame, list[Failure]]:
    """Validate one sheet: text schema (form of cells), then typed schema (values).

    Cells that fail the text stage are not reported again by the typed stage.
    """
    failures: list[Failure] = []
    skip: set[tuple[int, str]] = set()
    try:
        S.text_schema(spec).validate(text, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures += _failures_of(err, spec, text, set())
        for case in err.failure_cases.itertuples(index=False):
            if not (case.column is None or pd.isna(case.column) or case.index is None or pd.isna(case.index)):
                skip.add((int(case.index), str(case.column)))
    present = [c for c in text.columns if c in spec.columns]
    typed = S.convert(spec, text[present])
    try:
        S.typed_schema(spec, present).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures += _failures_of(err, spec, typed, skip)
    return typed, failures


def _foreign_key_failures(rule: S.ForeignKey, tables: Mapping[str, pd.DataFrame]) -> list[Failure]:
    if rule.file not in tables or rule.target_file not in tables:
        return []
    df, target = tables[rule.file], tables[rule.target_file]
    if rule.column not in df.columns or rule.target_column not in target.columns:
        return []
    known = set(target[rule.target_column].dropna())
    bad = df[df[rule.column].notna() & ~df[rule.column].isin(known)]
    out = []
    for idx, row in bad.iterrows():
        study = row.get("study_id") if "study_id" in df.columns else None
        study = None if study is None or pd.isna(study) else str(study)
        out.append(
            Failure(
                rule.file,
                _line(idx),
                study,
                rule.column,
                f"{row[rule.column]!r} is not a {rule.target_column} of {rule.target_file}",
            )
        )
    return out


def _expectation_failures(rule: S.Expectation, tables: Mapping[str, pd.DataFrame]) -> list[Failure]:
    if any(n not in tables for n in rule.needs):
        return []
    bad = rule.failing(tables)
    out = []
    for idx, row in bad.iterrows():
        study = row.get("study_id") if "study_id" in bad.columns else None
        study = None if study is None or pd.isna(study) else str(study)
        out.append(Failure(rule.file, _line(idx), study, rule.column, rule.message(row)))
    return out


def load_raw(data_dir: str | os.PathLike, optional_sheets: Iterable[str] | None = None) -> RawData:
    """Read and validate every raw sheet in *data_dir*.

    Required sheets are those of :data:`mscmeta.review.schema.SHEETS`; the sheets of
    :data:`mscmeta.review.schema.OPTIONAL_SHEETS` (other stages' data) are read when present
    and only their ``study_id`` values are checked against ``studies.csv``.

    Parameters
    ----------
    data_dir : path-like
        Folder with the hand-edited CSV sheets (``data/raw``).
    optional_sheets : iterable of str, optional
        Which of the optional sheets to read (default: all of them). A stage reads only
        the sheets it uses, so the Makefile can rerun it only when one of those changes.

    Returns
    -------
    RawData

    Raises
    ------
    DataValidationError
        With every problem found (file, CSV line, study, column, what is wrong).
        Foreign keys are always checked; the other cross-file rules only when the
        sheets they read passed their own checks, so one broken sheet does not produce
        a cascade of follow-up errors.
    """
    data_dir = Path(data_dir)
    failures: list[Failure] = []
    if not data_dir.is_dir():
        raise DataValidationError([Failure(str(data_dir), None, None, None, "data folder does not exist")], data_dir)
    typed: dict[str, pd.DataFrame] = {}
    clean: set[str] = set()
    for name, spec in S.SHEETS.items():
        path = data_dir / name
        if not path.is_file():
            failures.append(Failure(name, None, None, None, "required sheet is missing"))
            continue
        text, read_failures = _read_csv(path)
        failures += read_failures
        if text is None:
            continue
        frame, sheet_failures = _validate_sheet(spec, text)
        failures += sheet_failures
        typed[name] = frame
        if not sheet_failures and not read_failures:
            clean.add(name)
    optional: dict[str, pd.DataFrame] = {}
    wanted = S.OPTIONAL_SHEETS if optional_sheets is None else tuple(optional_sheets)
    unknown = sorted(set(wanted) - set(S.OPTIONAL_SHEETS))
    if unknown:
        raise ValueError(f"unknown optional sheet(s) {', '.join(unknown)}; known: {', '.join(S.OPTIONAL_SHEETS)}")
    for name in S.OPTIONAL_SHEETS:
        if name not in wanted:
            continue
        path = data_dir / name
        if not path.is_file():
            continue
        text, read_failures = _read_csv(path)
        failures += read_failures
        if text is None:
            continue
        if "study_id" not in text.columns:
            failures.append(Failure(name, 1, None, "study_id", "required column is missing from the header"))
            continue
        optional[name] = text
        clean.add(name)
    loaded = {**typed, **optional}
    clean_tables = {n: df for n, df in loaded.items() if n in clean}
    for rule in S.CROSS_FILE_RULES:
        if isinstance(rule, S.ForeignKey):
            failures += _foreign_key_failures(rule, loaded)
        else:
            failures += _expectation_failures(rule, clean_tables)
    if failures:
        raise DataValidationError(failures, data_dir)

    def ordered(name: str, keys: list[str]) -> pd.DataFrame:
        return typed[name].sort_values(keys, kind="mergesort").reset_index(drop=True)

    return RawData(
        studies=ordered("studies.csv", ["study_id"]),
        mortality=ordered("mortality.csv", ["study_id", "row_id"]),
        scenarios=ordered("scenarios.csv", ["scenario", "study_id"]),
        scenario_definitions=ordered("scenario_definitions.csv", ["order"]),
        search=typed["search.csv"].set_index("box").loc[list(S.PRISMA_BOXES)].reset_index(),
        published_results=typed["published_results.csv"].reset_index(drop=True),
        optional=optional,
        data_dir=data_dir,
    )


# --------------------------------------------------------------------------- scenarios


def scenarios(raw: RawData) -> list[str]:
    """Names of the defined inclusion scenarios, in display order (``primary`` first)."""
    return list(raw.scenario_definitions["scenario"])


def scenario_definition(raw: RawData, scenario: str) -> pd.Series:
    """The row of ``scenario_definitions.csv`` for *scenario* (ValueError if unknown)."""
    _check_scenario(raw, scenario)
    d = raw.scenario_definitions
    return d[d["scenario"] == scenario].iloc[0]


def _check_scenario(raw: RawData, scenario: str) -> None:
    if scenario not in scenarios(raw):
        raise DataError(
            f"unknown scenario {scenario!r}; defined in scenario_definitions.csv: {', '.join(scenarios(raw))}"
        )


def scenario_studies(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Studies in the review set of *scenario*, joined with their characteristics.

    Columns: those of ``studies.csv`` plus ``mortality_row`` and ``scenario_reason``.
    Sorted by ``study_id``.
    """
    _check_scenario(raw, scenario)
    sc = raw.scenarios[raw.scenarios["scenario"] == scenario][["study_id", "mortality_row", "reason"]]
    sc = sc.rename(columns={"reason": "scenario_reason"})
    out = raw.studies.merge(sc, on="study_id", how="inner", validate="one_to_one")
    return out.sort_values("study_id", kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------- analysis tables

#: Columns of ``analysis_mortality.csv`` (the stage contract of notebook 01).
ANALYSIS_COLUMNS = [
    "study_id",
    "label",
    "year",
    "pub_date",
    "design",
    "randomised",
    "blinding",
    "severity",
    "severity_subgroup",
    "doses",
    "msc_source",
    "country",
    "events_msc",
    "n_msc",
    "events_control",
    "n_control",
    "timepoint",
    "source_level",
    "derived",
    "row_id",
    "source",
    "location",
]


def analysis_mortality(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Per-study 2×2 mortality counts entering the mortality analysis of *scenario*.

    One row per study of the scenario whose ``mortality_row`` is set (studies in the
    review set without usable comparative deaths are not in this table; see
    :func:`eligibility_table`). ``randomised`` is true for design ``RCT``;
    ``derived`` is true when the counts were worked out from percentages or
    survivors (column ``derivation`` of ``mortality.csv``).

    Returns
    -------
    DataFrame
        Columns :data:`ANALYSIS_COLUMNS`, sorted by ``study_id``.
    """
    st = scenario_studies(raw, scenario)
    st = st[st["mortality_row"].notna()]
    m = raw.mortality.set_index("row_id")
    rows = m.loc[list(st["mortality_row"])].reset_index()
    study_cols = ["study_id", "label", "year", "pub_date", "design", "blinding", "severity", "severity_subgroup",
                  "doses", "msc_source", "country"]
    out = st[study_cols + ["mortality_row"]].merge(
        rows.drop(columns=["study_id"]), left_on="mortality_row", right_on="row_id", how="left", validate="one_to_one"
    )
    out["randomised"] = out["design"].isin(S.RANDOMISED_DESIGNS)
    out["derived"] = out["derivation"].notna()
    out = out[ANALYSIS_COLUMNS].sort_values("study_id", kind="mergesort").reset_index(drop=True)
    for c in ("events_msc", "n_msc", "events_control", "n_control", "year"):
        out[c] = out[c].astype("int64")
    return out


def studies_table(raw: RawData) -> pd.DataFrame:
    """All candidate studies (``studies.csv`` as validated), sorted by ``study_id``."""
    return raw.studies.copy()


def _arm(events: object, n: object) -> str:
    if pd.isna(n):
        return "—"
    return f"{int(events)}/{int(n)}" if not pd.isna(events) else f"NL/{int(n)}"


def _severity_text(row: pd.Series) -> str:
    text = str(row["severity"])
    parts = []
    if not pd.isna(row["n_severe"]):
        parts.append(f"{int(row['n_severe'])} severe")
    if not pd.isna(row["n_critical"]):
        parts.append(f"{int(row['n_critical'])} critical")
    return f"{text} ({', '.join(parts)})" if parts else text


def table1(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Table 1: characteristics of the studies in the review set of *scenario*.

    One row per study, formatted for reading (text columns). Deaths are shown as
    ``deaths/n`` per arm from the scenario's mortality row, with its time point and
    source level; studies without usable comparative deaths show why.
    """
    st = scenario_studies(raw, scenario)
    m = raw.mortality.set_index("row_id")
    rows = []
    for _, r in st.iterrows():
        if pd.isna(r["mortality_row"]):
            deaths_msc = deaths_ctl = "—"
            timepoint = ""
            level = f"no comparative deaths ({r['mortality_data']})"
        else:
            mr = m.loc[r["mortality_row"]]
            deaths_msc = _arm(mr["events_msc"], mr["n_msc"])
            deaths_ctl = _arm(mr["events_control"], mr["n_control"])
            timepoint = mr["timepoint"]
            level = mr["source_level"] + (" (derived)" if not pd.isna(mr["derivation"]) else "")
        rows.append(
            {
                "Study": r["label"],
                "Country": "" if pd.isna(r["country"]) else r["country"],
                "Design": r["design"],
                "Blinding": r["blinding"],
                "Severity": _severity_text(r),
                "MSC source": r["msc_source"],
                "Doses": "NR" if pd.isna(r["doses"]) else str(int(r["doses"])),
                "Cell dose": "" if pd.isna(r["cell_dose"]) else r["cell_dose"],
                "n MSC": "" if pd.isna(r["n_msc"]) else str(int(r["n_msc"])),
                "n control": "—" if pd.isna(r["n_control"]) else str(int(r["n_control"])),
                "Deaths MSC": deaths_msc,
                "Deaths control": deaths_ctl,
                "Time point": timepoint,
                "Source of deaths": level,
                "study_id": r["study_id"],
            }
        )
    cols = ["study_id", "Study", "Country", "Design", "Blinding", "Severity", "MSC source", "Doses", "Cell dose",
            "n MSC", "n control", "Deaths MSC", "Deaths control", "Time point", "Source of deaths"]
    return pd.DataFrame(rows, columns=cols)


def eligibility_table(raw: RawData) -> pd.DataFrame:
    """Every candidate study with its decision, reason and role in each scenario.

    For each scenario a column ``in_<scenario>`` says ``mortality`` (enters the
    mortality analysis, with the mortality row used), ``review only`` (in the review
    set but without usable comparative deaths) or ``no``.
    """
    st = raw.studies
    out = st[["study_id", "label", "design", "severity", "decision", "reason", "mortality_data"]].copy()
    for name in scenarios(raw):
        sc = raw.scenarios[raw.scenarios["scenario"] == name].set_index("study_id")["mortality_row"]
        role = []
        for sid in out["study_id"]:
            if sid not in sc.index:
                role.append("no")
            elif pd.isna(sc[sid]):
                role.append("review only")
            else:
                role.append(f"mortality ({sc[sid]})")
        out[f"in_{name}"] = role
    return out.sort_values("study_id", kind="mergesort").reset_index(drop=True)


def provenance_summary(raw: RawData) -> pd.DataFrame:
    """How many numbers come from primary papers, preprints, registries, later reviews.

    Rows: for every scenario (``scope`` = scenario name) the mortality rows it uses,
    and ``all rows`` for every row of ``mortality.csv``; grouped by ``source_level``
    and ``derived``. ``rows`` counts 2×2 rows, ``numbers`` the per-arm counts in them
    (4 per row). Optional sheets with a ``source_level`` column (adverse events,
    secondary outcomes, risk of bias) are tallied too, one number (or judgement) per
    row; ``derived`` is ``yes`` where their ``derivation`` column is filled.
    """
    parts = []

    def tally(scope: str, table: str, df: pd.DataFrame, per_row: int) -> None:
        if df.empty:
            return
        derived = df["derivation"].notna() if "derivation" in df.columns else pd.Series(False, index=df.index)
        g = (
            pd.DataFrame({"source_level": df["source_level"].fillna("not stated"), "derived": derived})
            .groupby(["source_level", "derived"], sort=True)
            .size()
            .reset_index(name="rows")
        )
        g.insert(0, "table", table)
        g.insert(0, "scope", scope)
        g["numbers"] = g["rows"] * per_row
        parts.append(g)

    for name in scenarios(raw):
        used = analysis_mortality(raw, name)
        rows = raw.mortality.set_index("row_id").loc[list(used["row_id"])].reset_index()
        tally(name, "mortality.csv", rows, 4)
    tally("all rows", "mortality.csv", raw.mortality, 4)
    for sheet, df in sorted(raw.optional.items()):
        if "source_level" in df.columns:
            tally("all rows", sheet, df, 1)
    out = pd.concat(parts, ignore_index=True)
    out["derived"] = out["derived"].map({True: "yes", False: "no"})
    return out[["scope", "table", "source_level", "derived", "rows", "numbers"]]


def _published_value(raw: RawData, quantity: str, subgroup: str = "overall") -> float | None:
    p = raw.published_results
    hit = p[(p["quantity"] == quantity) & (p["subgroup"] == subgroup)]
    if hit.empty or pd.isna(hit.iloc[0]["estimate"]):
        return None
    return float(hit.iloc[0]["estimate"])


def study_set_comparison(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Size of the scenario's review set next to the published counts of Yao 2022.

    Quantities: studies, articles, patients (n MSC + n control), smallest and largest
    study, and the number of studies entering the mortality analysis. Published
    values come from ``published_results.csv`` (empty where not reported).
    """
    st = scenario_studies(raw, scenario)
    sizes = st["n_msc"].fillna(0).astype(int) + st["n_control"].fillna(0).astype(int)
    mort = analysis_mortality(raw, scenario)
    rows = [
        ("studies", "studies in the review set", len(st)),
        ("articles", "articles reporting them", int(st["n_articles"].sum())),
        ("patients", "patients (n MSC + n control)", int(sizes.sum())),
        ("study_size_min", "smallest study (patients)", int(sizes.min()) if len(st) else None),
        ("study_size_max", "largest study (patients)", int(sizes.max()) if len(st) else None),
        ("mortality_studies", "studies in the mortality analysis", len(mort)),
    ]
    out = pd.DataFrame(rows, columns=["quantity", "description", "this_scenario"])
    out["this_scenario"] = out["this_scenario"].astype("Int64")
    out["published"] = pd.array([_published_value(raw, q) for q in out["quantity"]], dtype="Float64").round().astype("Int64")
    out["difference"] = out["this_scenario"] - out["published"]
    out.insert(0, "scenario", scenario)
    return out


def scenario_summary_markdown(raw: RawData, scenario: str = "primary") -> str:
    """Markdown narrative of *scenario* with numbers computed from the data."""
    d = scenario_definition(raw, scenario)
    st = scenario_studies(raw, scenario)
    mort = analysis_mortality(raw, scenario)
    review_only = st[st["mortality_row"].isna()]
    cmp = study_set_comparison(raw, scenario).set_index("quantity")
    lines = [
        f"### Scenario `{scenario}`: {d['label']}",
        "",
        str(d["description"]),
        "",
        f"*Basis:* {d['basis']}",
        "",
        f"- Review set: **{len(st)} studies** in {int(st['n_articles'].sum())} articles, "
        f"{int(cmp.loc['patients', 'this_scenario'])} patients.",
        f"- Mortality analysis: **{len(mort)} studies**; "
        f"{int(mort['derived'].sum())} of them with counts derived from percentages or survivors; "
        f"{int((mort['source_level'] == 'later review').sum())} resting on a later review only.",
    ]
    if len(review_only):
        items = "; ".join(f"{r.label} ({r.mortality_data})" for r in review_only.itertuples())
        lines.append(f"- In the review set without comparative deaths (not in the mortality analysis): {items}.")
    pub = cmp.loc[["studies", "articles", "patients", "study_size_min", "study_size_max"]]
    diffs = [
        f"{q.replace('_', ' ')}: {int(r.this_scenario)} here vs {int(r.published)} published"
        for q, r in pub.iterrows()
        if not pd.isna(r.published)
    ]
    if diffs:
        lines.append("- Compared with Yao 2022 (published_results.csv): " + "; ".join(diffs) + ".")
    return "\n".join(lines) + "\n"


def _reading(r: pd.Series) -> str:
    return (
        f"`{r['row_id']}`: {int(r['events_msc'])}/{int(r['n_msc'])} vs "
        f"{int(r['events_control'])}/{int(r['n_control'])}, {r['timepoint']} ({r['source_level']}; use: {r['use']})"
    )


def readings_markdown(raw: RawData) -> str:
    """Markdown list of the studies with an alternative mortality reading, with the notes.

    These are the places where sources disagree, a later time point exists, or a
    reading rests on an inference; the row marked ``use = primary`` (if any) is the
    project's default, other scenarios may pick another row.
    """
    m = raw.mortality
    labels = raw.studies.set_index("study_id")["label"]
    with_alternative = set(m.loc[m["use"] == "alternative", "study_id"])
    multi = m[m["study_id"].isin(with_alternative)]
    if multi.empty:
        return "No study has an alternative mortality reading.\n"
    lines = []
    for sid, rows in multi.groupby("study_id", sort=True):
        lines.append(f"- **{labels.get(sid, sid)}**")
        for _, r in rows.iterrows():
            note = "" if pd.isna(r["note"]) else f" — {r['note']}"
            lines.append(f"  - {_reading(r)}{note}")
    return "\n".join(lines) + "\n"


def derivations_markdown(raw: RawData, scenario: str = "primary") -> str:
    """Markdown list of the mortality counts of *scenario* that are derived, with the arithmetic."""
    used = analysis_mortality(raw, scenario)
    m = raw.mortality.set_index("row_id")
    rows = m.loc[list(used.loc[used["derived"], "row_id"])]
    if rows.empty:
        return f"No count of scenario `{scenario}` is derived.\n"
    labels = raw.studies.set_index("study_id")["label"]
    lines = [f"- **{labels[r.study_id]}** ({rid}): {r.derivation}." for rid, r in rows.iterrows()]
    return "\n".join(lines) + "\n"


def extract_tables(raw: RawData, scenario: str = "primary") -> dict[str, pd.DataFrame]:
    """All tables of stage 01-extract for *scenario*, keyed by output file stem."""
    return {
        "studies": studies_table(raw),
        "analysis_mortality": analysis_mortality(raw, scenario),
        "eligibility": eligibility_table(raw),
        "provenance_summary": provenance_summary(raw),
        "table1": table1(raw, scenario),
        "study_set_comparison": study_set_comparison(raw, scenario),
    }


def write_extract(data_dir: str | os.PathLike, out_dir: str | os.PathLike, scenario: str = "primary") -> list[Path]:
    """Run stage 01 without the notebook: validate, build everything, then write.

    Validation (:func:`load_raw`) and the construction of every table and of the
    PRISMA figure happen before the first file is written, so invalid data leaves
    *out_dir* untouched. Writes ``<out_dir>/tables/<name>.csv`` (+ ``.md``) and
    ``<out_dir>/figures/prisma_flow.png|.svg``.
    """
    from mscmeta.bundle.io import save_figure, write_table
    from mscmeta.bundle.paths import output_dirs
    from mscmeta.plots.prisma import prisma_flow

    raw = load_raw(data_dir)
    tables = extract_tables(raw, scenario)
    fig = prisma_flow(raw.search)
    dirs = output_dirs(out_dir)
    written = [write_table(df, dirs["tables"] / f"{name}.csv") for name, df in tables.items()]
    written += save_figure(fig, dirs["figures"] / "prisma_flow", close=True)
    return written
