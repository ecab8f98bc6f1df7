"""What stage 06 (notebook ``06-update-and-certainty``) reads.

The validated raw sheets (core sheets plus the optional adverse-event, secondary-outcome,
GRADE-judgement and later-synthesis sheets), the per-study mortality rows of every scenario
the stage compares (:func:`mscmeta.review.scenarios.analysis_mortality`, the function stage
01 uses for ``analysis_mortality.csv``), the risk-of-bias assessments that stage 02 wrote
(``<tables_in>/risk_of_bias.csv``, as :mod:`mscmeta.review.inputs` reads them), the studies
of each review set whose deaths were not located, and the split-control reading of
multi-arm trials (:data:`SPLIT_CONTROL`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mscmeta.engine.validation import DataError
from mscmeta.review.quality import overall_judgements
from mscmeta.review.rob_sheet import load_risk_of_bias
from mscmeta.review.scenarios import analysis_mortality, scenario_studies, scenarios
from mscmeta.review.schema_update import GRADE_JUDGEMENTS, LATER_SYNTHESES
from mscmeta.review.sheets import RawData, load_raw

#: The sheets stage 06 reads besides the core sheets (the Makefile lists them as its prerequisites).
STAGE_SHEETS: tuple[str, ...] = ("adverse_events.csv", "secondary_outcomes.csv", GRADE_JUDGEMENTS.file,
                                 LATER_SYNTHESES.file)

#: The Yao-era set and the updated sets this stage compares, in display order.
REFERENCE_SCENARIO = "primary"
UPDATED_SCENARIOS: tuple[str, ...] = ("updated-rcts", "updated-all")

#: Multi-arm trials whose shared control can be split between the cell arms (Cochrane
#: Handbook v6 §23.3.4: "split the shared group into two or more groups with smaller sample
#: size"): study -> the ``mortality.csv`` rows of the comparisons and their display labels.
#: A scenario maps one row per study, so this sensitivity analysis is built here.
SPLIT_CONTROL: Mapping[str, tuple[tuple[str, str], ...]] = {
    "zarrabi2023": (("zarrabi2023-split-msc", "Zarrabi 2023 (MSC)"),
                    ("zarrabi2023-split-ev", "Zarrabi 2023 (MSC + EV)")),
}


@dataclass(frozen=True)
class UpdateInputs:
    """Everything stage 06 reads.

    Attributes
    ----------
    raw : RawData
        The validated sheets.
    data : dict
        Scenario -> per-study mortality rows (``analysis_mortality`` columns).
    rob : DataFrame or None
        The risk-of-bias assessments stage 02 wrote (``None`` if it has not run).
    rob_source : str
        Where the assessments were read (file name only, for reports).
    syntheses : DataFrame
        ``later_syntheses.csv`` (empty, with its columns, when the sheet is absent).
    judgements : DataFrame
        ``grade_judgements.csv`` (empty, with its columns, when the sheet is absent).
    """

    raw: RawData
    data: dict[str, pd.DataFrame]
    rob: pd.DataFrame | None
    rob_source: str
    syntheses: pd.DataFrame
    judgements: pd.DataFrame

    @property
    def rob_overall(self) -> pd.DataFrame | None:
        """One row per study: ``study_id, outcome, tool, overall`` (mortality assessments)."""
        if self.rob is None:
            return None
        outcome = "mortality" if "mortality" in set(self.rob["outcome"]) else None
        return overall_judgements(self.rob, outcome)

    @property
    def labels(self) -> dict[str, str]:
        """study_id -> display label (``studies.csv``)."""
        return dict(zip(self.raw.studies["study_id"], self.raw.studies["label"], strict=True))


def _optional_frame(frame: pd.DataFrame | None, columns: Iterable[str]) -> pd.DataFrame:
    return frame.copy() if frame is not None else pd.DataFrame(columns=list(columns))


def _stage02_rob(tables_in: str | Path) -> tuple[pd.DataFrame | None, str]:
    path = Path(tables_in) / "risk_of_bias.csv"
    if not path.exists():
        return None, "not available (report 02 has not been run)"
    return load_risk_of_bias(path), f"the assessments of report 02 ({path.name})"


def load_update_inputs(data_dir: str | Path, tables_in: str | Path,
                       compared: Iterable[str] = (REFERENCE_SCENARIO, *UPDATED_SCENARIOS)) -> UpdateInputs:
    """Read and validate everything stage 06 needs.

    Parameters
    ----------
    data_dir : path-like
        ``data/raw``.
    tables_in : path-like
        Where stage 02 wrote ``risk_of_bias.csv``.
    compared : iterable of str
        Scenarios whose mortality rows are loaded.

    Raises
    ------
    mscmeta.review.csvsheet.DataValidationError
        Invalid raw data (every problem listed at once).
    DataError
        A scenario that is not defined.
    """
    raw = load_raw(data_dir, optional_sheets=STAGE_SHEETS)
    known = scenarios(raw)
    unknown = [s for s in compared if s not in known]
    if unknown:
        raise DataError(f"parameter scenarios: unknown scenario(s) {', '.join(unknown)}; defined: {', '.join(known)}")
    data = {s: analysis_mortality(raw, s) for s in compared}
    rob, rob_source = _stage02_rob(tables_in)
    return UpdateInputs(raw, data, rob, rob_source,
                        _optional_frame(raw.later_syntheses, LATER_SYNTHESES.columns),
                        _optional_frame(raw.grade_judgements, GRADE_JUDGEMENTS.columns))


def missing_deaths(raw: RawData, scenario: str) -> pd.DataFrame:
    """Studies of *scenario*'s review set that are comparative but whose deaths were not located.

    Columns: ``scenario, study_id, label, design, n_msc, n_control, reason`` (the study's
    ``notes`` are long; ``reason`` is its eligibility reason). Single-arm studies are not listed.
    """
    st = scenario_studies(raw, scenario)
    rows = st[st["mortality_row"].isna() & (st["mortality_data"] == "not located")]
    out = rows[["study_id", "label", "design", "n_msc", "n_control", "reason"]].copy()
    out.insert(0, "scenario", scenario)
    return out.reset_index(drop=True)


def split_control_rows(inputs: UpdateInputs, scenario: str) -> pd.DataFrame | None:
    """*scenario*'s mortality rows with each multi-arm trial of :data:`SPLIT_CONTROL` entered as
    one comparison per cell arm against half of the shared control; ``None`` when the
    scenario has no such trial (or its split rows are missing from ``mortality.csv``).

    The pseudo-studies are keyed by their ``mortality.csv`` row id and labelled as in
    :data:`SPLIT_CONTROL`; every other column is copied from the study's row.
    """
    data = inputs.data[scenario]
    mortality = inputs.raw.mortality.set_index("row_id")
    present = [s for s in SPLIT_CONTROL if s in set(data["study_id"])
               and all(r in mortality.index for r, _ in SPLIT_CONTROL[s])]
    if not present:
        return None
    frames = [data[~data["study_id"].isin(present)]]
    for study in present:
        arms = SPLIT_CONTROL[study]
        rows = pd.concat([data[data["study_id"] == study]] * len(arms), ignore_index=True)
        for i, (row_id, label) in enumerate(arms):
            m = mortality.loc[row_id]
            rows.loc[i, ["study_id", "label", "row_id"]] = [row_id, label, row_id]
            for column in ("events_msc", "n_msc", "events_control", "n_control"):
                rows.loc[i, column] = int(m[column])
            for column in ("timepoint", "source_level", "source", "location"):
                rows.loc[i, column] = m[column]
            rows.loc[i, "derived"] = bool(pd.notna(m["derivation"]))
        frames.append(rows)
    return pd.concat(frames, ignore_index=True).sort_values("study_id", kind="mergesort").reset_index(drop=True)
