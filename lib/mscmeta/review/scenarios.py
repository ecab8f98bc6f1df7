"""Inclusion scenarios: which studies, and which mortality reading of each, a scenario uses.

A scenario (``scenarios.csv``, defined in ``scenario_definitions.csv``) lists its review set
and, per study, the row of ``mortality.csv`` that enters the mortality analysis (empty for
studies in the review set without comparative deaths).
"""

from __future__ import annotations

import pandas as pd

from mscmeta.engine.validation import DataError
from mscmeta.review import schema as S
from mscmeta.review.sheets import RawData


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


def check_mortality_scenario(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """The analysis rows of *scenario*, checked to give the mortality analysis something to pool.

    A scenario-level check run before a stage writes anything (stages 01, 03 and 04): the
    review set must hold at least one study with comparative deaths (a ``mortality_row``),
    and at least one of them must be estimable as an odds or risk ratio (a death in some
    arm, and not every patient dead in both arms; Cochrane Handbook 5.1 §16.9.3).

    Returns
    -------
    DataFrame
        :func:`analysis_mortality` of *scenario*.

    Raises
    ------
    DataError
        Naming the scenario, its studies and what is missing.
    """
    data = analysis_mortality(raw, scenario)
    if data.empty:
        n = len(scenario_studies(raw, scenario))
        raise DataError(
            f"scenario {scenario!r}: none of its {n} stud{'y' if n == 1 else 'ies'} has comparative deaths "
            "(a mortality_row in scenarios.csv), so there is no mortality analysis to run; add the mortality "
            "rows or choose another scenario"
        )
    events = data["events_msc"] + data["events_control"]
    total = data["n_msc"] + data["n_control"]
    if not ((events > 0) & (events < total)).any():
        ids = ", ".join(data["study_id"])
        raise DataError(
            f"scenario {scenario!r}: no study of its mortality analysis ({ids}) has a death in either arm "
            "(or a survivor), so no odds or risk ratio is estimable; check the counts in mortality.csv"
        )
    return data
