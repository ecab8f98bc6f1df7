"""Stage 02 (notebook ``02-quality-assess``): risk of bias of the studies in the review.

The assessments (``risk_of_bias.csv``, validated by :mod:`mscmeta.review.rob_sheet` when
:func:`~mscmeta.review.sheets.load_raw` reads it) use RoB 2 for randomised trials and
ROBINS-I for non-randomised comparisons (:mod:`mscmeta.engine.rob_tools`). This module
summarises them: overall judgements, the studies at high risk (left out in the pooling
stage's sensitivity analysis), wide judgement tables, coverage against the study list,
the weights of the summary plots (the primary mortality analysis of the stage's
parameters) and the prose; :func:`rob_figures` draws the robvis-style figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.rob_tools import OVERALL, ROB2, ROBINS_I, TOOLS, tool_spec
from mscmeta.plots.robplots import summary_bar, traffic_light
from mscmeta.plots.style import use_style
from mscmeta.review.csvsheet import DataValidationError, Failure
from mscmeta.review.display import save_table, show_figure, show_table
from mscmeta.review.mortality import main_specs, pool
from mscmeta.review.rob_sheet import ROB_FILE, RiskOfBiasError
from mscmeta.review.scenarios import analysis_mortality, scenario_studies
from mscmeta.review.sheets import RawData, load_raw, study_labels
from mscmeta.review.tables import ROB_OVERALL, rob_domains

__all__ = [
    "use_style", "load_raw", "scenario_studies", "analysis_mortality", "study_labels", "TOOLS",
    "overall_judgements", "high_risk_studies", "judgement_table", "overall_table", "coverage_problems",
    "check_coverage", "load_study_weights", "count_by_overall", "concerns_markdown", "primary_analysis_weights",
    "resolve_weights", "context_markdown", "rob_figures", "assessments", "scenario_assessments",
    "scenario_markdown", "missing_tools_markdown", "high_risk_markdown", "show_table", "show_figure", "save_table",
    "ROB_OVERALL", "rob_domains", "figure_caption",
]


def overall_judgements(df: pd.DataFrame, outcome: str | None = None) -> pd.DataFrame:
    """One row per study: ``study_id, outcome, tool, overall``, sorted by tool and study."""
    rows = df[df["domain"] == OVERALL]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    out = rows[["study_id", "outcome", "tool", "judgement"]].rename(columns={"judgement": "overall"})
    return out.sort_values(["tool", "study_id"], kind="mergesort").reset_index(drop=True)


def high_risk_studies(df: pd.DataFrame, outcome: str | None = None) -> set[str]:
    """Studies whose overall risk of bias is high (RoB 2) or serious/critical (ROBINS-I).

    This is the set the pooling notebook leaves out in its sensitivity analysis
    "excluding studies at high risk of bias". A ROBINS-I overall of *no information*
    is not counted as high risk (it cannot occur together with a serious or critical
    domain, see :func:`overall_judgement`).

    Parameters
    ----------
    df : DataFrame
        Validated assessments (:func:`load_risk_of_bias`).
    outcome : str, optional
        Restrict to one outcome (e.g. ``"mortality"``).
    """
    overall = overall_judgements(df, outcome)
    flags = [TOOLS[t].high_risk for t in overall["tool"]]
    return {s for s, j, hr in zip(overall["study_id"], overall["overall"], flags) if j in hr}


def judgement_table(
    df: pd.DataFrame, tool: str, outcome: str | None = None, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Wide table of one tool's assessments: one row per study, columns D1.. and Overall.

    With *labels* (``study_id`` -> display label) a ``study`` column is added after
    ``study_id``.
    """
    spec = tool_spec(tool)
    rows = df[df["tool"] == spec.name]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    wide = rows.pivot(index="study_id", columns="domain", values="judgement")
    wide = wide.reindex(columns=list(spec.rows)).sort_index()
    wide.columns.name = None
    wide = wide.reset_index()
    if labels is not None:
        wide.insert(1, "study", [labels.get(s, s) for s in wide["study_id"]])
    return wide


def overall_table(df: pd.DataFrame, labels: Mapping[str, str] | None = None, outcome: str | None = None) -> pd.DataFrame:
    """Each study's overall judgement with its reasons (the support of the Overall row)."""
    rows = df[df["domain"] == OVERALL]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    out = rows[["study_id", "tool", "judgement", "support"]].rename(columns={"judgement": "overall", "support": "reasons"})
    out.insert(1, "study", [(labels or {}).get(s, s) for s in out["study_id"]])
    return out.sort_values(["tool", "study"], kind="mergesort").reset_index(drop=True)


def coverage_problems(df: pd.DataFrame, studies: pd.DataFrame) -> list[str]:
    """Mismatches between the assessments and the study list of the data stage.

    Every comparative study (``design`` not ``single-arm``) with ``decision``
    ``included`` or ``scenario`` in ``studies.csv`` **and located deaths**
    (``mortality_data`` = ``reported``, when that column is present) needs an
    assessment, with RoB 2 for ``design == "RCT"`` and ROBINS-I otherwise; every
    assessed study must be in ``studies.csv``. Risk of bias is judged per result: a
    study whose deaths were not located has no mortality result to assess (it may
    still be assessed). Single-arm studies may carry a JBI case-series appraisal,
    which is not required.
    """
    problems = []
    tools = df[df["domain"] == OVERALL].drop_duplicates("study_id").set_index("study_id")["tool"]
    known = set(studies["study_id"])
    for study in sorted(set(tools.index) - known):
        problems.append(f"study {study}: assessed but not in studies.csv")
    needed = studies[studies["decision"].isin(["included", "scenario"]) & (studies["design"] != "single-arm")]
    if "mortality_data" in studies.columns:
        needed = needed[needed["mortality_data"] == "reported"]
    for row in needed.sort_values("study_id").itertuples():
        expected = ROB2.name if row.design == "RCT" else ROBINS_I.name
        if row.study_id not in tools.index:
            problems.append(f"study {row.study_id} ({row.decision}, {row.design}): no risk-of-bias assessment")
        elif tools[row.study_id] != expected:
            problems.append(
                f"study {row.study_id}: design {row.design!r} calls for {expected}, assessed with {tools[row.study_id]}"
            )
    return problems


def check_coverage(df: pd.DataFrame, studies: pd.DataFrame, source: str = "risk_of_bias.csv") -> None:
    """Raise :class:`RiskOfBiasError` listing every :func:`coverage_problems` entry."""
    problems = coverage_problems(df, studies)
    if problems:
        raise RiskOfBiasError(source, problems)


def load_study_weights(path: str | os.PathLike, column: str | None = None) -> pd.Series:
    """Per-study weights from a table with a ``study_id`` column (e.g. ``mortality_studies.csv``).

    Parameters
    ----------
    path : path-like
        CSV with ``study_id`` and a weight column.
    column : str, optional
        Name of the weight column. By default ``weight`` if present, else the single
        column whose name starts with ``weight``.

    Returns
    -------
    Series
        Weights indexed by ``study_id`` (non-negative, finite). An empty cell means
        the study carries no weight (the pooling stage leaves the weight of a
        non-estimable study, e.g. a double-zero study under RevMan's convention,
        empty) and becomes 0.

    Raises
    ------
    ValueError
        If the file has no ``study_id``, no (or an ambiguous) weight column, a
        duplicated study or a non-numeric/negative weight; the message names the file.
    """
    path = Path(path)
    table = pd.read_csv(path)
    if "study_id" not in table.columns:
        raise ValueError(f"{path}: no 'study_id' column (columns: {', '.join(table.columns)})")
    if column is None:
        candidates = ["weight"] if "weight" in table.columns else [c for c in table.columns if str(c).startswith("weight")]
        if len(candidates) != 1:
            raise ValueError(
                f"{path}: cannot tell which column holds the study weights ({', '.join(map(str, table.columns))}); "
                "pass column="
            )
        column = candidates[0]
    if column not in table.columns:
        raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(table.columns)})")
    dup = table["study_id"][table["study_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: study_id repeated: {', '.join(map(str, dup))}")
    empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
    weights = pd.to_numeric(table[column].where(~empty, 0), errors="coerce")
    bad = table["study_id"][weights.isna() | (weights < 0) | ~np.isfinite(weights.fillna(0))].tolist()
    if bad:
        raise ValueError(f"{path}: column {column!r} is non-numeric or negative for study {', '.join(map(str, bad))}")
    return pd.Series(weights.to_numpy(dtype=float), index=table["study_id"].astype(str), name=column)


def count_by_overall(df: pd.DataFrame, outcome: str | None = None) -> pd.DataFrame:
    """Number of studies per tool and overall judgement (every judgement of the scale listed)."""
    overall = overall_judgements(df, outcome)
    rows = []
    for spec in TOOLS.values():
        if not spec.overall:
            continue
        sub = overall[overall["tool"] == spec.name]
        for level in spec.judgements:
            rows.append({"tool": spec.name, "overall": level, "studies": int((sub["overall"] == level).sum())})
    return pd.DataFrame(rows)


def _join(items: Iterable[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def concerns_markdown(df: pd.DataFrame, outcome: str | None = None, labels: Mapping[str, str] | None = None) -> str:
    """Markdown summary of the assessments, every number computed from *df*.

    Lists, per tool, how many studies fall in each overall category, which studies
    count as high risk (:func:`high_risk_studies`), and for each domain how many
    studies were judged other than *low* (of which how many *no information*).
    *labels* maps ``study_id`` to the names printed.
    """
    overall = overall_judgements(df, outcome)
    lines = []
    for spec in TOOLS.values():
        sub = overall[overall["tool"] == spec.name]
        if sub.empty:
            continue
        design = "randomised trials" if spec is ROB2 else "non-randomised comparisons"
        counts = [f"{int((sub['overall'] == lvl).sum())} {lvl}" for lvl in spec.judgements if (sub["overall"] == lvl).any()]
        lines.append(f"- **{spec.name}** ({len(sub)} {design}): overall {_join(counts)}.")
        rows = df[(df["tool"] == spec.name) & (df["domain"] != OVERALL)]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        per_domain = []
        for code, name in spec.domains:
            dom = rows[rows["domain"] == code]
            n_not_low = int((dom["judgement"] != "low").sum())
            n_ni = int((dom["judgement"] == spec.no_information).sum()) if spec.no_information else 0
            if n_not_low:
                ni = f" ({n_ni} no information)" if n_ni else ""
                per_domain.append(f"{code} ({name.lower()}): {n_not_low} of {len(dom)}{ni}")
        lines.append(f"  - Domains not judged low: {_join(per_domain)}.")
    high = sorted((labels or {}).get(s, s) for s in high_risk_studies(df, outcome))
    lines.append(
        f"- **High risk overall** (RoB 2 high, ROBINS-I serious or critical): {len(high)} "
        f"stud{'y' if len(high) == 1 else 'ies'}: {_join(high)}. The pooling stage's sensitivity analysis "
        "excluding studies at high risk of bias leaves these out."
    )
    return "\n".join(lines) + "\n"


def primary_analysis_weights(raw: RawData, scenario: str = "primary", measure: str = "OR", model: str = "fixed",
                             zero_cell: str = "revman", tau2_method: str = "REML") -> pd.Series:
    """Each study's weight (percent) in the primary mortality analysis of *scenario*.

    The primary analysis is the one stage 03 reports first for the same parameters
    (:func:`mscmeta.review.mortality.main_specs`; default Mantel–Haenszel fixed-effect odds
    ratio with RevMan 5's zero-cell convention: 0.5 added to every cell of a study with a
    zero cell, double-zero studies not estimable, weight 0). Computed here from the raw
    sheets rather than read from stage 03's tables, so the risk-of-bias stage does not
    depend on the pooling stage (which reads this stage's table).

    Returns
    -------
    Series
        Weights indexed by ``study_id``, named ``weight``.
    """
    options = main_specs(measure, model, zero_cell, tau2_method)[0].options
    result = pool(analysis_mortality(raw, scenario), options, source="analysis_mortality")
    weights = result.studies.set_index("study")["weight"].fillna(0.0).astype(float)
    weights.index = weights.index.astype(str)
    weights.index.name = "study_id"
    return weights.rename("weight")


def resolve_weights(weights_file: str | os.PathLike, raw: RawData, scenario: str = "primary",
                    **primary: str) -> tuple[pd.Series, str]:
    """Study weights for the summary plots, and a sentence saying where they came from.

    Parameters
    ----------
    weights_file : path-like or ""
        Explicit weights table (see :func:`load_study_weights`). If empty, the weights of
        the primary mortality analysis (:func:`primary_analysis_weights`).
    raw : RawData
        The validated raw sheets.
    scenario : str
        Inclusion scenario.
    **primary
        ``measure``, ``model``, ``zero_cell``, ``tau2_method`` of the primary analysis.

    Raises
    ------
    FileNotFoundError
        If *weights_file* is given but does not exist.
    """
    if weights_file:
        path = Path(weights_file)
        if not path.exists():
            raise FileNotFoundError(f"weights_file {path} does not exist")
        weights = load_study_weights(path)
        return weights, (
            f"The summary plots are **weighted** by the study weights in `{path.name}` "
            f"(column `{weights.name}`); studies without weight there are left out of them and named."
        )
    weights = primary_analysis_weights(raw, scenario, **primary)
    spec = main_specs(**{"measure": "OR", "model": "fixed", "zero_cell": "revman", "tau2_method": "REML", **primary})[0]
    return weights, (
        "The summary plots are **weighted** by each study's weight in the primary mortality analysis "
        f"({_primary_phrase(spec.options)}); studies not in that analysis "
        "(no mortality data, or not estimable) carry no weight and are named."
    )


def _primary_phrase(options) -> str:
    """The phrase of the default note ("Mantel–Haenszel fixed-effect OR, RevMan zero-cell convention")."""
    model = "fixed-effect" if options.model == "fixed" else "random-effects"
    zero = "RevMan zero-cell convention" if options.zero_cell == "revman" else f"zero-cell convention '{options.zero_cell}'"
    return f"Mantel–Haenszel {model} {options.measure}, {zero}"


def context_markdown(
    rob: pd.DataFrame,
    studies: pd.DataFrame,
    mortality: pd.DataFrame | None = None,
    outcome: str | None = None,
) -> str:
    """Markdown on concerns that sit beside the domain judgements, computed from the data.

    Parameters
    ----------
    rob : DataFrame
        Validated assessments.
    studies : DataFrame
        ``studies.csv`` (columns ``study_id``, ``label``, ``design``, ``blinding``,
        ``n_msc``, ``n_control``).
    mortality : DataFrame, optional
        The mortality rows entering the primary analysis (``analysis_mortality.csv``,
        with ``study_id`` and ``source_level``), to list death counts that are derived
        or taken from a later review rather than printed in the study's own report.
    outcome : str, optional
        Restrict the assessments to one outcome.
    """
    overall = overall_judgements(rob, outcome)
    assessed = studies[studies["study_id"].isin(overall["study_id"])].copy()
    labels = study_labels(studies)
    lines = []
    open_label = assessed[assessed["blinding"].isin(["open-label", "not reported"])]
    lines.append(
        f"- **Blinding.** {len(open_label)} of {len(assessed)} assessed studies were open-label or did not report "
        f"blinding ({_join(sorted(labels[s] for s in open_label['study_id']))}). All-cause death is objective, so "
        "outcome measurement (RoB 2 D4, ROBINS-I D6) is low risk even without blinding; lack of blinding matters "
        "through co-interventions and deviations (D2 / D4)."
    )
    nrs = overall[overall["tool"] == ROBINS_I.name]
    d1 = rob[(rob["tool"] == ROBINS_I.name) & (rob["domain"] == "D1") & rob["study_id"].isin(nrs["study_id"])]
    confounded = int(d1["judgement"].isin(["serious", "critical"]).sum())
    lines.append(
        f"- **Non-randomised controls.** {len(nrs)} of {len(overall)} studies compared MSC recipients with "
        f"controls who were not randomised (ROBINS-I); {confounded} of them are at serious or critical risk of "
        "bias due to confounding (D1), which alone sets their overall judgement at serious or worse."
        if len(nrs)
        else "- **Non-randomised controls.** None of the assessed studies is non-randomised."
    )
    sizes = pd.to_numeric(assessed["n_msc"], errors="coerce") + pd.to_numeric(assessed["n_control"], errors="coerce")
    sizes = sizes.dropna()
    if len(sizes):
        small = assessed.loc[sizes.index[sizes < 50], "study_id"]
        lines.append(
            f"- **Small samples.** Analysed patients per study: median {sizes.median():g} "
            f"(range {sizes.min():g}-{sizes.max():g}); {len(small)} of {len(sizes)} studies had fewer than 50 "
            "patients, where one death or one missing patient moves the estimate a lot and chance imbalance of "
            "prognostic factors is likely even with randomisation."
        )
    if mortality is None or not {"study_id", "source_level"} <= set(mortality.columns):
        lines.append(
            "- **Death counts.** The mortality rows of stage 01 (`analysis_mortality.csv` with `source_level`) "
            "were not available, so the kinds of source behind the pooled death counts are not summarised here."
        )
    else:
        derived = mortality["derived"].astype(str).str.lower().isin(["true", "1", "yes"]) if "derived" in mortality else False
        kind = pd.Series("", index=mortality.index)
        kind[mortality["source_level"] == "later review"] = "later review"
        kind[(mortality["source_level"] == "derived") | derived] = "derived"
        items = [f"{labels.get(s, s)} ({k})" for s, k in zip(mortality["study_id"], kind) if k]
        lines.append(
            f"- **Death counts not printed as counts in the study's own report.** {len(items)} of "
            f"{len(mortality)} studies in the mortality analysis have counts derived from survivors or percentages, "
            f"or taken from a later review: {_join(sorted(items))}. These are not risk-of-bias judgements, but they "
            "add uncertainty about the numbers pooled."
        )
    return "\n".join(lines) + "\n"


def assessments(raw: RawData) -> pd.DataFrame:
    """The validated assessments of ``risk_of_bias.csv`` (read by :func:`load_raw` with
    ``optional_sheets=["risk_of_bias.csv"]``).

    Raises
    ------
    DataValidationError
        If the sheet is not in the data folder.
    """
    rob = raw.risk_of_bias
    if rob is None:
        raise DataValidationError([Failure(ROB_FILE, None, None, None, "required sheet is missing")], raw.data_dir)
    return rob


def scenario_assessments(rob: pd.DataFrame, raw: RawData, scenario: str) -> pd.DataFrame:
    """The assessments of the studies in the review set of *scenario*."""
    return rob[rob["study_id"].isin(scenario_studies(raw, scenario)["study_id"])]


def scenario_markdown(shown: pd.DataFrame, rob: pd.DataFrame, scenario: str) -> str:
    """How many assessed studies the scenario's review set holds."""
    return (f"{shown['study_id'].nunique()} of {rob['study_id'].nunique()} assessed studies are in the review set of "
            f"scenario `{scenario}`.")


def missing_tools_markdown(shown: pd.DataFrame, scenario: str) -> str:
    """A line for every tool without assessments in the scenario (no figures for it)."""
    return "\n\n".join(f"No {tool} assessments in scenario `{scenario}`: no {tool} figures."
                        for tool in FIGURE_STEMS if not (shown["tool"] == tool).any())


def high_risk_markdown(shown: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """The studies of the scenario that the pooling stage leaves out as high risk of bias."""
    high = sorted(labels.get(s, s) for s in high_risk_studies(shown, outcome="mortality"))
    return f"Studies at high risk of bias (left out in stage 03's sensitivity analysis): {_join(high)}."


#: Output stem of each tool's figures (``rob_traffic_light_<stem>``, ``rob_summary_<stem>``).
FIGURE_STEMS: dict[str, str] = {ROB2.name: "rob2", ROBINS_I.name: "robinsi"}


def rob_figures(assessments: pd.DataFrame, weights: pd.Series, labels: Mapping[str, str]) -> dict[str, Figure]:
    """The traffic-light and weighted summary plots of every tool with assessments,
    keyed by output stem (``rob_traffic_light_rob2``...)."""
    figures: dict[str, Figure] = {}
    for tool, stem in FIGURE_STEMS.items():
        if (assessments["tool"] == tool).any():
            figures[f"rob_traffic_light_{stem}"] = traffic_light(assessments, tool, labels=labels)
            figures[f"rob_summary_{stem}"] = summary_bar(assessments, tool, weights=weights, labels=labels)
    return figures


def figure_caption(stem: str) -> str:
    """What one risk-of-bias figure shows and how to read it."""
    tool = "RoB 2 (randomised trials)" if stem.endswith("rob2") else "ROBINS-I (non-randomised comparisons)"
    if stem.startswith("rob_traffic_light"):
        return (f"Traffic-light plot, {tool}: one row per study, one column per domain and the overall judgement "
                "(+ low, − some concerns / moderate, X high / serious, ! critical, ? no information).")
    return (f"Summary plot, {tool}: for each domain, the share of the studies in each judgement, weighted by the "
            "studies' weights in the primary mortality analysis (studies without weight are named in the text).")
