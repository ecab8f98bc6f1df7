"""Machine-readable schemas of the hand-edited raw data sheets in ``data/raw/``.

Each sheet is declared once, as a tuple of :class:`Field` (one per column) plus
:class:`RowRule` (checks that need several columns of the same row). From that
declaration this module builds two pandera schemas per sheet:

* a **text schema** (:func:`text_schema`) that validates the cells as written in the
  CSV (every cell is read as text): required columns present, no unknown columns,
  required cells filled, whole numbers written as whole numbers, numbers as numbers,
  dates as ISO dates;
* a **typed schema** (:func:`typed_schema`) that validates the converted values:
  allowed values, ranges, uniqueness, patterns and the row rules.

Checks that span several sheets (foreign keys, "an included study needs a mortality
row", ...) are declared in :data:`CROSS_FILE_RULES` as a small set of rule objects
(:class:`ForeignKey` and :class:`Expectation`), evaluated by :mod:`mscmeta.review.sheets`.

The column meanings, units and allowed values are documented for humans in
``data/README.md``; ``tests/test_data.py`` checks that every column declared here is
documented there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from mscmeta.engine.prisma_flow import PRISMA_BOXES

# --------------------------------------------------------------------------- fields

#: Kinds of column and the text pattern a non-empty cell of that kind must match.
TEXT_PATTERNS: dict[str, tuple[str, str]] = {
    "int": (r"^-?[0-9]{1,9}$", "must be a whole number written with the digits 0-9 (at most 9 digits)"),
    "float": (r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$", "must be a number"),
    "date": (r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$", "must be an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)"),
}
#: Control characters no cell may contain (C0 and C1, DEL); free-text cells may hold line breaks and tabs.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"
CONTROL_CHARACTERS_IN_TEXT = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
#: Free-text columns, whose cells may span lines (a quoted cell with line breaks). Every other
#: cell must be one line without control characters: a line break in a label breaks every table.
MULTILINE_COLUMNS = frozenset({"notes", "note", "quote", "reason", "description", "basis", "derivation",
                               "doses_note", "severity_detail", "support"})


@dataclass(frozen=True)
class Field:
    """One column of a raw sheet.

    Parameters
    ----------
    name : str
        Column name (header in the CSV).
    kind : {"str", "int", "float", "date"}
        Cell type. ``int`` cells must be written as whole numbers; ``date`` cells as
        ISO 8601 dates, possibly partial (``2021``, ``2021-06``, ``2021-06-08``).
    required : bool
        If true the cell may not be empty.
    allowed : tuple of str, optional
        Closed list of allowed values.
    pattern : str, optional
        Regular expression a non-empty cell must match (full match).
    minimum, maximum : float, optional
        Inclusive bounds for ``int``/``float`` cells.
    unique : bool
        No two rows may share a value.
    description : str
        One-line meaning (the full dictionary is ``data/README.md``).
    """

    name: str
    kind: str = "str"
    required: bool = True
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    unique: bool = False
    description: str = ""


@dataclass(frozen=True)
class RowRule:
    """A check on several columns of the same row.

    Parameters
    ----------
    name : str
        Identifier of the rule (shown in messages).
    column : str
        The column the message points at.
    columns : tuple of str
        Columns the rule reads; the rule is skipped when one of them is missing
        from the sheet (the missing column is reported on its own).
    holds : callable
        ``holds(df) -> Series[bool]``: true where the row satisfies the rule.
    message : callable
        ``message(row) -> str``: what is wrong, for a failing row.
    """

    name: str
    column: str
    columns: tuple[str, ...]
    holds: Callable[[pd.DataFrame], pd.Series]
    message: Callable[[pd.Series], str]


@dataclass(frozen=True)
class SheetSpec:
    """Declaration of one raw sheet: file name, fields, row rules, composite keys."""

    file: str
    fields: tuple[Field, ...]
    row_rules: tuple[RowRule, ...] = ()
    unique_together: tuple[str, ...] = ()
    optional: bool = False
    key_column: str | None = "study_id"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


# --------------------------------------------------------------------------- vocabularies

DESIGNS = (
    "RCT",
    "non-randomised controlled",
    "prospective cohort",
    "retrospective cohort",
    "case-control",
    "single-arm",
    "not reported",
)
RANDOMISED_DESIGNS = ("RCT",)
BLINDING = ("double-blind", "single-blind", "open-label", "not reported")
SEVERITIES = ("severe", "critical", "mixed", "non-severe", "not reported")
SEVERITY_SUBGROUPS = ("severe", "critical", "mixed", "not assigned")
MSC_SOURCES = ("umbilical cord", "menstrual blood", "bone marrow", "placenta", "adipose", "mixed", "not reported")
DECISIONS = ("included", "excluded", "scenario")
MORTALITY_DATA = ("reported", "not located", "single arm", "not applicable")
SOURCE_LEVELS = ("primary paper", "primary preprint", "trial registry", "later review", "derived")
USES = ("primary", "alternative")
QUOTE_STATUS = ("verbatim", "not located")

#: Quantities of ``published_results.csv`` that are counts (whole numbers >= 0).
PUBLISHED_COUNTS = ("studies", "articles", "patients", "study_size_min", "study_size_max", "mortality_studies",
                    "records_identified")
#: Effect measures of ``published_results.csv`` reported on the ratio scale (values > 0).
RATIO_MEASURES = ("OR", "RR", "HR", "Peto OR")

STUDY_ID_PATTERN = r"^[a-z][a-z0-9]*[0-9]{4}[a-z]?$"
DOI_LIST_PATTERN = r"^10\.[0-9]{4,9}/\S+(; 10\.[0-9]{4,9}/\S+)*$"
SOURCE_PATTERN = r"^(https?://|10\.[0-9]{4,9}/|data/|dossier|addendum).*$"


def _fmt(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "empty"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _patients(d: pd.DataFrame) -> pd.Series:
    """Patients of a study (n_msc + n_control; missing when n_msc is)."""
    return d["n_msc"] + d["n_control"].fillna(0)


def _within_patients(d: pd.DataFrame, count: pd.Series) -> pd.Series:
    """True where *count* is missing, the study size unknown, or count <= n_msc + n_control."""
    return (count.isna() | _patients(d).isna() | (count <= _patients(d))).fillna(True).astype(bool)


def _patients_text(r: pd.Series) -> str:
    if pd.isna(r["n_control"]):
        return f"n_msc {_fmt(r['n_msc'])}"
    return f"n_msc {_fmt(r['n_msc'])} + n_control {_fmt(r['n_control'])} = {_fmt(r['n_msc'] + r['n_control'])}"


# --------------------------------------------------------------------------- sheets

STUDIES = SheetSpec(
    file="studies.csv",
    fields=(
        Field("study_id", pattern=STUDY_ID_PATTERN, unique=True, description="identifier: first author + year, lower case"),
        Field("label", unique=True, description="display label, e.g. 'Shi 2021'"),
        Field("first_author", description="first author surname and initials"),
        Field("year", "int", minimum=2019, maximum=2030, description="publication year of the main article"),
        Field("title", required=False, description="title of the main article"),
        Field("journal", required=False, description="journal of the main article"),
        Field("doi", required=False, pattern=DOI_LIST_PATTERN, description="DOI(s); '; '-separated, main article first"),
        Field("n_articles", "int", minimum=1, description="number of articles reporting the study"),
        Field("pub_date", "date", required=False, description="first publication date of the main article (ISO)"),
        Field("registration", required=False, description="trial registration number(s)"),
        Field("country", required=False, description="country or countries"),
        Field("design", allowed=DESIGNS, description="study design"),
        Field("blinding", allowed=BLINDING, description="blinding"),
        Field("severity", allowed=SEVERITIES, description="severity of the enrolled patients"),
        Field("severity_detail", required=False, description="severity as the source states it"),
        Field("n_severe", "int", required=False, minimum=0, description="enrolled severe patients (mixed studies)"),
        Field("n_critical", "int", required=False, minimum=0, description="enrolled critical patients (mixed studies)"),
        Field("severity_subgroup", allowed=SEVERITY_SUBGROUPS, description="project's assignment for the severe-vs-critical subgroup analysis"),
        Field("msc_source", allowed=MSC_SOURCES, description="tissue of origin of the cells"),
        Field("doses", "int", required=False, minimum=1, maximum=6, description="number of infusions per patient; empty if not reported or variable"),
        Field("doses_note", required=False, description="dosing schedule, sources and conflicts"),
        Field("cell_dose", required=False, description="cells per infusion, as printed"),
        Field("n_msc", "int", required=False, minimum=1, description="patients in the MSC arm (analysed)"),
        Field("n_control", "int", required=False, minimum=1, description="patients in the control arm (analysed); empty if none"),
        Field("control", required=False, description="what the control arm received"),
        Field("decision", allowed=DECISIONS, description="eligibility decision for the project's primary review set"),
        Field("reason", description="why; names the criterion"),
        Field("mortality_data", allowed=MORTALITY_DATA, description="whether per-arm death counts are available"),
        Field("dossier_section", required=False, description="section of the evidence dossier"),
        Field("source", pattern=SOURCE_PATTERN, description="URL(s) of the sources of the characteristics"),
        Field("quote", required=False, description="short verbatim quote supporting design/n"),
        Field("notes", required=False, description="conflicts, caveats, unverified items"),
    ),
    row_rules=(
        RowRule(
            "single_arm_has_no_control",
            "n_control",
            ("design", "n_control"),
            lambda d: ~((d["design"] == "single-arm") & d["n_control"].notna()),
            lambda r: f"single-arm study must have an empty n_control, found {_fmt(r['n_control'])}",
        ),
        RowRule(
            "n_severe_within_n",
            "n_severe",
            ("n_severe", "n_msc", "n_control"),
            lambda d: _within_patients(d, d["n_severe"]),
            lambda r: f"n_severe {_fmt(r['n_severe'])} exceeds the study's patients ({_patients_text(r)})",
        ),
        RowRule(
            "n_critical_within_n",
            "n_critical",
            ("n_severe", "n_critical", "n_msc", "n_control"),
            lambda d: _within_patients(d, d["n_critical"] + d["n_severe"].fillna(0)),
            lambda r: (f"n_critical {_fmt(r['n_critical'])}"
                       + (f" plus n_severe {_fmt(r['n_severe'])}" if pd.notna(r["n_severe"]) else "")
                       + f" exceeds the study's patients ({_patients_text(r)})"),
        ),
        RowRule(
            "doi_count_matches_articles",
            "doi",
            ("doi", "n_articles"),
            lambda d: d["doi"].isna() | d["n_articles"].isna()
            | (d["doi"].fillna("").str.count("; ") + 1 <= d["n_articles"]).fillna(True).astype(bool),
            lambda r: f"lists more DOIs than n_articles ({_fmt(r['n_articles'])})",
        ),
    ),
)

MORTALITY = SheetSpec(
    file="mortality.csv",
    fields=(
        Field("row_id", pattern=r"^[a-z][a-z0-9]*[0-9]{4}[a-z]?-[a-z0-9-]+$", unique=True, description="row identifier: '<study_id>-<reading>'"),
        Field("study_id", pattern=STUDY_ID_PATTERN, description="study (studies.csv)"),
        Field("timepoint", description="time point of the count, as the source states it"),
        Field("events_msc", "int", minimum=0, description="deaths in the MSC arm"),
        Field("n_msc", "int", minimum=1, description="patients in the MSC arm"),
        Field("events_control", "int", minimum=0, description="deaths in the control arm"),
        Field("n_control", "int", minimum=1, description="patients in the control arm"),
        Field("source", pattern=SOURCE_PATTERN, description="URL or DOI of the source"),
        Field("location", description="table, figure or section in the source"),
        Field("quote", description="short verbatim quote"),
        Field("source_level", allowed=SOURCE_LEVELS, description="kind of source"),
        Field("derivation", required=False, description="arithmetic, if the counts are derived"),
        Field("use", allowed=USES, description="primary = the project's default reading"),
        Field("note", required=False, description="why this row is used; conflicts"),
    ),
    row_rules=(
        RowRule(
            "events_msc_le_n",
            "events_msc",
            ("events_msc", "n_msc"),
            lambda d: d["events_msc"].isna() | d["n_msc"].isna() | (d["events_msc"] <= d["n_msc"]),
            lambda r: f"events_msc {_fmt(r['events_msc'])} exceeds n_msc {_fmt(r['n_msc'])}",
        ),
        RowRule(
            "events_control_le_n",
            "events_control",
            ("events_control", "n_control"),
            lambda d: d["events_control"].isna() | d["n_control"].isna() | (d["events_control"] <= d["n_control"]),
            lambda r: f"events_control {_fmt(r['events_control'])} exceeds n_control {_fmt(r['n_control'])}",
        ),
        RowRule(
            "row_id_prefix",
            "row_id",
            ("row_id", "study_id"),
            lambda d: pd.Series(
                [
                    pd.isna(rid) or pd.isna(sid) or str(rid).startswith(f"{sid}-")
                    for rid, sid in zip(d["row_id"], d["study_id"])
                ],
                index=d.index,
            ),
            lambda r: f"row_id {_fmt(r['row_id'])} must start with '{r['study_id']}-'",
        ),
        RowRule(
            "derived_rows_explain",
            "derivation",
            ("source_level", "derivation"),
            lambda d: ~((d["source_level"] == "derived") & d["derivation"].isna()),
            lambda r: "source_level 'derived' needs the arithmetic in derivation",
        ),
    ),
)

SCENARIOS = SheetSpec(
    file="scenarios.csv",
    fields=(
        Field("scenario", pattern=r"^[a-z0-9][a-z0-9-]*$", description="scenario name (scenario_definitions.csv)"),
        Field("study_id", pattern=STUDY_ID_PATTERN, description="study in the scenario's review set"),
        Field("mortality_row", required=False, description="row_id of mortality.csv used; empty = no mortality data"),
        Field("reason", description="why the study and this row are in the scenario"),
    ),
    unique_together=("scenario", "study_id"),
)

SCENARIO_DEFINITIONS = SheetSpec(
    file="scenario_definitions.csv",
    fields=(
        Field("scenario", pattern=r"^[a-z0-9][a-z0-9-]*$", unique=True, description="scenario name"),
        Field("order", "int", minimum=1, unique=True, description="display order"),
        Field("label", description="short title"),
        Field("description", description="what the scenario is and why"),
        Field("basis", description="where the rule comes from"),
    ),
    key_column=None,
)

SEARCH = SheetSpec(
    file="search.csv",
    fields=(
        Field("box", allowed=PRISMA_BOXES, unique=True, description="PRISMA 2020 box"),
        Field("label", description="text of the box"),
        Field("count", "int", required=False, minimum=0, description="number; empty = not reported"),
        Field("source", pattern=SOURCE_PATTERN, description="where the number comes from"),
        Field("quote", required=False, description="verbatim quote"),
        Field("note", required=False, description="caveats"),
    ),
    key_column=None,
)

PUBLISHED_RESULTS = SheetSpec(
    file="published_results.csv",
    fields=(
        Field("quantity", pattern=r"^[a-z_]+$", description="what was reported"),
        Field("subgroup", description="analysis or subgroup"),
        Field("measure", required=False, description="effect measure (OR) or empty"),
        Field("estimate", "float", required=False, description="point estimate or count"),
        Field("ci_low", "float", required=False, description="lower 95% confidence limit"),
        Field("ci_high", "float", required=False, description="upper 95% confidence limit"),
        Field("p_value", "float", required=False, minimum=0, maximum=1, description="P value"),
        Field("unit", required=False, description="unit of estimate"),
        Field("source", description="bibliographic source"),
        Field("source_url", pattern=r"^https?://.*$", description="URL where the value was read"),
        Field("location", required=False, description="where in the source"),
        Field("quote", required=False, description="verbatim quote"),
        Field("quote_status", allowed=QUOTE_STATUS, description="verbatim or not located"),
        Field("note", required=False, description="caveats"),
    ),
    row_rules=(
        RowRule(
            "ci_brackets_estimate",
            "estimate",
            ("estimate", "ci_low", "ci_high"),
            lambda d: d["ci_low"].isna() | d["ci_high"].isna() | d["estimate"].isna()
            | ((d["ci_low"] <= d["estimate"]) & (d["estimate"] <= d["ci_high"])),
            lambda r: f"estimate {_fmt(r['estimate'])} is outside [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
        ),
        RowRule(
            "has_a_value",
            "estimate",
            ("estimate", "p_value"),
            lambda d: d["estimate"].notna() | d["p_value"].notna(),
            lambda r: "needs an estimate or a p_value",
        ),
        RowRule(
            "ci_in_order",
            "ci_low",
            ("ci_low", "ci_high"),
            lambda d: (d["ci_low"].isna() | d["ci_high"].isna() | (d["ci_low"] <= d["ci_high"])).astype(bool),
            lambda r: f"ci_low {_fmt(r['ci_low'])} is above ci_high {_fmt(r['ci_high'])}",
        ),
        RowRule(
            "published_count_is_whole",
            "estimate",
            ("quantity", "estimate"),
            lambda d: ~(d["quantity"].isin(PUBLISHED_COUNTS) & d["estimate"].notna()
                        & ((d["estimate"] < 0) | (d["estimate"] != d["estimate"].round()))).fillna(False).astype(bool),
            lambda r: f"{r['quantity']} is a count: the estimate must be a whole number >= 0, found {_fmt(r['estimate'])}",
        ),
        RowRule(
            "published_ratio_is_positive",
            "estimate",
            ("measure", "estimate", "ci_low", "ci_high"),
            lambda d: ~(d["measure"].isin(RATIO_MEASURES)
                        & ((d["estimate"] <= 0) | (d["ci_low"] <= 0) | (d["ci_high"] <= 0)).fillna(False)).astype(bool),
            lambda r: (f"a ratio ({r['measure']}) and its confidence limits must be > 0, found "
                       f"{_fmt(r['estimate'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"),
        ),
        RowRule(
            "quote_when_verbatim",
            "quote",
            ("quote", "quote_status"),
            lambda d: ~((d["quote_status"] == "verbatim") & d["quote"].isna()),
            lambda r: "quote_status 'verbatim' needs a quote",
        ),
    ),
    unique_together=("quantity", "subgroup"),
    key_column=None,
)

#: Sheets only some stages read. ``load_raw`` reads them if present (they are optional) and
#: validates each with its own parser: risk of bias (:mod:`~mscmeta.review.rob_sheet`), the
#: secondary outcomes (:mod:`~mscmeta.review.secondary_sheets`), the GRADE judgements and the
#: later syntheses of stage 06 (:mod:`~mscmeta.review.schema_update`).
OPTIONAL_SHEETS = ("adverse_events.csv", "secondary_outcomes.csv", "risk_of_bias.csv", "grade_judgements.csv",
                   "later_syntheses.csv")

#: The sheets this module declares, in load order.
SHEETS: Mapping[str, SheetSpec] = {
    s.file: s for s in (STUDIES, MORTALITY, SCENARIOS, SCENARIO_DEFINITIONS, SEARCH, PUBLISHED_RESULTS)
}

PRIMARY_SCENARIO = "primary"

# --------------------------------------------------------------------------- pandera schemas

#: Column types of the typed schema; text columns are text by construction (read by
#: :func:`mscmeta.review.csvsheet.read_sheet_text`), so their type is not re-checked cell by cell.
_DTYPES = {"str": None, "int": "Int64", "float": "Float64", "date": None}


def text_schema(spec: SheetSpec) -> pa.DataFrameSchema:
    """Pandera schema of the sheet *as read* (every cell text, empty cells missing).

    Checks column presence (strict), required cells and the textual form of
    numbers and dates, so that conversion in :func:`convert` cannot fail.
    """
    columns = {}
    for f in spec.fields:
        checks = []
        if f.kind in TEXT_PATTERNS:
            regex, message = TEXT_PATTERNS[f.kind]
            checks.append(pa.Check.str_matches(regex, error=f"{message}"))
        elif f.name in MULTILINE_COLUMNS:
            checks.append(_no_match(CONTROL_CHARACTERS_IN_TEXT, "contains a control character (other than a line break or tab)"))
        else:
            checks.append(_no_match(CONTROL_CHARACTERS, "contains a control character (a line break or tab): write it on one line"))
        columns[f.name] = pa.Column(None, nullable=True, checks=checks, required=True)  # text by construction
    return pa.DataFrameSchema(columns, strict=True, name=f"{spec.file} (text)")


def _no_match(regex: str, message: str) -> pa.Check:
    """A check that no cell contains a match of *regex*."""
    return pa.Check(lambda s: ~s.str.contains(regex, regex=True), element_wise=False, error=message,
                    name="no_control_characters")


def convert(spec: SheetSpec, df: pd.DataFrame) -> pd.DataFrame:
    """Convert text cells to the declared kinds (``Int64``/``Float64``; others text).

    Cells that do not parse become missing; they have already been reported by the
    text schema.
    """
    out = df.copy()
    for f in spec.fields:
        if f.name not in out.columns:
            continue
        if f.kind == "int":
            written = out[f.name].astype("string").str.fullmatch(TEXT_PATTERNS["int"][0]).fillna(False)
            num = pd.to_numeric(out[f.name].where(written.astype(bool)), errors="coerce")
            num = num.where(num.isna() | (num == num.round()))
            out[f.name] = num.astype("Float64").astype("Int64")
        elif f.kind == "float":
            out[f.name] = pd.to_numeric(out[f.name], errors="coerce").astype("Float64")
        else:
            out[f.name] = out[f.name].astype("object")
    return out


def typed_schema(spec: SheetSpec, present: list[str] | None = None) -> pa.DataFrameSchema:
    """Pandera schema of the converted sheet: values, ranges, uniqueness, row rules.

    Parameters
    ----------
    spec : SheetSpec
    present : list of str, optional
        Columns present in the file. Fields and row rules that need a missing column
        are left out (the missing column is reported by :func:`text_schema`).
    """
    have = set(spec.columns if present is None else present)
    columns = {}
    for f in spec.fields:
        if f.name not in have:
            continue
        checks = []
        if f.allowed is not None:
            checks.append(pa.Check.isin(list(f.allowed), error=f"must be one of: {', '.join(f.allowed)}"))
        if f.pattern is not None:
            checks.append(pa.Check.str_matches(f.pattern, error=f"does not match the pattern {f.pattern}"))
        if f.minimum is not None:
            checks.append(pa.Check.ge(f.minimum, error=f"must be >= {_fmt(f.minimum)}"))
        if f.maximum is not None:
            checks.append(pa.Check.le(f.maximum, error=f"must be <= {_fmt(f.maximum)}"))
        columns[f.name] = pa.Column(
            _DTYPES[f.kind],
            nullable=not f.required,
            unique=f.unique,
            checks=checks,
            required=True,
        )
    frame_checks = [
        pa.Check(rule.holds, name=rule.name, error=f"rule:{rule.name}")
        for rule in spec.row_rules
        if set(rule.columns) <= have
    ]
    unique = [c for c in spec.unique_together if c in have] if spec.unique_together else None
    if unique is not None and len(unique) != len(spec.unique_together):
        unique = None
    return pa.DataFrameSchema(columns, checks=frame_checks, unique=unique, name=spec.file)


# --------------------------------------------------------------------------- cross-file rules


@dataclass(frozen=True)
class ForeignKey:
    """Every non-empty ``file.column`` value must exist in ``target_file.target_column``."""

    file: str
    column: str
    target_file: str
    target_column: str

    @property
    def name(self) -> str:
        return f"{self.file}.{self.column} -> {self.target_file}.{self.target_column}"


@dataclass(frozen=True)
class Expectation:
    """A declarative cross-file rule.

    ``failing(tables)`` returns the rows of ``file`` (as a DataFrame slice of the
    loaded sheet, index = sheet row) that break the rule; ``message(row)`` says what
    is wrong for one such row.
    """

    name: str
    file: str
    column: str
    failing: Callable[[Mapping[str, pd.DataFrame]], pd.DataFrame]
    message: Callable[[pd.Series], str]
    needs: tuple[str, ...] = field(default=())


def _primary_rows(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    m = t["mortality.csv"]
    return m[m["use"] == "primary"]


def _included_without_primary_row(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["studies.csv"]
    with_row = set(_primary_rows(t)["study_id"])
    mask = s["decision"].isin(["included", "scenario"]) & (s["mortality_data"] == "reported")
    return s[mask & ~s["study_id"].isin(with_row)]


def _duplicate_primary_rows(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    p = _primary_rows(t)
    return p[p.duplicated("study_id", keep="first")]


def _primary_row_without_data(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["studies.csv"]
    no_data = set(s.loc[s["mortality_data"] != "reported", "study_id"])
    p = _primary_rows(t)
    return p[p["study_id"].isin(no_data)]


def _mortality_n_exceeds_study_n(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["studies.csv"].set_index("study_id")
    m = t["mortality.csv"]
    known = m[m["study_id"].isin(s.index)]
    n_msc = known["study_id"].map(s["n_msc"])
    n_ctl = known["study_id"].map(s["n_control"])
    bad = (n_msc.notna() & (known["n_msc"] > n_msc)) | (n_ctl.notna() & (known["n_control"] > n_ctl))
    return known[bad.fillna(False).astype(bool)]


def _merge_scenario_rows(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    sc = t["scenarios.csv"]
    s = t["studies.csv"].drop_duplicates("study_id").set_index("study_id")
    m = t["mortality.csv"].drop_duplicates("row_id").set_index("row_id")
    out = sc.copy()
    out["_mortality_data"] = sc["study_id"].map(s["mortality_data"])
    out["_decision"] = sc["study_id"].map(s["decision"])
    out["_row_study"] = sc["mortality_row"].map(m["study_id"])
    out["_row_use"] = sc["mortality_row"].map(m["use"])
    return out


def _scenario_study_without_row(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[(x["_mortality_data"] == "reported") & x["mortality_row"].isna()]


def _scenario_row_without_data(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[x["_mortality_data"].notna() & (x["_mortality_data"] != "reported") & x["mortality_row"].notna()]


def _scenario_row_of_other_study(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[x["_row_study"].notna() & (x["_row_study"] != x["study_id"])]


def _primary_scenario_uses_alternative(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[(x["scenario"] == PRIMARY_SCENARIO) & x["_row_use"].notna() & (x["_row_use"] != "primary")]


def _excluded_in_scenario(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[x["_decision"] == "excluded"]


def _primary_scenario_not_included(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    x = _merge_scenario_rows(t)
    return x[(x["scenario"] == PRIMARY_SCENARIO) & (x["_decision"] == "scenario")]


def _included_missing_from_primary(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["studies.csv"]
    sc = t["scenarios.csv"]
    in_primary = set(sc.loc[sc["scenario"] == PRIMARY_SCENARIO, "study_id"])
    return s[(s["decision"] == "included") & ~s["study_id"].isin(in_primary)]


def _scenario_decision_unused(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["studies.csv"]
    sc = t["scenarios.csv"]
    elsewhere = set(sc.loc[sc["scenario"] != PRIMARY_SCENARIO, "study_id"])
    return s[(s["decision"] == "scenario") & ~s["study_id"].isin(elsewhere)]


def _no_primary_definition(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    d = t["scenario_definitions.csv"]
    if (d["scenario"] == PRIMARY_SCENARIO).any() or d.empty:
        return d.iloc[0:0]
    return d.iloc[0:1]


def _missing_prisma_boxes(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["search.csv"]
    missing = [b for b in PRISMA_BOXES if b not in set(s["box"])]
    return pd.DataFrame({"box": missing}, index=pd.Index([-1] * len(missing)))


#: The PRISMA 2020 flow as arithmetic: each box counts at most what its parent box leaves
#: (``box: (parent, subtracted)``): screened <= identified - removed, sought <= screened -
#: excluded, ..., studies included <= reports of included studies (a study may have several).
PRISMA_FLOW: dict[str, tuple[str, str | None]] = {
    "records_removed_before_screening": ("records_identified", None),
    "records_screened": ("records_identified", "records_removed_before_screening"),
    "records_excluded": ("records_screened", None),
    "reports_sought": ("records_screened", "records_excluded"),
    "reports_not_retrieved": ("reports_sought", None),
    "reports_assessed": ("reports_sought", "reports_not_retrieved"),
    "reports_excluded": ("reports_assessed", None),
    "reports_included": ("reports_assessed", "reports_excluded"),
    "studies_included": ("reports_included", None),
}


def _prisma_bounds(counts: Mapping[str, float]) -> dict[str, tuple[float, str]]:
    """Upper bound of every box from the reported counts upstream, and how it is made up."""
    available: dict[str, tuple[float, str]] = {}
    bounds: dict[str, tuple[float, str]] = {}

    def avail(box: str) -> tuple[float, str]:
        if box in available:
            return available[box]
        if pd.notna(counts.get(box)):
            available[box] = (float(counts[box]), f"{box} {_fmt(counts[box])}")
        elif box in PRISMA_FLOW:
            available[box] = bound(box)
        else:
            available[box] = (float("inf"), f"{box} (not reported)")
        return available[box]

    def bound(box: str) -> tuple[float, str]:
        if box not in bounds:
            parent, minus = PRISMA_FLOW[box]
            value, text = avail(parent)
            if minus is not None and pd.notna(counts.get(minus)):
                value, text = value - float(counts[minus]), f"{text} minus {minus} {_fmt(counts[minus])}"
            bounds[box] = (value, text)
        return bounds[box]

    return {box: bound(box) for box in PRISMA_FLOW}


def _prisma_overflows(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    s = t["search.csv"]
    counts = dict(zip(s["box"], s["count"]))
    bounds = _prisma_bounds(counts)
    bad = [i for i, box, n in zip(s.index, s["box"], s["count"])
           if box in bounds and pd.notna(n) and n > bounds[box][0]]
    out = s.loc[bad].copy()
    out["_bound"] = [bounds[b][1] for b in out["box"]]
    return out


#: Cross-file rules, evaluated after every sheet passed its own schema checks.
CROSS_FILE_RULES: tuple[ForeignKey | Expectation, ...] = (
    ForeignKey("mortality.csv", "study_id", "studies.csv", "study_id"),
    ForeignKey("scenarios.csv", "study_id", "studies.csv", "study_id"),
    ForeignKey("scenarios.csv", "scenario", "scenario_definitions.csv", "scenario"),
    ForeignKey("scenarios.csv", "mortality_row", "mortality.csv", "row_id"),
    ForeignKey("adverse_events.csv", "study_id", "studies.csv", "study_id"),
    ForeignKey("secondary_outcomes.csv", "study_id", "studies.csv", "study_id"),
    ForeignKey("risk_of_bias.csv", "study_id", "studies.csv", "study_id"),
    Expectation(
        "included study has a primary mortality row",
        "studies.csv",
        "mortality_data",
        _included_without_primary_row,
        lambda r: (
            "included study with mortality_data 'reported' has no mortality.csv row with use 'primary' "
            "(add the row, or set mortality_data to 'not located' and say why in reason)"
        ),
        needs=("studies.csv", "mortality.csv"),
    ),
    Expectation(
        "at most one primary mortality row per study",
        "mortality.csv",
        "use",
        _duplicate_primary_rows,
        lambda r: "a second row with use 'primary' for this study (exactly one reading is primary)",
        needs=("mortality.csv",),
    ),
    Expectation(
        "no primary mortality row without reported data",
        "mortality.csv",
        "use",
        _primary_row_without_data,
        lambda r: "row has use 'primary' but studies.csv says mortality_data is not 'reported'",
        needs=("studies.csv", "mortality.csv"),
    ),
    Expectation(
        "mortality arm sizes within the study's arm sizes",
        "mortality.csv",
        "n_msc",
        _mortality_n_exceeds_study_n,
        lambda r: f"arm sizes {_fmt(r['n_msc'])}/{_fmt(r['n_control'])} exceed n_msc/n_control of studies.csv",
        needs=("studies.csv", "mortality.csv"),
    ),
    Expectation(
        "scenario study with reported deaths names a mortality row",
        "scenarios.csv",
        "mortality_row",
        _scenario_study_without_row,
        lambda r: f"study has reported deaths but scenario {r['scenario']!r} names no mortality_row",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "scenario names no mortality row for a study without data",
        "scenarios.csv",
        "mortality_row",
        _scenario_row_without_data,
        lambda r: f"scenario {r['scenario']!r} uses a mortality row although studies.csv says mortality_data is {r['_mortality_data']!r}",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "scenario mortality row belongs to the study",
        "scenarios.csv",
        "mortality_row",
        _scenario_row_of_other_study,
        lambda r: f"mortality_row {r['mortality_row']!r} belongs to study {r['_row_study']!r}",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "primary scenario uses the primary rows",
        "scenarios.csv",
        "mortality_row",
        _primary_scenario_uses_alternative,
        lambda r: f"scenario 'primary' must use the row with use 'primary', not {r['mortality_row']!r}",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "excluded studies are in no scenario",
        "scenarios.csv",
        "study_id",
        _excluded_in_scenario,
        lambda r: f"study has decision 'excluded' in studies.csv but is listed in scenario {r['scenario']!r}",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "primary scenario lists only included studies",
        "scenarios.csv",
        "study_id",
        _primary_scenario_not_included,
        lambda r: "study has decision 'scenario' in studies.csv but is listed in scenario 'primary'",
        needs=("studies.csv", "mortality.csv", "scenarios.csv"),
    ),
    Expectation(
        "included studies are in the primary scenario",
        "studies.csv",
        "decision",
        _included_missing_from_primary,
        lambda r: "study has decision 'included' but is not listed in scenario 'primary' of scenarios.csv",
        needs=("studies.csv", "scenarios.csv"),
    ),
    Expectation(
        "scenario-only studies are used by a scenario",
        "studies.csv",
        "decision",
        _scenario_decision_unused,
        lambda r: "study has decision 'scenario' but no non-primary scenario lists it",
        needs=("studies.csv", "scenarios.csv"),
    ),
    Expectation(
        "a primary scenario is defined",
        "scenario_definitions.csv",
        "scenario",
        _no_primary_definition,
        lambda r: "no scenario named 'primary' is defined",
        needs=("scenario_definitions.csv",),
    ),
    Expectation(
        "PRISMA counts add up",
        "search.csv",
        "count",
        _prisma_overflows,
        lambda r: f"{r['box']} {_fmt(r['count'])} exceeds what the flow leaves for it: {r['_bound']}",
        needs=("search.csv",),
    ),
    Expectation(
        "every PRISMA box is present",
        "search.csv",
        "box",
        _missing_prisma_boxes,
        lambda r: f"PRISMA box {r['box']!r} is missing (leave count empty if not reported)",
        needs=("search.csv",),
    ),
)


def documented_columns() -> dict[str, list[str]]:
    """Column names of every declared sheet, by file name."""
    return {name: spec.columns for name, spec in SHEETS.items()}


def is_valid_study_id(value: str) -> bool:
    """True if *value* has the form of a study identifier (e.g. ``shi2021``)."""
    return re.fullmatch(STUDY_ID_PATTERN, value) is not None
