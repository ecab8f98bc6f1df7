"""The engine's error classes and option checks, free of pandas.

:class:`DataError` is what every data or option mistake raises (one line naming the
source, the study, the column and the problem); :func:`normalise_choice` and
:func:`check_level` read option values. They live apart from
:mod:`mscmeta.engine.validation` (which re-exports them) so that a process that only
checks option values -- the notebook runner -- does not import pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DataError(ValueError):
    """A user's data (or option) cannot be analysed as given.

    The message is a single line naming the source, the study, the column and the
    problem, e.g. ``"mortality.csv: study 'Lanzoni 2021' (row 3), column 'events_t':
    events (12) greater than the arm total n_t (10)"``.
    """


class NotEstimableError(DataError):
    """No study carries information for the requested pooled estimate.

    Raised, for example, for an odds ratio when every study has no events in either arm.
    Subgroup analyses catch it and report the subgroup as "not estimable".
    """


def normalise_choice(value: object, option: str, aliases: Mapping[str, str], valid: Sequence[str]) -> str:
    """Map an option value (case-insensitive, with aliases) to its canonical spelling.

    Raises
    ------
    DataError
        Naming the option, the bad value and the valid values.
    """
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-")
        if key in aliases:
            return aliases[key]
    raise DataError(f"unknown {option} {value!r}; valid values: {', '.join(valid)}")


def check_level(level: float) -> float:
    """Return the confidence level as a fraction in (0, 1); accept percentages like 95."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise DataError(f"level must be a number such as 0.95 or 95, got {level!r}") from None
    if 1 < value < 100:
        value = value / 100
    if not 0 < value < 1:
        raise DataError(f"level must be between 0 and 1 (e.g. 0.95) or between 1 and 100 (e.g. 95), got {level!r}")
    return value
