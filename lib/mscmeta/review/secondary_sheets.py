"""``adverse_events.csv`` and ``secondary_outcomes.csv``: reading and validating them (their one parser).

:func:`validate_secondary` checks both long sheets against
:mod:`mscmeta.review.schema_secondary` (pandera schemas, row rules, group rules, study ids
known to ``studies.csv``); *every* problem of both files is raised at once in one
:class:`SecondaryDataError` naming file, line, study, outcome and column.
:func:`mscmeta.review.sheets.load_raw` calls it for the stages that read these sheets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mscmeta.review import schema_secondary as SS
from mscmeta.review.csvsheet import DataValidationError, Failure, csv_line, read_sheet_text, validate_sheet


AE_FILE = SS.AE_SHEET.file


SECONDARY_FILE = SS.SECONDARY_SHEET.file


class SecondaryDataError(DataValidationError):
    """Every problem found in ``adverse_events.csv`` and ``secondary_outcomes.csv``.

    A :class:`ValueError` (via :class:`mscmeta.engine.validation.DataError`). Each failure names the
    file, the CSV line, the study, the outcome and the column; ``failures`` lists them.
    """


@dataclass(frozen=True)
class SecondaryData:
    """The two validated long sheets (typed columns, original row order)."""

    adverse_events: pd.DataFrame
    outcomes: pd.DataFrame


def _with_outcome(failure: Failure, frame: pd.DataFrame) -> Failure:
    """Add the row's outcome to the message of a failure that points at a data row."""
    if failure.line is None or failure.line < 2 or "outcome" not in frame.columns:
        return failure
    index = failure.line - 2
    if index not in frame.index:
        return failure
    outcome = frame.at[index, "outcome"]
    if pd.isna(outcome):
        return failure
    return Failure(failure.file, failure.line, failure.study, failure.column, f"outcome {outcome}: {failure.message}")


def _group_failures(file: str, frame: pd.DataFrame) -> list[Failure]:
    out: list[Failure] = []
    for rule in SS.GROUP_RULES[file]:
        if not set(rule.keys) | {"statistic", "value", "use"} <= set(frame.columns):
            continue
        keys = list(rule.keys)
        sizes = frame.groupby(keys, dropna=False, sort=False)[keys[0]].transform("size")
        shared = frame[sizes >= 2]  # a one-row group cannot break a rule (GroupRule)
        for _, group in shared.groupby(keys, dropna=False, sort=False):
            for index, message in rule.failures(group):
                study = frame.at[index, "study_id"]
                out.append(Failure(file, csv_line(index), None if pd.isna(study) else str(study), rule.column, message))
    return out


def _study_failures(file: str, frame: pd.DataFrame, known: set[str]) -> list[Failure]:
    if "study_id" not in frame.columns:
        return []
    bad = frame[frame["study_id"].notna() & ~frame["study_id"].isin(known)]
    return [Failure(file, csv_line(i), str(s), "study_id", f"{s!r} is not a study_id of studies.csv")
            for i, s in bad["study_id"].items()]


def _empty_sheet(name: str) -> pd.DataFrame:
    """A typed frame with the sheet's columns and no rows (for a sheet that is absent)."""
    spec = SS.SHEETS[name]
    return validate_sheet(spec, pd.DataFrame({c: pd.Series(dtype=object) for c in spec.columns}))[0]


def secondary_failures(
    texts: Mapping[str, pd.DataFrame], studies: Iterable[str] | None = None
) -> tuple[SecondaryData, list[Failure]]:
    """Validate the sheets present in *texts* (text frames); an absent sheet counts as empty.

    Returns the typed data and every problem found (empty when valid).
    """
    failures: list[Failure] = []
    typed: dict[str, pd.DataFrame] = {}
    for name, spec in SS.SHEETS.items():
        if name not in texts:
            typed[name] = _empty_sheet(name)
            continue
        frame, sheet_failures = validate_sheet(spec, texts[name])
        found = sheet_failures + _group_failures(name, frame)
        if studies is not None:
            found += _study_failures(name, frame, set(studies))
        failures += [_with_outcome(f, frame) for f in found]
        typed[name] = frame
    return SecondaryData(adverse_events=typed[AE_FILE], outcomes=typed[SECONDARY_FILE]), failures


def validate_secondary(
    texts: Mapping[str, pd.DataFrame], studies: Iterable[str] | None = None, data_dir: str | os.PathLike = ""
) -> SecondaryData:
    """Validate the two sheets given as text frames (every cell a string or missing).

    Parameters
    ----------
    texts : mapping
        ``{"adverse_events.csv": frame, "secondary_outcomes.csv": frame}`` as read with
        every cell as text (see :func:`mscmeta.review.csvsheet.read_sheet_text`).
    studies : iterable of str, optional
        Known study ids (``studies.csv``); when given, unknown ids are failures.
    data_dir : path-like
        Folder named in the error message.

    Raises
    ------
    SecondaryDataError
        With every problem of both sheets.
    """
    data, failures = secondary_failures(texts, studies)
    if failures:
        raise SecondaryDataError(failures, data_dir)
    return data


def load_secondary(data_dir: str | os.PathLike, studies: Iterable[str] | None = None) -> SecondaryData:
    """Read and validate ``adverse_events.csv`` and ``secondary_outcomes.csv`` in *data_dir*.

    Parameters
    ----------
    data_dir : path-like
        Folder with the raw sheets.
    studies : iterable of str, optional
        Study ids of ``studies.csv``. If omitted and ``studies.csv`` exists in
        *data_dir*, its ``study_id`` column is used.

    Raises
    ------
    SecondaryDataError
        Missing file, unreadable CSV, or any validation failure (all at once).
    """
    data_dir = Path(data_dir)
    failures: list[Failure] = []
    texts: dict[str, pd.DataFrame] = {}
    for name in SS.SHEETS:
        path = data_dir / name
        if not path.is_file():
            failures.append(Failure(name, None, None, None, "required sheet is missing"))
            continue
        text, read_failures = read_sheet_text(path)
        failures += read_failures
        if text is not None:
            texts[name] = text
    if failures:
        raise SecondaryDataError(failures, data_dir)
    if studies is None and (data_dir / "studies.csv").is_file():
        known, read_failures = read_sheet_text(data_dir / "studies.csv")
        if known is not None and "study_id" in known.columns:
            studies = known["study_id"].dropna().tolist()
    return validate_secondary(texts, studies, data_dir)


def restrict_to_studies(data: SecondaryData, study_ids: Iterable[str]) -> SecondaryData:
    """Keep only the rows of the given studies (e.g. an inclusion scenario's review set)."""
    keep = set(study_ids)
    return SecondaryData(
        adverse_events=data.adverse_events[data.adverse_events["study_id"].isin(keep)].reset_index(drop=True),
        outcomes=data.outcomes[data.outcomes["study_id"].isin(keep)].reset_index(drop=True),
    )
