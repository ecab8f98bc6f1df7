"""The raw sheets of ``data/raw/``: one reader for all of them, used by every stage.

:func:`load_raw` reads the core sheets (studies, mortality, scenarios, scenario
definitions, search, published results) and the optional sheets a stage asks for (risk of
bias, adverse events, secondary outcomes, GRADE judgements, later syntheses), validates each
with its one parser (:mod:`~mscmeta.review.schema` via :mod:`~mscmeta.review.csvsheet`;
:mod:`~mscmeta.review.rob_sheet`; :mod:`~mscmeta.review.secondary_sheets`;
:mod:`~mscmeta.review.schema_update`), then the
cross-file rules, and returns a :class:`RawData`. *Every* problem of every sheet read is
raised at once in one :class:`~mscmeta.review.csvsheet.DataValidationError` (file, CSV line,
study, column, what is wrong). Nothing is written by this module.

Published values (``published_results.csv``) carry the number of decimals printed in the
source (columns ``<field>_decimals``), read from the text so "0.50" stays distinct from "0.5".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mscmeta.engine.prisma_flow import PRISMA_BOXES
from mscmeta.review import schema as S
from mscmeta.review.csvsheet import (
    DataValidationError,
    Failure,
    expectation_failures,
    foreign_key_failures,
    read_sheet_text,
    validate_sheet,
)
from mscmeta.review.rob_sheet import ROB_FILE, RiskOfBiasError, coverage_problems, rob_failures, validate_risk_of_bias
from mscmeta.review.schema_update import UPDATE_SHEETS
from mscmeta.review.secondary_sheets import SecondaryData, secondary_failures

__all__ = ["ARM_COLUMNS", "DataValidationError", "Failure", "RawData", "load_raw", "study_labels", "default_label", "decimals_of"]

#: Our column names (``mortality.csv``, the analysis rows, binary secondary outcomes) for the
#: engine's canonical 2x2 columns (treatment = MSC arm, control = control arm).
ARM_COLUMNS: dict[str, str] = {
    "study": "study_id",
    "events_t": "events_msc",
    "n_t": "n_msc",
    "events_c": "events_control",
    "n_c": "n_control",
}

#: The fields of ``published_results.csv`` whose printed decimals are kept.
PUBLISHED_NUMBERS = ("estimate", "ci_low", "ci_high", "p_value")


@dataclass(frozen=True)
class RawData:
    """The validated raw sheets (converted to typed columns).

    ``optional`` holds the validated optional sheets that were read (by file name);
    ``secondary`` the typed adverse-event and secondary-outcome sheets when either was read.
    """

    studies: pd.DataFrame
    mortality: pd.DataFrame
    scenarios: pd.DataFrame
    scenario_definitions: pd.DataFrame
    search: pd.DataFrame
    published_results: pd.DataFrame
    optional: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    data_dir: Path = Path(".")
    secondary: SecondaryData | None = None

    @property
    def adverse_events(self) -> pd.DataFrame | None:
        return self.optional.get("adverse_events.csv")

    @property
    def secondary_outcomes(self) -> pd.DataFrame | None:
        return self.optional.get("secondary_outcomes.csv")

    @property
    def risk_of_bias(self) -> pd.DataFrame | None:
        return self.optional.get("risk_of_bias.csv")

    @property
    def grade_judgements(self) -> pd.DataFrame | None:
        return self.optional.get("grade_judgements.csv")

    @property
    def later_syntheses(self) -> pd.DataFrame | None:
        return self.optional.get("later_syntheses.csv")


def decimals_of(text: object) -> int | None:
    """Decimals printed in a number as written (``"0.25"`` → 2, ``".998"`` → 3, ``"13"`` → 0)."""
    if text is None:
        return None
    s = str(text).strip()
    if s == "" or s.lower() in ("nan", "na"):
        return None
    s = s.lstrip("+-")
    if "e" in s.lower():
        mantissa, _, exp = s.lower().partition("e")
        d = len(mantissa.partition(".")[2])
        return max(0, d - int(exp))
    return len(s.partition(".")[2])


def with_decimals(typed: pd.DataFrame, text: pd.DataFrame) -> pd.DataFrame:
    """*typed* published values plus ``<field>_decimals`` read from the sheet's *text*."""
    out = typed.copy()
    for col in PUBLISHED_NUMBERS:
        if col in out.columns:
            out[col] = out[col].astype("float64")  # missing = NaN, as the numeric code expects
        out[f"{col}_decimals"] = [decimals_of(v) for v in text[col]] if col in text.columns else None
    return out


def _read_core(data_dir: Path, failures: list[Failure]) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Read and validate every required sheet; returns typed frames and the names that passed."""
    typed: dict[str, pd.DataFrame] = {}
    clean: set[str] = set()
    for name, spec in S.SHEETS.items():
        path = data_dir / name
        if not path.is_file():
            failures.append(Failure(name, None, None, None, "required sheet is missing"))
            continue
        text, read_failures = read_sheet_text(path)
        failures += read_failures
        if text is None:
            continue
        frame, sheet_failures = validate_sheet(spec, text)
        failures += sheet_failures
        typed[name] = with_decimals(frame, text) if name == "published_results.csv" else frame
        if not sheet_failures and not read_failures:
            clean.add(name)
    return typed, clean


def _wanted_optional(optional_sheets: Iterable[str] | None) -> tuple[str, ...]:
    wanted = S.OPTIONAL_SHEETS if optional_sheets is None else tuple(optional_sheets)
    unknown = sorted(set(wanted) - set(S.OPTIONAL_SHEETS))
    if unknown:
        raise ValueError(f"unknown optional sheet(s) {', '.join(unknown)}; known: {', '.join(S.OPTIONAL_SHEETS)}")
    return wanted


def _read_optional(data_dir: Path, wanted: tuple[str, ...], failures: list[Failure]) -> dict[str, pd.DataFrame]:
    """The optional sheets that are present, as text (every cell a string or missing)."""
    texts: dict[str, pd.DataFrame] = {}
    for name in S.OPTIONAL_SHEETS:
        path = data_dir / name
        if name not in wanted:
            continue
        if not path.is_file():
            failures.append(Failure(name, None, None, None, "sheet is missing (this stage reads it)"))
            continue
        text, read_failures = read_sheet_text(path)
        failures += read_failures
        if text is None:
            continue
        if name not in UPDATE_SHEETS and "study_id" not in text.columns:
            failures.append(Failure(name, 1, None, "study_id", "required column is missing from the header"))
            continue
        texts[name] = text
    return texts


def _validate_optional(
    texts: Mapping[str, pd.DataFrame], failures: list[Failure]
) -> tuple[dict[str, pd.DataFrame], SecondaryData | None]:
    """Validate each optional sheet with its own parser (its column schema and rules)."""
    validated: dict[str, pd.DataFrame] = {}
    if ROB_FILE in texts:
        try:
            validated[ROB_FILE] = validate_risk_of_bias(texts[ROB_FILE], source=ROB_FILE)
        except RiskOfBiasError as err:
            failures += rob_failures(err)
    for name in sorted(set(texts) & set(UPDATE_SHEETS)):
        frame, sheet_failures = validate_sheet(UPDATE_SHEETS[name], texts[name])
        failures += sheet_failures
        validated[name] = frame.reset_index(drop=True)
    secondary = None
    sec_texts = {n: t for n, t in texts.items() if n != ROB_FILE and n not in UPDATE_SHEETS}
    if sec_texts:
        secondary, sec_failures = secondary_failures(sec_texts)
        failures += sec_failures
        validated.update({n: f for n, f in ((k, secondary.adverse_events if k == "adverse_events.csv"
                                              else secondary.outcomes) for k in sec_texts)})
    return validated, secondary


def _coverage_failure(problem: str) -> Failure:
    """A risk-of-bias coverage problem (``study x ...: what``) as a failure of ``risk_of_bias.csv``."""
    head, _, what = problem.partition(": ")
    study = head.split()[1] if head.startswith("study ") else None
    return Failure(ROB_FILE, None, study, "study_id", what or problem)


def load_raw(data_dir: str | os.PathLike, optional_sheets: Iterable[str] | None = None) -> RawData:
    """Read and validate every raw sheet a stage needs from *data_dir*.

    Required sheets are those of :data:`mscmeta.review.schema.SHEETS`; the sheets of
    :data:`mscmeta.review.schema.OPTIONAL_SHEETS` (risk of bias, adverse events, secondary
    outcomes) are read when asked for (a stage that reads one needs it: missing is an
    error) and validated in full by their parsers, including the rules the stage that
    owns the sheet applies (risk-of-bias coverage of the studies), so no stage publishes
    anything from a sheet another stage would refuse. Every sheet needs at least one row.

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
    if not data_dir.is_dir():
        raise DataValidationError([Failure(str(data_dir), None, None, None, "data folder does not exist")], data_dir)
    failures: list[Failure] = []
    typed, clean = _read_core(data_dir, failures)
    texts = _read_optional(data_dir, _wanted_optional(optional_sheets), failures)
    n_before = len(failures)
    optional, secondary = _validate_optional(texts, failures)
    if ROB_FILE in optional and "studies.csv" in clean:
        failures += [_coverage_failure(p) for p in coverage_problems(optional[ROB_FILE], typed["studies.csv"])]
    if len(failures) == n_before:
        clean |= set(optional)
    loaded = {**typed, **texts}
    clean_tables = {n: df for n, df in {**typed, **optional}.items() if n in clean}
    for rule in S.CROSS_FILE_RULES:
        if isinstance(rule, S.ForeignKey):
            failures += foreign_key_failures(rule, loaded)
        else:
            failures += expectation_failures(rule, clean_tables)
    if failures:
        raise DataValidationError(failures, data_dir)
    return _raw_data(typed, optional, secondary, data_dir)


def _raw_data(typed: Mapping[str, pd.DataFrame], optional: dict[str, pd.DataFrame],
              secondary: SecondaryData | None, data_dir: Path) -> RawData:
    def ordered(name: str, keys: list[str]) -> pd.DataFrame:
        return typed[name].sort_values(keys, kind="mergesort").reset_index(drop=True)

    return RawData(
        studies=ordered("studies.csv", ["study_id"]),
        mortality=ordered("mortality.csv", ["study_id", "row_id"]),
        scenarios=ordered("scenarios.csv", ["scenario", "study_id"]),
        scenario_definitions=ordered("scenario_definitions.csv", ["order"]),
        search=typed["search.csv"].set_index("box").loc[list(PRISMA_BOXES)].reset_index(),
        published_results=typed["published_results.csv"].reset_index(drop=True),
        optional=optional,
        data_dir=data_dir,
        secondary=secondary,
    )


def default_label(study_id: str) -> str:
    """Display label built from a study id when no label is known (``shi2021`` -> ``Shi 2021``)."""
    head = study_id.rstrip("abcdefghijklmnopqrstuvwxyz")
    name, year = head[:-4], head[-4:]
    return f"{name.capitalize()} {year}{study_id[len(head):]}"


def study_labels(table: pd.DataFrame) -> dict[str, str]:
    """``study_id`` -> display label, from any table with a ``study_id`` column (``studies.csv``,
    the analysis rows...): its ``label`` column, or :func:`default_label` where there is none."""
    ids = [str(s) for s in table["study_id"]]
    if "label" not in table.columns:
        return {s: default_label(s) for s in ids}
    return {s: (default_label(s) if pd.isna(lbl) else str(lbl)) for s, lbl in zip(ids, table["label"], strict=True)}
