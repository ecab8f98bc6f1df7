"""Reading and validating one CSV sheet of ``data/raw/``: the machinery every sheet parser uses.

:func:`read_sheet_text` reads a sheet with every cell as text; :func:`validate_sheet` checks it
against its :class:`~mscmeta.review.schema.SheetSpec` (pandera schemas built from the
declarations, then the row rules); :func:`foreign_key_failures` and
:func:`expectation_failures` evaluate the cross-file rules. Every problem becomes a
:class:`Failure` (file, CSV line, study, column, what is wrong); :class:`DataValidationError`
carries all of them at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from mscmeta.engine.csvtext import CsvProblem, read_csv_text
from mscmeta.engine.validation import DataError
from mscmeta.review import schema as S


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


def csv_line(index: object) -> int | None:
    """Physical line of the file where the record of a DataFrame row starts.

    :func:`read_sheet_text` indexes every row by its physical line minus 2, so the header
    is line 1 and the line of a record that follows a quoted multi-line cell is still the
    line an editor shows.
    """
    try:
        i = int(index)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return i + 2 if i >= 0 else None


def read_sheet_text(path: Path) -> tuple[pd.DataFrame | None, list[Failure]]:
    """Read a sheet with every cell as text; empty cells become missing.

    The rows are indexed by physical line minus 2 (see :func:`csv_line`). File-level
    problems (:mod:`mscmeta.engine.csvtext`: delimiter, encoding, quotes, field counts,
    duplicate header names) and a sheet without rows are failures; the frame is ``None``
    when the sheet cannot be used at all.
    """
    name = path.name
    result = read_csv_text(path)
    if isinstance(result, CsvProblem):
        return None, [Failure(name, result.line, None, result.column, result.message)]
    failures = [Failure(name, p.line, None, p.column, p.message) for p in result.problems]
    if not result.rows:
        if not failures:
            failures.append(Failure(name, None, None, None, "has no rows (only the header): every sheet needs at least one row"))
        return None, failures
    keep = [i for i, c in enumerate(result.header) if c not in result.header[:i]]
    df = pd.DataFrame(
        [[row[i] for i in keep] for row in result.rows],
        columns=[result.header[i] for i in keep],
        index=pd.Index([line - 2 for line in result.lines]),
        dtype=object,
    )
    df = df.mask(df == "")
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
        return Failure(spec.file, csv_line(index), study, rule.column, rule.message(df.loc[index]))
    if check == "multiple_fields_uniqueness" or (column is None and "unique" in check):
        keys = ", ".join(spec.unique_together)
        return Failure(spec.file, csv_line(index), study, keys, f"duplicate combination of ({keys})")
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
    return Failure(spec.file, csv_line(index), study, column, message)


def _failures_of(
    err: pa.errors.SchemaErrors, spec: S.SheetSpec, df: pd.DataFrame, skip: set[tuple[int, str]]
) -> list[Failure]:
    out = (_translate_case(case, spec, df, skip) for case in err.failure_cases.itertuples(index=False))
    return [f for f in out if f is not None]


def validate_sheet(spec: S.SheetSpec, text: pd.DataFrame) -> tuple[pd.DataFrame, list[Failure]]:
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


def foreign_key_failures(rule: S.ForeignKey, tables: Mapping[str, pd.DataFrame]) -> list[Failure]:
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
                csv_line(idx),
                study,
                rule.column,
                f"{row[rule.column]!r} is not a {rule.target_column} of {rule.target_file}",
            )
        )
    return out


def expectation_failures(rule: S.Expectation, tables: Mapping[str, pd.DataFrame]) -> list[Failure]:
    if any(n not in tables for n in rule.needs):
        return []
    bad = rule.failing(tables)
    out = []
    for idx, row in bad.iterrows():
        study = row.get("study_id") if "study_id" in bad.columns else None
        study = None if study is None or pd.isna(study) else str(study)
        out.append(Failure(rule.file, csv_line(idx), study, rule.column, rule.message(row)))
    return out
