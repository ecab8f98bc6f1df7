"""Schemas of the two secondary-outcome sheets: ``adverse_events.csv`` and ``secondary_outcomes.csv``.

Both sheets are long (one number per row, with its source) and are declared in the
same way as the other raw sheets (:mod:`mscmeta.review.schema`): one :class:`~mscmeta.review.schema.Field`
per column and :class:`~mscmeta.review.schema.RowRule` objects for checks on several columns of
one row, from which the pandera schemas are built. Checks that need several rows of the
same study and outcome (a count larger than its arm total, two "primary" readings of the
same number, quartiles out of order, ...) are declared as :class:`GroupRule` objects.

:data:`OUTCOMES` is the closed list of outcome names with their label, kind and the
direction that favours MSC; the validation refuses any other outcome name, so a typo
cannot silently create a new outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.review.schema import (
    SOURCE_LEVELS,
    SOURCE_PATTERN,
    STUDY_ID_PATTERN,
    USES,
    Field,
    RowRule,
    SheetSpec,
    _fmt,
)

# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class OutcomeInfo:
    """What an outcome name means.

    Attributes
    ----------
    label : str
        Display label.
    kind : {"binary", "continuous", "events", "contrast", "narrative"}
        ``binary``: patients with the event out of n per arm; ``continuous``: arm-level
        mean/SD or median/IQR/range; ``events``: numbers of events (no denominator,
        descriptive only); ``contrast``: only a between-arm estimate is reported;
        ``narrative``: direction only.
    better : {"lower", "higher", ""}
        Which direction of the MSC arm relative to control favours MSC.
    domain : {"safety", "resource use", "pulmonary", "inflammation"}
        Group used in tables and the overview figure.
    """

    label: str
    kind: str
    better: str
    domain: str


#: Adverse-event outcomes of ``adverse_events.csv``.
AE_OUTCOMES: dict[str, OutcomeInfo] = {
    "any_ae": OutcomeInfo("Patients with any adverse event", "binary", "lower", "safety"),
    "serious_ae": OutcomeInfo("Patients with a serious adverse event", "binary", "lower", "safety"),
    "infusion_reaction": OutcomeInfo("Patients with an infusion-related reaction", "binary", "lower", "safety"),
    "treatment_related_ae": OutcomeInfo("Treatment-related adverse events (events)", "events", "lower", "safety"),
    "ae_events": OutcomeInfo("Adverse events (number of events)", "events", "lower", "safety"),
    "sae_events": OutcomeInfo("Serious adverse events (number of events)", "events", "lower", "safety"),
    "ae_kind": OutcomeInfo("Kind of adverse event", "events", "lower", "safety"),
}

#: Outcomes of ``secondary_outcomes.csv``.
SECONDARY_OUTCOMES: dict[str, OutcomeInfo] = {
    "length_of_stay_hospital": OutcomeInfo("Length of hospital stay", "continuous", "lower", "resource use"),
    "length_of_stay_icu": OutcomeInfo("Length of ICU stay", "continuous", "lower", "resource use"),
    "mechanical_ventilation": OutcomeInfo("Mechanical ventilation", "binary", "lower", "resource use"),
    "ecmo": OutcomeInfo("ECMO", "binary", "lower", "resource use"),
    "pao2_fio2": OutcomeInfo("PaO2/FiO2", "continuous", "higher", "pulmonary"),
    "murray_score": OutcomeInfo("Murray lung injury score", "continuous", "lower", "pulmonary"),
    "ct_score": OutcomeInfo("Chest CT score", "continuous", "lower", "pulmonary"),
    "ct_improvement": OutcomeInfo("Chest imaging improved", "binary", "higher", "pulmonary"),
    "ct_normal": OutcomeInfo("Normal chest CT", "binary", "higher", "pulmonary"),
    "ct_lesion_volume_change": OutcomeInfo("CT lesion volume change", "contrast", "lower", "pulmonary"),
    "six_minute_walk": OutcomeInfo("6-minute walk distance", "contrast", "higher", "pulmonary"),
    "pulmonary_function": OutcomeInfo("Pulmonary function (narrative)", "narrative", "higher", "pulmonary"),
    "il6": OutcomeInfo("IL-6", "continuous", "lower", "inflammation"),
    "crp": OutcomeInfo("C-reactive protein", "continuous", "lower", "inflammation"),
    "tnf_alpha": OutcomeInfo("TNF-α", "continuous", "lower", "inflammation"),
    "inflammatory_cytokines": OutcomeInfo("Other inflammatory cytokines", "narrative", "lower", "inflammation"),
    "lymphocytes": OutcomeInfo("Lymphocyte count", "continuous", "higher", "inflammation"),
}

OUTCOMES: dict[str, OutcomeInfo] = {**AE_OUTCOMES, **SECONDARY_OUTCOMES}

ARMS = ("msc", "control")
SECONDARY_ARMS = ("msc", "control", "contrast")
AE_STATISTICS = ("count", "n")
AE_UNITS = ("patients", "events")
#: Arm-level statistics (rows with arm msc/control).
ARM_STATISTICS = ("mean", "sd", "median", "q1", "q3", "min", "max", "n", "count", "narrative")
#: Between-arm statistics (rows with arm contrast).
CONTRAST_STATISTICS = ("effect", "ci_low", "ci_high", "p_value", "narrative")
SECONDARY_STATISTICS = tuple(dict.fromkeys(ARM_STATISTICS + CONTRAST_STATISTICS))
#: Statistics on the scale of the outcome (they need a unit).
QUOTE_CHECKS = ("re-read in source", "from research notes")
SCALED_STATISTICS = ("mean", "sd", "median", "q1", "q3", "min", "max", "effect", "ci_low", "ci_high")


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype("string").str.strip() == "")


def _provenance_fields() -> tuple[Field, ...]:
    return (
        Field("timepoint", description="time point or period of the number, as the source states it"),
        Field("use", allowed=USES, description="primary = the project's reading; alternative = kept for provenance"),
        Field("source", pattern=SOURCE_PATTERN, description="URL or DOI of the source"),
        Field("location", description="table, figure or section in the source"),
        Field("quote", description="short verbatim quote containing the number (or the statement)"),
        Field("quote_check", allowed=QUOTE_CHECKS,
              description="re-read in source = quote checked against the source itself during extraction; "
                          "from research notes = copied from the evidence dossier/addenda, not re-read"),
        Field("source_level", allowed=SOURCE_LEVELS, description="kind of source the number is read from"),
        Field("derivation", required=False, description="arithmetic, if the number is derived"),
        Field("note", required=False, description="conflicts, caveats, why a row is alternative"),
    )


AE_SHEET = SheetSpec(
    file="adverse_events.csv",
    fields=(
        Field("study_id", pattern=STUDY_ID_PATTERN, description="study (studies.csv)"),
        Field("outcome", allowed=tuple(AE_OUTCOMES), description="adverse-event outcome"),
        Field("ae_type", required=False, description="kind of adverse event (rows with outcome ae_kind only)"),
        Field("arm", allowed=ARMS, description="msc or control"),
        Field("statistic", allowed=AE_STATISTICS, description="count (patients or events) or n (patients in the arm)"),
        Field("value", "int", minimum=0, description="the number"),
        Field("unit", allowed=AE_UNITS, description="patients or events"),
        *_provenance_fields(),
    ),
    row_rules=(
        RowRule(
            "ae_type_for_kinds",
            "ae_type",
            ("outcome", "ae_type"),
            lambda d: (d["outcome"] == "ae_kind") == ~_blank(d["ae_type"]),
            lambda r: "ae_type must be filled for outcome 'ae_kind' and empty otherwise"
            f" (outcome {_fmt(r['outcome'])}, ae_type {_fmt(r['ae_type'])})",
        ),
        RowRule(
            "n_is_patients",
            "unit",
            ("statistic", "unit"),
            lambda d: ~((d["statistic"] == "n") & (d["unit"] != "patients")),
            lambda r: f"an arm total (statistic 'n') counts patients, found unit {_fmt(r['unit'])}",
        ),
        RowRule(
            "n_positive",
            "value",
            ("statistic", "value"),
            lambda d: ~((d["statistic"] == "n") & (d["value"] < 1)).fillna(False),
            lambda r: f"an arm total must be at least 1, found {_fmt(r['value'])}",
        ),
        RowRule(
            "patient_outcomes_count_patients",
            "unit",
            ("outcome", "unit"),
            lambda d: ~(d["outcome"].isin(["any_ae", "serious_ae", "infusion_reaction"]) & (d["unit"] != "patients")),
            lambda r: f"outcome {_fmt(r['outcome'])} counts patients, found unit {_fmt(r['unit'])}",
        ),
        RowRule(
            "event_outcomes_count_events",
            "unit",
            ("outcome", "statistic", "unit"),
            lambda d: ~(d["outcome"].isin(["ae_events", "sae_events", "treatment_related_ae"])
                        & (d["statistic"] == "count") & (d["unit"] != "events")),
            lambda r: f"outcome {_fmt(r['outcome'])} counts events, found unit {_fmt(r['unit'])}",
        ),
    ),
)


SECONDARY_SHEET = SheetSpec(
    file="secondary_outcomes.csv",
    fields=(
        Field("study_id", pattern=STUDY_ID_PATTERN, description="study (studies.csv)"),
        Field("outcome", allowed=tuple(SECONDARY_OUTCOMES), description="secondary outcome"),
        Field("arm", allowed=SECONDARY_ARMS, description="msc, control, or contrast (a between-arm statistic)"),
        Field("statistic", allowed=SECONDARY_STATISTICS, description="what the number is"),
        Field("value", "float", required=False, description="the number (empty only for statistic 'narrative')"),
        Field("unit", required=False, description="unit of the number (required for values on the outcome's scale)"),
        *_provenance_fields(),
    ),
    row_rules=(
        RowRule(
            "value_unless_narrative",
            "value",
            ("statistic", "value"),
            lambda d: (d["statistic"] == "narrative") == d["value"].isna(),
            lambda r: "statistic 'narrative' must have an empty value; every other statistic needs a value"
            f" (statistic {_fmt(r['statistic'])}, value {_fmt(r['value'])})",
        ),
        RowRule(
            "statistic_fits_arm",
            "statistic",
            ("arm", "statistic"),
            lambda d: pd.Series(np.where(d["arm"] == "contrast", d["statistic"].isin(CONTRAST_STATISTICS),
                                         d["statistic"].isin(ARM_STATISTICS)), index=d.index),
            lambda r: (f"statistic {_fmt(r['statistic'])} does not fit arm {_fmt(r['arm'])} (contrast rows: "
                       f"{', '.join(CONTRAST_STATISTICS)}; msc/control rows: {', '.join(ARM_STATISTICS)})"),
        ),
        RowRule(
            "counts_are_whole",
            "value",
            ("statistic", "value"),
            lambda d: ~(d["statistic"].isin(["n", "count"]) & (d["value"].isna() | (d["value"] < 0)
                                                               | (d["value"] != d["value"].round()))).fillna(False),
            lambda r: f"statistic {_fmt(r['statistic'])} must be a whole number >= 0, found {_fmt(r['value'])}",
        ),
        RowRule(
            "n_positive",
            "value",
            ("statistic", "value"),
            lambda d: ~((d["statistic"] == "n") & (d["value"] < 1)).fillna(False),
            lambda r: f"an arm total must be at least 1, found {_fmt(r['value'])}",
        ),
        RowRule(
            "sd_positive",
            "value",
            ("statistic", "value"),
            lambda d: ~((d["statistic"] == "sd") & (d["value"] <= 0)).fillna(False),
            lambda r: f"a standard deviation must be > 0, found {_fmt(r['value'])}",
        ),
        RowRule(
            "p_value_range",
            "value",
            ("statistic", "value"),
            lambda d: ~((d["statistic"] == "p_value") & ((d["value"] < 0) | (d["value"] > 1))).fillna(False),
            lambda r: f"a p value must lie in [0, 1], found {_fmt(r['value'])}",
        ),
        RowRule(
            "unit_for_scaled_values",
            "unit",
            ("statistic", "unit"),
            lambda d: ~(d["statistic"].isin(SCALED_STATISTICS) & _blank(d["unit"])),
            lambda r: f"statistic {_fmt(r['statistic'])} needs a unit",
        ),
    ),
)

SHEETS: dict[str, SheetSpec] = {AE_SHEET.file: AE_SHEET, SECONDARY_SHEET.file: SECONDARY_SHEET}


# --------------------------------------------------------------------------- rules on groups of rows


@dataclass(frozen=True)
class GroupRule:
    """A check on the rows of one study, outcome, arm and time point.

    Every rule compares rows of a group with each other (two primary readings, a count and
    its n, quantiles, an effect and its interval, time points, units), so a group of one
    row cannot break it and is not checked.

    Parameters
    ----------
    name : str
        Identifier of the rule.
    column : str
        The column the message points at.
    keys : tuple of str
        Columns that define a group.
    failures : callable
        ``failures(group) -> list[(index, message)]`` for the rows that break the rule.
    """

    name: str
    column: str
    keys: tuple[str, ...]
    failures: Callable[[pd.DataFrame], list[tuple[object, str]]]


def _duplicates(group: pd.DataFrame) -> list[tuple[object, str]]:
    """A second row with use 'primary' for the same number."""
    primary = group[group["use"] == "primary"]
    if len(primary) < 2:
        return []
    first = primary.index[0]
    return [(i, f"a second 'primary' row for statistic {_fmt(primary.loc[i, 'statistic'])} "
                f"(first in data row {first + 1}); mark the other reading 'alternative'") for i in primary.index[1:]]


def _count_le_n(group: pd.DataFrame) -> list[tuple[object, str]]:
    stats = dict(zip(group["statistic"], group["value"]))
    counts = group[group["statistic"] == "count"]
    if "n" not in stats or counts.empty or pd.isna(stats["n"]):
        return []
    unit = group.loc[counts.index[0], "unit"] if "unit" in group else "patients"
    if unit == "events":
        return []
    return [(i, f"count {_fmt(counts.loc[i, 'value'])} exceeds the arm total n {_fmt(stats['n'])}")
            for i in counts.index if pd.notna(counts.loc[i, "value"]) and counts.loc[i, "value"] > stats["n"]]


def _quantiles_ordered(group: pd.DataFrame) -> list[tuple[object, str]]:
    order = ("min", "q1", "median", "q3", "max")
    present = [(s, group.index[group["statistic"] == s][0]) for s in order if (group["statistic"] == s).any()]
    values = [(s, i, group.loc[i, "value"]) for s, i in present if pd.notna(group.loc[i, "value"])]
    out = []
    for (s1, _, v1), (s2, i2, v2) in zip(values, values[1:]):
        if v2 < v1:
            out.append((i2, f"{s2} {_fmt(v2)} is below {s1} {_fmt(v1)} (need min <= q1 <= median <= q3 <= max)"))
    return out


def _ci_brackets(group: pd.DataFrame) -> list[tuple[object, str]]:
    stats = {s: (i, v) for s, i, v in zip(group["statistic"], group.index, group["value"])}
    if not {"effect", "ci_low", "ci_high"} <= set(stats):
        return []
    (ie, e), (_, lo), (_, hi) = stats["effect"], stats["ci_low"], stats["ci_high"]
    if lo <= e <= hi:
        return []
    return [(ie, f"effect {_fmt(e)} is outside its confidence interval [{_fmt(lo)}, {_fmt(hi)}]")]


def _one_primary_timepoint(group: pd.DataFrame) -> list[tuple[object, str]]:
    primary = group[group["use"] == "primary"]
    points = list(dict.fromkeys(primary["timepoint"]))
    if len(points) < 2:
        return []
    return [(i, f"primary rows of one study and outcome must share one time point; found {points!r} "
                "(mark the other time points 'alternative')")
            for i in primary.index[primary["timepoint"] != points[0]]]


def _same_unit(group: pd.DataFrame) -> list[tuple[object, str]]:
    if "unit" not in group.columns:
        return []
    scaled = group[group["statistic"].isin(("mean", "sd", "median", "q1", "q3", "min", "max"))]
    units = list(dict.fromkeys(scaled["unit"].dropna()))
    if len(units) < 2:
        return []
    return [(i, f"arm-level values of one study, outcome and time point must share one unit; found {units!r}")
            for i in scaled.index[scaled["unit"] != units[0]]]


_AE_STAT_KEYS = ("study_id", "outcome", "ae_type", "arm", "statistic")
_AE_ARM_KEYS = ("study_id", "outcome", "ae_type", "arm", "timepoint", "use")
_SEC_STAT_KEYS = ("study_id", "outcome", "arm", "statistic")
_SEC_ARM_KEYS = ("study_id", "outcome", "arm", "timepoint", "use")

GROUP_RULES: dict[str, tuple[GroupRule, ...]] = {
    AE_SHEET.file: (
        GroupRule("one_primary_reading", "use", _AE_STAT_KEYS, _duplicates),
        GroupRule("count_le_n", "value", _AE_ARM_KEYS, _count_le_n),
        GroupRule("one_primary_timepoint", "timepoint", ("study_id", "outcome", "ae_type"), _one_primary_timepoint),
    ),
    SECONDARY_SHEET.file: (
        GroupRule("one_primary_reading", "use", _SEC_STAT_KEYS, _duplicates),
        GroupRule("count_le_n", "value", _SEC_ARM_KEYS, _count_le_n),
        GroupRule("quantiles_ordered", "value", _SEC_ARM_KEYS, _quantiles_ordered),
        GroupRule("ci_brackets_effect", "value", _SEC_ARM_KEYS, _ci_brackets),
        GroupRule("one_primary_timepoint", "timepoint", ("study_id", "outcome"), _one_primary_timepoint),
        GroupRule("one_unit_per_arm", "unit", _SEC_ARM_KEYS, _same_unit),
    ),
}
