"""Input validation for the meta-analysis engine.

Every public entry point of :mod:`mscmeta` validates its input here first, so that a data
mistake ends in one :class:`DataError` that names the source (file), the study, the column
and what is wrong -- never in a numpy warning, a NaN result or a traceback deep inside the
numerics. All problems of a table are collected and reported together.

Row numbers in messages are 1-based data rows (the header of a CSV file is not counted).
The error classes and the option checks live in :mod:`mscmeta.engine.errors` (no pandas,
so the notebook runner can check option values cheaply) and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mscmeta.engine.errors import DataError, NotEstimableError, check_level, normalise_choice

__all__ = ["BINARY_COLUMNS", "GENERIC_COLUMNS", "MAX_COUNT", "DataError", "NotEstimableError", "check_binary",
           "check_level", "normalise_choice", "resolve_columns", "validate_binary", "validate_effects",
           "validate_generic"]

#: Canonical column names of a binary-outcome table (one row per study).
BINARY_COLUMNS: tuple[str, ...] = ("study", "events_t", "n_t", "events_c", "n_c")
#: Canonical column names of a generic effect-size table.
GENERIC_COLUMNS: tuple[str, ...] = ("study", "yi", "vi")

_COUNT_COLUMNS = ("events_t", "n_t", "events_c", "n_c")
_MAX_LISTED = 20
#: Largest count accepted: no arm of a study holds more than a billion patients, and a
#: larger number is a typing or export error (or would overflow a 64-bit integer).
MAX_COUNT = 1_000_000_000
#: A count written as text: plain ASCII digits (a leading minus is reported as negative).
_COUNT_TEXT = re.compile(r"-?[0-9]+")
#: Control characters (C0, DEL, C1): a study label holding one breaks every table it is in.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _prefix(source: str | None) -> str:
    return f"{source}: " if source else ""


def _join(problems: Sequence[str]) -> str:
    shown = list(problems[:_MAX_LISTED])
    if len(problems) > _MAX_LISTED:
        shown.append(f"... and {len(problems) - _MAX_LISTED} more problems")
    return "; ".join(shown)


def _fmt_value(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _study_label(raw: object) -> str | None:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA or raw is pd.NaT:
        return None
    if isinstance(raw, (float, np.floating)) and float(raw).is_integer():
        raw = int(raw)
    text = str(raw).strip()
    return text or None


def resolve_columns(
    df: pd.DataFrame,
    canonical: Sequence[str],
    columns: Mapping[str, str] | None,
    source: str | None,
) -> dict[str, str]:
    """Map canonical names to the caller's column names and check they all exist.

    Parameters
    ----------
    df : DataFrame
        The caller's table.
    canonical : sequence of str
        Canonical names that must be present (e.g. :data:`BINARY_COLUMNS`).
    columns : mapping, optional
        ``{canonical: caller_name}`` for the columns named differently.
    source : str, optional
        Name of the data source for messages.

    Returns
    -------
    dict
        ``{canonical: caller_name}`` for every canonical name.

    Raises
    ------
    DataError
        If the mapping names unknown canonical columns or a column is missing.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{_prefix(source)}expected a pandas DataFrame, got {type(df).__name__}")
    mapping = dict(columns or {})
    unknown = sorted(set(mapping) - set(canonical))
    if unknown:
        raise DataError(
            f"{_prefix(source)}unknown key(s) {', '.join(map(repr, unknown))} in 'columns'; "
            f"valid keys: {', '.join(canonical)}"
        )
    resolved = {name: mapping.get(name, name) for name in canonical}
    missing = [f"'{resolved[name]}'" + (f" (for {name})" if resolved[name] != name else "")
               for name in canonical if resolved[name] not in df.columns]
    if missing:
        present = ", ".join(map(str, df.columns)) or "none"
        raise DataError(
            f"{_prefix(source)}missing column(s) {', '.join(missing)}; columns present: {present}"
        )
    return resolved


def _check_study_ids(raw: pd.Series, col: str, source: str | None, problems: list[str]) -> list[str]:
    labels: list[str] = []
    seen: dict[str, int] = {}
    for row, value in enumerate(raw.tolist(), start=1):
        label = _study_label(value)
        if label is None:
            problems.append(f"{_prefix(source)}row {row}, column '{col}': missing study id")
            labels.append(f"row {row}")
            continue
        if _CONTROL.search(label):
            problems.append(
                f"{_prefix(source)}study {_fmt_value(label)} (row {row}), column '{col}': the study label contains a "
                "control character (a line break or tab); write it on one line"
            )
            label = _CONTROL.sub(" ", label)
        if label in seen:
            problems.append(
                f"{_prefix(source)}study '{label}' (row {row}), column '{col}': "
                f"duplicate study id (first used in row {seen[label]})"
            )
        else:
            seen[label] = row
        labels.append(label)
    return labels


def _numeric(
    raw: pd.Series, col: str, labels: Sequence[str], source: str | None, problems: list[str], *, integer: bool
) -> np.ndarray:
    """Convert a column to float, recording every missing, non-numeric or non-finite cell."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy()
        for row in range(len(values)):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': "
                f"non-numeric value {_fmt_value(values[row])}"
            )
        return np.full(len(values), np.nan)
    if raw.dtype.kind in "iu":
        out = raw.to_numpy(dtype=float)
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        out = raw.to_numpy(dtype=float, na_value=np.nan)
        bad_rows = np.flatnonzero(~np.isfinite(out))
        for row in bad_rows:
            kind = "missing value" if np.isnan(out[row]) else f"non-finite value {out[row]}"
            problems.append(f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': {kind}")
        out[bad_rows] = np.nan
    else:
        out = np.full(len(raw), np.nan)
        for row, value in enumerate(raw.tolist()):
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                problems.append(f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': missing value")
                continue
            if isinstance(value, bool):
                number = None
            else:
                text = str(value).strip()
                if text == "":
                    problems.append(
                        f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': missing value"
                    )
                    continue
                if integer and isinstance(value, str):
                    number, problem = _count_from_text(text)
                    if problem:
                        problems.append(f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': "
                                        f"{problem}")
                        continue
                    if number is not None:
                        out[row] = number
                        continue
                try:
                    number = float(text)
                except ValueError:
                    number = None
            if number is None or not np.isfinite(number):
                problems.append(
                    f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': "
                    f"non-numeric value {_fmt_value(value)}"
                )
                continue
            out[row] = number
    if integer:
        for row in np.flatnonzero(np.abs(np.where(np.isfinite(out), out, 0.0)) > MAX_COUNT):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': count "
                f"{_fmt_value(raw.iloc[row])} is implausibly large (more than {MAX_COUNT:,})"
            )
            out[row] = np.nan
        finite = np.isfinite(out)
        frac = np.where(finite, out - np.round(np.where(finite, out, 0.0)), 0.0)
        for row in np.flatnonzero(frac != 0):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{col}': "
                f"non-integer count {_fmt_value(raw.iloc[row])}"
            )
            out[row] = np.nan
    return out


def _count_from_text(text: str) -> tuple[float | None, str | None]:
    """A count written as text: its value (None: not a number, left to the caller), or a problem.

    Only plain ASCII digits are a count: ``1e1``, ``12.0``, ``+3``, ``1_000`` and non-ASCII
    digits (``３``) are numbers to Python but not counts a user typed; a fraction (``1.5``)
    is left to the non-integer check.
    """
    if _COUNT_TEXT.fullmatch(text):
        value = int(text)
        if abs(value) > MAX_COUNT:
            return None, f"count {text!r} is implausibly large (more than {MAX_COUNT:,})"
        return float(value), None
    try:
        number = float(text)
    except ValueError:
        return None, None
    if np.isfinite(number) and number != round(number):
        return None, None
    return None, f"count {text!r} must be written as a whole number with the digits 0-9 only"


def check_binary(
    df: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Array form of :func:`validate_binary`: study labels and float count arrays.

    Same checks and messages as :func:`validate_binary`; used internally because the
    engine works on arrays.
    """
    names = resolve_columns(df, BINARY_COLUMNS, columns, source)
    if len(df) == 0:
        raise DataError(f"{_prefix(source)}the table has no studies (no data rows)")
    problems: list[str] = []
    labels = _check_study_ids(df[names["study"]], names["study"], source, problems)
    counts = {c: _numeric(df[names[c]], names[c], labels, source, problems, integer=True) for c in _COUNT_COLUMNS}
    for c in _COUNT_COLUMNS:
        values = counts[c]
        for row in np.flatnonzero(values < 0):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{names[c]}': "
                f"negative count {int(values[row])}"
            )
            values[row] = np.nan
    for n_col in ("n_t", "n_c"):
        values = counts[n_col]
        for row in np.flatnonzero(values == 0):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{names[n_col]}': "
                "arm total is 0 (an arm needs at least one participant)"
            )
    for ev_col, n_col in (("events_t", "n_t"), ("events_c", "n_c")):
        ev, n = counts[ev_col], counts[n_col]
        for row in np.flatnonzero(ev > n):
            problems.append(
                f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{names[ev_col]}': "
                f"events ({int(ev[row])}) greater than the arm total {names[n_col]} ({int(n[row])})"
            )
    if problems:
        raise DataError(_join(problems))
    return labels, counts


def validate_binary(
    df: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Check a 2x2-count table and return it in canonical form.

    Parameters
    ----------
    df : DataFrame
        One row per study with a study id, events and totals in the treatment (``_t``)
        and control (``_c``) arm.
    columns : mapping, optional
        ``{canonical: caller_name}``, e.g. ``{"events_t": "events_msc", "n_t": "n_msc",
        "events_c": "events_control", "n_c": "n_control", "study": "study_id"}``.
    source : str, optional
        Name of the data source (e.g. the CSV file) used in error messages.

    Returns
    -------
    DataFrame
        Columns ``study`` (str), ``events_t``, ``n_t``, ``events_c``, ``n_c`` (int64), in
        input order with a fresh ``RangeIndex``.

    Raises
    ------
    DataError
        Listing *all* problems: missing columns, no rows, missing values, non-numeric,
        non-finite, non-integer or negative counts, totals below 1, events greater than
        the arm total, missing or duplicate study ids.
    """
    labels, counts = check_binary(df, columns, source)
    data = {"study": np.array(labels, dtype=object)}
    data.update({c: counts[c].astype(np.int64) for c in _COUNT_COLUMNS})
    return pd.DataFrame(data)


def validate_generic(
    df: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Check a table of study effect sizes ``yi`` with sampling variances ``vi``.

    Returns columns ``study`` (str), ``yi``, ``vi`` (float) in input order.

    Raises
    ------
    DataError
        Listing all problems: missing columns or values, non-numeric or non-finite cells,
        variances that are not strictly positive, missing or duplicate study ids.
    """
    names = resolve_columns(df, GENERIC_COLUMNS, columns, source)
    if len(df) == 0:
        raise DataError(f"{_prefix(source)}the table has no studies (no data rows)")
    problems: list[str] = []
    labels = _check_study_ids(df[names["study"]], names["study"], source, problems)
    yi = _numeric(df[names["yi"]], names["yi"], labels, source, problems, integer=False)
    vi = _numeric(df[names["vi"]], names["vi"], labels, source, problems, integer=False)
    for row in np.flatnonzero(np.isfinite(vi) & (vi <= 0)):
        problems.append(
            f"{_prefix(source)}study '{labels[row]}' (row {row + 1}), column '{names['vi']}': "
            f"sampling variance must be > 0, got {vi[row]:g}"
        )
    if problems:
        raise DataError(_join(problems))
    return pd.DataFrame({"study": pd.Series(labels, dtype=object), "yi": yi, "vi": vi})


def validate_effects(
    yi: Iterable[float], vi: Iterable[float], studies: Iterable[object] | None = None, source: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate effect sizes given as arrays; return float arrays and study labels."""
    yi_list, vi_list = list(yi), list(vi)
    if len(yi_list) != len(vi_list):
        raise DataError(f"{_prefix(source)}yi has {len(yi_list)} values but vi has {len(vi_list)}")
    if studies is None:
        labels = [str(i + 1) for i in range(len(yi_list))]
    else:
        labels = list(studies)
        if len(labels) != len(yi_list):
            raise DataError(f"{_prefix(source)}{len(labels)} study labels for {len(yi_list)} effect sizes")
    frame = pd.DataFrame({"study": labels, "yi": yi_list, "vi": vi_list})
    clean = validate_generic(frame, source=source)
    return clean["yi"].to_numpy(), clean["vi"].to_numpy(), clean["study"].tolist()
