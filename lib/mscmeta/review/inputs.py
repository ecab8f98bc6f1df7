"""What the pooling stages (notebooks 03 and 04) read: the validated sheets, the analysis
rows of the chosen scenario and of the others, the risk-of-bias assessments of stage 02
and the published values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mscmeta.review.quality import high_risk_studies
from mscmeta.review.rob_sheet import load_risk_of_bias
from mscmeta.review.scenarios import analysis_mortality, check_mortality_scenario, scenarios
from mscmeta.review.sheets import RawData, load_raw


@dataclass
class StageInputs:
    """What notebooks 03 and 04 read: the validated raw sheets, the analysis rows of the
    chosen scenario and of the others, the risk-of-bias assessments (if any) and the
    published values."""

    raw: RawData
    scenario: str
    data: pd.DataFrame
    scenario_data: dict[str, pd.DataFrame]
    rob: pd.DataFrame | None
    rob_source: str
    high_risk: set[str] | None
    published: pd.DataFrame | None
    source: str


def load_inputs(data_dir: str, tables_in: str, scenario: str = "primary") -> StageInputs:
    """Load and validate everything the pooling stages need.

    The analysis rows come from the raw sheets (:func:`mscmeta.review.scenarios.analysis_mortality`,
    the same function stage 01 uses to write ``analysis_mortality.csv``), so every
    scenario is available for the sensitivity analyses. Risk of bias is read from
    ``<tables_in>/risk_of_bias.csv`` (stage 02) or, failing that, ``<data_dir>/risk_of_bias.csv``.

    Raises
    ------
    mscmeta.review.csvsheet.DataValidationError
        Invalid raw data (all problems listed) or an unknown scenario.
    mscmeta.engine.validation.DataError
        A scenario without an estimable mortality analysis
        (:func:`~mscmeta.review.scenarios.check_mortality_scenario`).
    """
    raw = load_raw(data_dir, optional_sheets=())  # risk of bias comes from stage 02's table
    data = check_mortality_scenario(raw, scenario)
    others = {s: analysis_mortality(raw, s) for s in scenarios(raw) if s != scenario}
    rob, rob_source, high = None, "not available", None
    for candidate in (Path(tables_in) / "risk_of_bias.csv", Path(data_dir) / "risk_of_bias.csv"):
        if candidate.exists():
            rob = load_risk_of_bias(candidate)
            rob_source = str(candidate)
            high = high_risk_studies(rob, outcome="mortality" if "mortality" in set(rob["outcome"]) else None)
            break
    return StageInputs(raw, scenario, data, others, rob, rob_source, high, raw.published_results,
                       f"analysis_mortality (scenario '{scenario}')")
