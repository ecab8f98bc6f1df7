"""Stage 04 (notebook ``04-subgroup``): mortality by subgroup.

The subgroup factors (:data:`SUBGROUP_FACTORS`: severity as enrolled and as assigned,
number of doses, design, MSC source, continent, country), the grouping of the analysis
rows, the engine's subgroup analysis (:func:`mscmeta.engine.subgroups.subgroup_analysis`:
separate τ² per subgroup and RevMan's test for subgroup differences), the table
``subgroups_mortality.csv``, its prose and the RevMan-style subgroup forest plots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.engine.subgroups import SubgroupResult, subgroup_analysis
from mscmeta.engine.validation import NotEstimableError
from mscmeta.plots.axes import message_figure
from mscmeta.plots.forest import subgroup_forest
from mscmeta.plots.style import use_style
from mscmeta.review.display import fmt_estimate, save_table, show_figure, show_table
from mscmeta.review.inputs import StageInputs, load_inputs
from mscmeta.review.mortality import ARM_COLUMNS, AnalysisSpec, display_value, labels_of, main_specs
from mscmeta.review.tables import subgroup_spec
from mscmeta.review.text import fmt_p

__all__ = [
    "use_style", "load_inputs", "StageInputs", "primary_spec", "settings_markdown", "SUBGROUP_FACTORS",
    "SubgroupFactor", "CONTINENTS", "grouped", "run_subgroups", "subgroup_rows", "subgroup_table",
    "subgroup_markdown", "subgroup_figure", "show_table", "show_figure", "save_table", "subgroup_spec",
    "subgroup_caption",
]


#: UN M49 regions (https://unstats.un.org/unsd/methodology/m49/) of the countries of the
#: candidate studies; Turkey and Israel are in Western Asia in M49.
CONTINENTS: dict[str, str] = {
    "China": "Asia", "Indonesia": "Asia", "Iran": "Asia", "Turkey": "Asia", "Türkiye": "Asia", "Israel": "Asia",
    "Pakistan": "Asia", "India": "Asia", "Japan": "Asia", "South Korea": "Asia",
    "France": "Europe", "Germany": "Europe", "Belgium": "Europe", "Spain": "Europe", "Italy": "Europe",
    "United Kingdom": "Europe", "Poland": "Europe", "Russia": "Europe", "Netherlands": "Europe",
    "USA": "Americas", "United States": "Americas", "Brazil": "Americas", "Mexico": "Americas", "Argentina": "Americas",
    "Canada": "Americas", "Chile": "Americas",
}


@dataclass(frozen=True)
class SubgroupFactor:
    """A subgroup factor of notebook 04: output name, title, how to derive the grouping column."""

    name: str
    title: str
    how: str
    derive: Callable[[pd.DataFrame], pd.Series]


def _severity(d: pd.DataFrame) -> pd.Series:
    return d["severity"].astype(str)


def _severity_assigned(d: pd.DataFrame) -> pd.Series:
    return d["severity_subgroup"].astype(str)


def _doses(d: pd.DataFrame) -> pd.Series:
    doses = pd.to_numeric(d["doses"], errors="coerce").astype(float).to_numpy()
    return pd.Series(
        [f"{int(x)} dose{'s' if int(x) != 1 else ''}" if np.isfinite(x) else "not reported / variable" for x in doses],
        index=d.index,
    )


def _design(d: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(d["randomised"].astype(bool).to_numpy(), "randomised", "non-randomised"), index=d.index)


def _source(d: pd.DataFrame) -> pd.Series:
    return d["msc_source"].fillna("not reported").astype(str)


def _continent(d: pd.DataFrame) -> pd.Series:
    def region(country: object) -> str:
        if country is None or (isinstance(country, float) and np.isnan(country)) or str(country).strip() == "":
            return "not reported"
        parts = [p.strip() for p in str(country).replace(" and ", ";").replace(",", ";").split(";") if p.strip()]
        regions = sorted({CONTINENTS.get(p, "other") for p in parts})
        return regions[0] if len(regions) == 1 else "multi-continent"

    return d["country"].map(region)


def _country(d: pd.DataFrame) -> pd.Series:
    return d["country"].fillna("not reported").astype(str)


SUBGROUP_FACTORS: tuple[SubgroupFactor, ...] = (
    SubgroupFactor(
        "severity", "Severity as enrolled",
        "each study's enrolled population as the source describes it; studies that enrolled both severe and critical "
        "(or also moderate) patients form their own 'mixed' subgroup rather than being assigned",
        _severity,
    ),
    SubgroupFactor(
        "severity_assigned", "Severity, project assignment (severe vs critical)",
        "the project's assignment of every study to severe or critical (column severity_subgroup of studies.csv, "
        "documented there per study); 'mixed'/'not assigned' studies stay separate",
        _severity_assigned,
    ),
    SubgroupFactor("doses", "Number of MSC doses", "number of infusions per patient (studies.csv column doses)", _doses),
    SubgroupFactor("design", "Study design", "randomised controlled trials vs non-randomised comparisons", _design),
    SubgroupFactor("msc_source", "MSC source", "tissue of origin of the cells", _source),
    SubgroupFactor("continent", "Continent (UN M49 region)", "region of the study country (UN M49)", _continent),
    SubgroupFactor("country", "Country", "study country", _country),
)


#: Display order of known subgroup labels (others follow alphabetically).
GROUP_ORDER = (
    "severe", "critical", "mixed", "non-severe", "not assigned", "1 dose", "2 doses", "3 doses", "4 doses",
    "5 doses", "6 doses", "randomised", "non-randomised",
)


#: Column holding the derived subgroup label in :func:`grouped`.
GROUP_COLUMN = "subgroup"


def grouped(data: pd.DataFrame, factor: SubgroupFactor) -> pd.DataFrame:
    """*data* with the factor's subgroup label in column ``subgroup``, sorted by subgroup
    (:data:`GROUP_ORDER`, then alphabetically, "not reported" last) and study_id."""
    d = data.copy()
    d[GROUP_COLUMN] = factor.derive(d).astype(str).to_numpy()

    def rank(label: str) -> tuple[int, int, str]:
        if label.startswith("not reported"):
            return (2, 0, label)
        return (0, GROUP_ORDER.index(label), label) if label in GROUP_ORDER else (1, 0, label)

    key = d[GROUP_COLUMN].map(rank)
    d = d.assign(_rank=key).sort_values(["_rank", ARM_COLUMNS["study"]], kind="mergesort").drop(columns="_rank")
    return d.reset_index(drop=True)


def run_subgroups(data: pd.DataFrame, factor: SubgroupFactor, options: BinaryOptions,
                  source: str | None = None) -> SubgroupResult | None:
    """:func:`mscmeta.engine.subgroups.subgroup_analysis` of *data* by *factor*.

    ``None`` when there are fewer than two subgroups (nothing to compare) or no study has
    an estimable effect.
    """

    d = grouped(data, factor)
    if d[GROUP_COLUMN].nunique() < 2:
        return None
    try:
        return subgroup_analysis(d, GROUP_COLUMN, columns=ARM_COLUMNS, source=source, options=options)
    except NotEstimableError:
        return None


SUBGROUP_COLUMNS = (
    "factor", "subgroup", "studies", "k", "events_msc", "n_msc", "events_control", "n_control", "estimate", "ci_low",
    "ci_high", "p_value", "Q", "Q_df", "Q_p", "I2", "tau2", "Q_between", "df_between", "p_between", "measure", "model",
    "zero_cell", "note",
)


def subgroup_rows(factor: SubgroupFactor, data: pd.DataFrame, sg: SubgroupResult | None) -> list[dict]:
    """Rows of ``subgroups_mortality.csv`` for one factor (one per subgroup, then the overall)."""
    d = grouped(data, factor)
    groups = d[GROUP_COLUMN]
    rows = []
    if sg is None:
        labels = sorted(set(groups))
        why = ("single subgroup: no subgroup comparison possible" if len(labels) < 2
               else "not estimable: no study has an estimable effect")
        return [{"factor": factor.name, "subgroup": "; ".join(labels), "studies": "; ".join(d[ARM_COLUMNS["study"]].astype(str)),
                 "k": 0, "note": why}]
    for name, sub in sg.subgroups.items():
        members = d[groups.to_numpy() == str(name)]
        row = {
            "factor": factor.name, "subgroup": str(name),
            "studies": "; ".join(members[ARM_COLUMNS["study"]].astype(str)),
            "events_msc": int(members[ARM_COLUMNS["events_t"]].sum()), "n_msc": int(members[ARM_COLUMNS["n_t"]].sum()),
            "events_control": int(members[ARM_COLUMNS["events_c"]].sum()), "n_control": int(members[ARM_COLUMNS["n_c"]].sum()),
            "Q_between": sg.Q_between, "df_between": sg.df_between, "p_between": sg.p_between,
        }
        if sub is None:
            note = (getattr(sg, "notes", {}) or {}).get(name) or "not estimable"
            if not note.startswith("not estimable"):
                note = f"not estimable: {note}"
            row.update(k=0, note=note)
        else:
            row.update(_stats(sub))
            if sub.k == 1:
                row["note"] = "single study: the subgroup estimate is that study's estimate; no heterogeneity"
        rows.append(row)
    overall = {"factor": factor.name, "subgroup": "overall", "studies": "; ".join(data[ARM_COLUMNS["study"]].astype(str)),
               "events_msc": int(data[ARM_COLUMNS["events_t"]].sum()), "n_msc": int(data[ARM_COLUMNS["n_t"]].sum()),
               "events_control": int(data[ARM_COLUMNS["events_c"]].sum()), "n_control": int(data[ARM_COLUMNS["n_c"]].sum()),
               "Q_between": sg.Q_between, "df_between": sg.df_between, "p_between": sg.p_between}
    overall.update(_stats(sg.overall))
    rows.append(overall)
    return rows


def _stats(result: MetaResult) -> dict:
    return {
        "k": int(result.k), "estimate": display_value(result, result.estimate), "ci_low": display_value(result, result.ci_low),
        "ci_high": display_value(result, result.ci_high), "p_value": float(result.p_value), "Q": float(result.Q),
        "Q_df": int(result.Q_df), "Q_p": float(result.Q_p), "I2": float(result.I2),
        "tau2": float(result.tau2) if result.model == "random" else np.nan,
        "measure": result.measure, "model": result.model, "zero_cell": result.zero_cell,
    }


def subgroup_table(rows: Iterable[dict]) -> pd.DataFrame:
    """``subgroups_mortality.csv`` from the rows of :func:`subgroup_rows`."""
    out = pd.DataFrame(list(rows))
    for c in SUBGROUP_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan
    out["note"] = out["note"].fillna("")
    return out.loc[:, list(SUBGROUP_COLUMNS)]


def subgroup_markdown(table: pd.DataFrame) -> str:
    """Findings of the subgroup analyses, numbers from ``subgroups_mortality.csv``."""
    lines = []
    for factor, rows in table.groupby("factor", sort=False):
        subs = rows[rows["subgroup"] != "overall"]
        if len(subs) == 1 and subs.iloc[0]["k"] == 0 and "single subgroup" in str(subs.iloc[0]["note"]):
            lines.append(f"- **{factor}**: one subgroup only ({subs.iloc[0]['subgroup']}); nothing to compare.")
            continue
        parts = []
        for r in subs.itertuples(index=False):
            if np.isfinite(r.estimate):
                parts.append(f"{r.subgroup} {fmt_estimate(r.estimate, r.ci_low, r.ci_high)} (k = {int(r.k)})")
            else:
                parts.append(f"{r.subgroup} not estimable")
        qb, dfb, pb = rows.iloc[0]["Q_between"], rows.iloc[0]["df_between"], rows.iloc[0]["p_between"]
        test = (f"test for subgroup differences Chi² = {qb:.2f}, df = {int(dfb)}, {fmt_p(pb)}" if np.isfinite(qb)
                else "no test for subgroup differences (fewer than two estimable subgroups)")
        lines.append(f"- **{factor}**: " + "; ".join(parts) + f"; {test}.")
    lines.append("")
    lines.append("Subgroup comparisons are observational (they compare studies, not randomised groups), rest on few "
                 "studies per subgroup and have little power: a non-significant test for subgroup differences is not "
                 "evidence that the effect is the same across subgroups.")
    return "\n".join(lines) + "\n"


def subgroup_figure(data: pd.DataFrame, factor: SubgroupFactor, sg: SubgroupResult | None) -> Figure:
    """Subgroup forest plot of one factor (message figure when there is nothing to compare)."""

    if sg is None:
        return message_figure(f"{factor.title}: fewer than two subgroups with data, nothing to compare")
    return subgroup_forest(sg, labels=labels_of(data), data=grouped(data, factor), study_column=ARM_COLUMNS["study"],
                           title=factor.title)


def primary_spec(measure: str, model: str, zero_cell: str, tau2_method: str) -> AnalysisSpec:
    """The primary analysis of the notebook parameters; every subgroup analysis uses its options."""
    return main_specs(measure, model, zero_cell, tau2_method)[0]


MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}


def settings_markdown(spec: AnalysisSpec, inputs: StageInputs) -> str:
    """One sentence naming the settings of every subgroup analysis."""
    name = MEASURE_NAMES.get(spec.options.measure, spec.options.measure)
    return (f"Every subgroup analysis pools mortality as a **{name}** ({spec.description}); scenario "
            f"{inputs.scenario}, {len(inputs.data)} studies.")


def subgroup_caption(factor: SubgroupFactor, measure: str) -> str:
    """Caption of one subgroup forest plot: what it shows and how to read it."""
    name = MEASURE_NAMES.get(measure, measure)
    side = "0" if measure == "RD" else "1"
    return (f"{factor.title}: RevMan forest plot of mortality by subgroup ({name}, MSC vs control). Study rows "
            "(squares sized by their weight in the overall analysis, 95% CIs), a subtotal diamond per subgroup with its "
            f"heterogeneity, then the overall total and the test for subgroup differences; left of {side} means fewer "
            "deaths with MSC. Grouping: " + factor.how + ".")
