"""Secondary outcomes and adverse events (notebook 05-secondary-outcomes).

Entry points
------------
:func:`load_secondary`
    Read and validate ``adverse_events.csv`` and ``secondary_outcomes.csv`` against
    :mod:`mscmeta.review.schema_secondary` (pandera schemas, row rules, group rules, study ids
    known to ``studies.csv``). *Every* problem of both files is raised at once in one
    :class:`SecondaryDataError` naming file, line, study, outcome and column.
:func:`continuous_input`, :func:`binary_input`
    Reshape the long sheets to one row per study (arm-level mean/SD/n, or events/n).
    Medians with IQR and/or range are converted to means and SDs with
    :func:`mscmeta.engine.continuous.fivenum_to_mean_sd` (metafor ``conv.fivenum``: Luo et al.
    2018 for the mean, Wan et al. 2014 or Shi et al. 2020 for the SD); the method is
    recorded per arm.
:func:`analyse_secondary`
    For every outcome: pooled analyses when at least two studies report comparable
    arm-level data, otherwise "descriptive only" with the reason. Continuous outcomes:
    mean difference when all studies use the same unit, else the standardised mean
    difference (Hedges' g); random effects by default (designs differ). Binary outcomes
    (adverse events, ventilation, imaging): Mantel-Haenszel odds ratio and risk
    difference with RevMan's 0.5 zero-cell correction and without correction ("exact",
    metafor ``rma.mh`` default), plus an inverse-variance random-effects odds ratio.
:func:`claims_table`
    Each qualitative claim of Yao et al. (2022) about secondary outcomes, the evidence
    found and a verdict computed by the rule stated in :data:`VERDICT_RULE`.

Nothing here writes files; the notebook writes the tables with :mod:`mscmeta.bundle.io`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mscmeta.review import schema_secondary as SS
from mscmeta.review.data import DataValidationError, Failure, _line, _read_csv, _validate_sheet

__all__ = [
    "SecondaryDataError",
    "SecondaryData",
    "validate_secondary",
    "load_secondary",
    "restrict_to_studies",
    "continuous_input",
    "binary_input",
    "Analysis",
    "OutcomeAnalysis",
    "analyse_outcome",
    "SecondaryReport",
    "analyse_secondary",
    "Claim",
    "CLAIMS",
    "VERDICT_RULE",
    "claims_table",
    "summary_markdown",
    "coverage_markdown",
    "provenance_table",
    "analysis_inputs",
    "analysis_n",
    "short_reason",
]

AE_FILE = SS.AE_SHEET.file
SECONDARY_FILE = SS.SECONDARY_SHEET.file


# --------------------------------------------------------------------------- loading and validation


class SecondaryDataError(DataValidationError):
    """Every problem found in ``adverse_events.csv`` and ``secondary_outcomes.csv``.

    A :class:`ValueError` (via :class:`mscmeta.review.data.DataError`). Each failure names the
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
        for _, group in frame.groupby(list(rule.keys), dropna=False, sort=False):
            for index, message in rule.failures(group):
                study = frame.at[index, "study_id"]
                out.append(Failure(file, _line(index), None if pd.isna(study) else str(study), rule.column, message))
    return out


def _study_failures(file: str, frame: pd.DataFrame, known: set[str]) -> list[Failure]:
    if "study_id" not in frame.columns:
        return []
    bad = frame[frame["study_id"].notna() & ~frame["study_id"].isin(known)]
    return [Failure(file, _line(i), str(s), "study_id", f"{s!r} is not a study_id of studies.csv")
            for i, s in bad["study_id"].items()]


def validate_secondary(
    texts: Mapping[str, pd.DataFrame], studies: Iterable[str] | None = None, data_dir: str | os.PathLike = ""
) -> SecondaryData:
    """Validate the two sheets given as text frames (every cell a string or missing).

    Parameters
    ----------
    texts : mapping
        ``{"adverse_events.csv": frame, "secondary_outcomes.csv": frame}`` as read with
        every cell as text (see :func:`mscmeta.review.data._read_csv`).
    studies : iterable of str, optional
        Known study ids (``studies.csv``); when given, unknown ids are failures.
    data_dir : path-like
        Folder named in the error message.

    Raises
    ------
    SecondaryDataError
        With every problem of both sheets.
    """
    failures: list[Failure] = []
    typed: dict[str, pd.DataFrame] = {}
    for name, spec in SS.SHEETS.items():
        text = texts[name]
        frame, sheet_failures = _validate_sheet(spec, text)
        failures += [_with_outcome(f, frame) for f in sheet_failures]
        failures += [_with_outcome(f, frame) for f in _group_failures(name, frame)]
        if studies is not None:
            failures += [_with_outcome(f, frame) for f in _study_failures(name, frame, set(studies))]
        typed[name] = frame
    if failures:
        raise SecondaryDataError(failures, data_dir)
    return SecondaryData(adverse_events=typed[AE_FILE], outcomes=typed[SECONDARY_FILE])


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
        text, read_failures = _read_csv(path)
        failures += read_failures
        if text is not None:
            texts[name] = text
    if failures:
        raise SecondaryDataError(failures, data_dir)
    if studies is None and (data_dir / "studies.csv").is_file():
        known, read_failures = _read_csv(data_dir / "studies.csv")
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


# --------------------------------------------------------------------------- reshaping long -> wide

_STATS = ("mean", "sd", "median", "q1", "q3", "min", "max", "n", "count", "effect", "ci_low", "ci_high", "p_value")


def _sheet_of(data: SecondaryData, outcome: str) -> pd.DataFrame:
    if outcome in SS.AE_OUTCOMES:
        return data.adverse_events
    if outcome in SS.SECONDARY_OUTCOMES:
        return data.outcomes
    raise KeyError(f"unknown outcome {outcome!r}; known outcomes: {', '.join(SS.OUTCOMES)}")


def arm_values(df: pd.DataFrame, outcome: str, use: str = "primary") -> pd.DataFrame:
    """One row per study (and time point) with the statistics of each arm side by side.

    Columns: ``study_id``, ``timepoint``, ``unit``, then ``<statistic>_<arm>`` for every
    statistic reported (arm ``msc``, ``control``, ``contrast``), ``narrative`` (the
    direction-only quotes) and ``sources`` (the distinct source URLs of the rows).
    """
    rows = df[(df["outcome"] == outcome) & (df["use"] == use)]
    if "ae_type" in rows.columns:
        rows = rows[rows["ae_type"].isna()]
    records = []
    for (study, timepoint), group in rows.groupby(["study_id", "timepoint"], sort=True):
        rec: dict[str, object] = {"study_id": study, "timepoint": timepoint}
        units = group.loc[~group["statistic"].isin(["n", "narrative", "p_value"]), "unit"].dropna()
        rec["unit"] = units.iloc[0] if len(units) else ""
        for r in group.itertuples(index=False):
            if r.statistic != "narrative":
                rec[f"{r.statistic}_{r.arm}"] = float(r.value)
        quotes = group.loc[group["statistic"] == "narrative"]
        rec["narrative"] = " | ".join(f"[{a}] {q}" for a, q in zip(quotes["arm"], quotes["quote"]))
        rec["sources"] = "; ".join(dict.fromkeys(group["source"]))
        rec["notes"] = "; ".join(dict.fromkeys(str(n) for n in group["note"].dropna() if str(n).strip()))
        rec["derivations"] = "; ".join(dict.fromkeys(str(n) for n in group["derivation"].dropna() if str(n).strip()))
        rec["source_levels"] = "; ".join(dict.fromkeys(group["source_level"]))
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _get(rec: Mapping[str, object], key: str) -> float:
    value = rec.get(key, np.nan)
    return float(value) if value is not None and not pd.isna(value) else np.nan


def _arm_mean_sd(rec: Mapping[str, object], arm: str, study: str) -> tuple[float, float, float, str, str]:
    """Mean, SD, n of one arm, the method used, and why not (empty if usable)."""
    from mscmeta.engine.continuous import fivenum_to_mean_sd

    n = _get(rec, f"n_{arm}")
    mean, sd = _get(rec, f"mean_{arm}"), _get(rec, f"sd_{arm}")
    if not np.isfinite(n):
        return np.nan, np.nan, n, "", f"{arm}: n not reported"
    if np.isfinite(mean) and np.isfinite(sd):
        return mean, sd, n, "reported mean (SD)", ""
    quantiles = {k: _get(rec, f"{k}_{arm}") for k in ("median", "q1", "q3", "min", "max")}
    if not np.isfinite(quantiles["median"]):
        return np.nan, np.nan, n, "", f"{arm}: neither mean/SD nor a median reported"
    iqr = np.isfinite(quantiles["q1"]) and np.isfinite(quantiles["q3"])
    rng = np.isfinite(quantiles["min"]) and np.isfinite(quantiles["max"])
    if not (iqr or rng):
        return np.nan, np.nan, n, "", f"{arm}: median without a complete IQR or range (cannot convert)"
    conv = fivenum_to_mean_sd(
        [n], [quantiles["median"]], [quantiles["q1"]], [quantiles["q3"]], [quantiles["min"]], [quantiles["max"]],
        study=[study],
    ).iloc[0]
    if not conv["converted"]:
        return np.nan, np.nan, n, str(conv["method"]), f"{arm}: not converted ({conv['note']})"
    return float(conv["mean"]), float(conv["sd"]), n, str(conv["method"]), ""


def continuous_input(data: SecondaryData, outcome: str) -> pd.DataFrame:
    """Per-study arm-level means/SDs of a continuous outcome, converting medians where needed.

    Returns
    -------
    DataFrame
        One row per study with primary rows for *outcome*: ``study_id``, ``timepoint``,
        ``unit``, ``mean_t, sd_t, n_t, mean_c, sd_c, n_c`` (t = MSC, c = control),
        ``method_t``, ``method_c`` ("reported mean (SD)" or the conversion method),
        ``comparable`` (both arms usable) and ``reason`` (why not).
    """
    wide = arm_values(_sheet_of(data, outcome), outcome)
    out = []
    for rec in wide.to_dict("records"):
        mt, st, nt, how_t, why_t = _arm_mean_sd(rec, "msc", rec["study_id"])
        mc, sc, nc, how_c, why_c = _arm_mean_sd(rec, "control", rec["study_id"])
        reasons = [w for w in (why_t, why_c) if w]
        has_arm_values = any(np.isfinite(_get(rec, f"{s}_{arm}")) for s in _STATS for arm in ("msc", "control"))
        if not has_arm_values:
            has_contrast = any(np.isfinite(_get(rec, f"{s}_contrast")) for s in _STATS)
            reasons = ["between-arm statistic only" if has_contrast else "direction only"]
        out.append({
            "study_id": rec["study_id"], "timepoint": rec["timepoint"], "unit": rec["unit"],
            "mean_t": mt, "sd_t": st, "n_t": nt, "mean_c": mc, "sd_c": sc, "n_c": nc,
            "method_t": how_t, "method_c": how_c, "comparable": not reasons, "reason": "; ".join(reasons),
            "sources": rec["sources"],
        })
    columns = ["study_id", "timepoint", "unit", "mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c",
               "method_t", "method_c", "comparable", "reason", "sources"]
    return pd.DataFrame(out, columns=columns)


def binary_input(data: SecondaryData, outcome: str) -> pd.DataFrame:
    """Per-study events/n in each arm of a binary outcome.

    Returns
    -------
    DataFrame
        ``study_id``, ``timepoint``, ``events_msc``, ``n_msc``, ``events_control``,
        ``n_control`` (float, NaN if not reported), ``comparable`` (all four present)
        and ``reason``.
    """
    wide = arm_values(_sheet_of(data, outcome), outcome)
    out = []
    for rec in wide.to_dict("records"):
        row = {"study_id": rec["study_id"], "timepoint": rec["timepoint"],
               "events_msc": _get(rec, "count_msc"), "n_msc": _get(rec, "n_msc"),
               "events_control": _get(rec, "count_control"), "n_control": _get(rec, "n_control")}
        has_t = np.isfinite(row["events_msc"]) and np.isfinite(row["n_msc"])
        has_c = np.isfinite(row["events_control"]) and np.isfinite(row["n_control"])
        if has_t and has_c:
            reason = ""
        elif has_t:
            reason = "MSC arm only" if not np.isfinite(row["events_control"]) else "control-arm denominator not reported"
        elif has_c:
            reason = "control arm only"
        elif rec.get("narrative"):
            reason = "direction only"
        else:
            reason = "between-arm statistic only"
        row.update(comparable=has_t and has_c, reason=reason, sources=rec["sources"])
        out.append(row)
    columns = ["study_id", "timepoint", "events_msc", "n_msc", "events_control", "n_control", "comparable", "reason",
               "sources"]
    return pd.DataFrame(out, columns=columns)


# --------------------------------------------------------------------------- analyses

BINARY_COLUMNS = {"study": "study_id", "events_t": "events_msc", "n_t": "n_msc",
                  "events_c": "events_control", "n_c": "n_control"}


@dataclass(frozen=True)
class Analysis:
    """One pooled analysis of one outcome."""

    name: str
    measure: str
    model: str
    result: object  # mscmeta.engine.results.MetaResult
    primary: bool = False
    note: str = ""


@dataclass(frozen=True)
class OutcomeAnalysis:
    """All there is to say about one outcome.

    Attributes
    ----------
    outcome : str
    info : OutcomeInfo
    status : {"pooled", "descriptive only"}
    reason : str
        Why descriptive only (empty when pooled).
    inputs : DataFrame
        Per-study input (:func:`continuous_input` or :func:`binary_input`); empty for
        event counts, contrasts and narratives.
    analyses : tuple of Analysis
        The pooled analyses, primary first.
    conversion : str
        Conversion methods used (continuous outcomes).
    studies_with_data : tuple of str
        Every study with a primary row for the outcome (numbers or direction only).
    """

    outcome: str
    info: SS.OutcomeInfo
    status: str
    reason: str
    inputs: pd.DataFrame
    analyses: tuple[Analysis, ...] = ()
    conversion: str = ""
    studies_with_data: tuple[str, ...] = ()

    @property
    def primary(self) -> Analysis | None:
        return next((a for a in self.analyses if a.primary), None)

    @property
    def pooled_inputs(self) -> pd.DataFrame:
        if self.inputs.empty:
            return self.inputs
        return self.inputs[self.inputs["comparable"]].reset_index(drop=True)


def _describe_others(inputs: pd.DataFrame, others: Sequence[str]) -> str:
    parts = []
    if not inputs.empty:
        for reason, group in inputs[~inputs["comparable"]].groupby("reason", sort=True):
            parts.append(f"{', '.join(group['study_id'])}: {reason}")
    if others:
        parts.append(f"{', '.join(others)}: direction only or between-arm statistic only")
    return "; ".join(parts)


def _studies_with_rows(df: pd.DataFrame, outcome: str) -> tuple[str, ...]:
    rows = df[(df["outcome"] == outcome) & (df["use"] == "primary")]
    return tuple(sorted(rows["study_id"].unique()))


def _conversion_text(inputs: pd.DataFrame) -> str:
    methods = pd.concat([inputs["method_t"], inputs["method_c"]])
    counts = methods[methods != ""].value_counts()
    if counts.empty:
        return ""
    return "; ".join(f"{m} ({c} arm{'s' if c != 1 else ''})" for m, c in sorted(counts.items()))


def _continuous_analyses(inputs: pd.DataFrame, model: str, tau2_method: str, source: str) -> tuple[list[Analysis], str]:
    from mscmeta.engine.continuous import meta_continuous

    units = sorted(set(inputs["unit"]))
    measure = "MD" if len(units) == 1 else "SMD"
    note = (f"all studies in {units[0]}" if measure == "MD"
            else f"units differ ({', '.join(units)}): standardised mean difference (Hedges' g)")
    frame = inputs.rename(columns={"study_id": "study"})
    label = f"{measure}, {model}" + (f" ({tau2_method})" if model == "random" else "")
    analyses = [Analysis(label, measure, model, meta_continuous(frame, measure=measure, model=model,
                                                                tau2_method=tau2_method, source=source),
                         primary=True, note=note)]
    if measure == "MD":
        analyses.append(Analysis(f"SMD, {model}" + (f" ({tau2_method})" if model == "random" else ""), "SMD", model,
                                 meta_continuous(frame, measure="SMD", model=model, tau2_method=tau2_method,
                                                 source=source),
                                 note="Hedges' g, for the overview figure"))
    return analyses, note


def _binary_analyses(inputs: pd.DataFrame, model: str, tau2_method: str, source: str) -> list[Analysis]:
    from mscmeta.engine.binary import meta_binary
    from mscmeta.engine.validation import NotEstimableError

    frame = inputs[list(BINARY_COLUMNS.values())].astype({c: "int64" for c in list(BINARY_COLUMNS.values())[1:]})
    specs = [
        ("MH OR, RevMan", "OR", "MH", "fixed", "revman", True,
         "RevMan 5: 0.5 added to every cell of zero-cell studies, also inside the MH estimator"),
        ("MH OR, exact", "OR", "MH", "fixed", "none", False,
         "no continuity correction inside the MH estimator (metafor rma.mh)"),
        ("MH RD, RevMan", "RD", "MH", "fixed", "revman", False, "RevMan 5; Greenland-Robins variance"),
        ("MH RD, exact", "RD", "MH", "fixed", "none", False,
         "no continuity correction; Sato-Greenland-Robins variance (metafor rma.mh)"),
    ]
    if model == "random":
        specs.append((f"IV OR, random ({tau2_method})", "OR", "IV", "random", "revman", False,
                      "inverse variance, random effects, RevMan zero-cell correction (sensitivity analysis)"))
    out = []
    for name, measure, method, mod, zero, primary, note in specs:
        try:
            result = meta_binary(frame, measure=measure, method=method, model=mod, tau2_method=tau2_method,
                                 zero_cell=zero, columns=BINARY_COLUMNS, source=source)
        except NotEstimableError:
            out.append(Analysis(name, measure, mod, None, primary, note=f"{note}; not estimable (no study with events)"))
            continue
        out.append(Analysis(name, measure, mod, result, primary, note))
    return out


def analyse_outcome(
    data: SecondaryData, outcome: str, model: str = "random", tau2_method: str = "REML"
) -> OutcomeAnalysis:
    """Pool one outcome if at least two studies report comparable arm-level data.

    The rule: an outcome is pooled when >= 2 studies have usable data in *both* arms
    (events and n; or mean, SD and n, after converting medians). Otherwise it is shown
    "descriptive only" and :attr:`OutcomeAnalysis.reason` says why (how many studies have
    comparable data, and what the others report).
    """
    info = SS.OUTCOMES[outcome]
    sheet = _sheet_of(data, outcome)
    source = AE_FILE if outcome in SS.AE_OUTCOMES else SECONDARY_FILE
    with_data = _studies_with_rows(sheet, outcome)
    if info.kind in ("events", "contrast", "narrative"):
        what = {"events": "numbers of events without a denominator", "contrast": "between-arm estimates only",
                "narrative": "direction-only statements"}[info.kind]
        reason = (f"descriptive only: {len(with_data)} stud{'y reports' if len(with_data) == 1 else 'ies report'} {what}"
                  if with_data else "no data located")
        return OutcomeAnalysis(outcome, info, "descriptive only", reason, pd.DataFrame(), (), "", with_data)
    inputs = continuous_input(data, outcome) if info.kind == "continuous" else binary_input(data, outcome)
    listed = set(inputs["study_id"]) if not inputs.empty else set()
    others = [s for s in with_data if s not in listed]
    k = int(inputs["comparable"].sum()) if not inputs.empty else 0
    conversion = _conversion_text(inputs[inputs["comparable"]]) if info.kind == "continuous" and k else ""
    if k < 2:
        comparable = ", ".join(inputs.loc[inputs["comparable"], "study_id"]) if k else ""
        head = (f"descriptive only: {k} stud{'y' if k == 1 else 'ies'} with comparable data in both arms"
                + (f" ({comparable})" if comparable else "") + "; pooling needs at least 2")
        rest = _describe_others(inputs, others)
        reason = head + (f"; {rest}" if rest else "") if with_data else "no data located"
        return OutcomeAnalysis(outcome, info, "descriptive only", reason, inputs, (), conversion, with_data)
    pooled = inputs[inputs["comparable"]].reset_index(drop=True)
    if info.kind == "continuous":
        analyses, _ = _continuous_analyses(pooled, model, tau2_method, source)
    else:
        analyses = _binary_analyses(pooled, model, tau2_method, source)
    rest = _describe_others(inputs, others)
    return OutcomeAnalysis(outcome, info, "pooled", f"not pooled: {rest}" if rest else "", inputs, tuple(analyses),
                           conversion, with_data)


# --------------------------------------------------------------------------- report tables

POOLED_COLUMNS = ["domain", "outcome", "outcome_label", "analysis", "measure", "model", "k", "n_msc", "n_control",
                  "estimate", "ci_low", "ci_high", "p_value", "I2", "tau2", "conversion_method", "studies", "note"]


def analysis_inputs(oa: OutcomeAnalysis, analysis: Analysis) -> pd.DataFrame:
    """The per-study inputs that entered *analysis* (double-zero studies of an OR left out)."""
    pooled = oa.pooled_inputs
    if analysis.result is None:
        return pooled.iloc[0:0]
    estimable = analysis.result.studies["estimable"].to_numpy(dtype=bool)
    return pooled[estimable].reset_index(drop=True) if len(estimable) == len(pooled) else pooled


def analysis_n(oa: OutcomeAnalysis, analysis: Analysis) -> tuple[float, float]:
    """Patients in the MSC and control arms of the studies that entered *analysis*."""
    used = analysis_inputs(oa, analysis)
    cols = ("n_t", "n_c") if oa.info.kind == "continuous" else ("n_msc", "n_control")
    return float(used[cols[0]].sum()), float(used[cols[1]].sum())


def _pooled_rows(oa: OutcomeAnalysis) -> list[dict]:
    base = {"domain": oa.info.domain, "outcome": oa.outcome, "outcome_label": oa.info.label}
    if oa.status != "pooled":
        inputs = oa.inputs
        k = int(inputs["comparable"].sum()) if not inputs.empty else 0
        return [{**base, "analysis": "descriptive only", "measure": "", "model": "", "k": k,
                 "n_msc": np.nan, "n_control": np.nan, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                 "p_value": np.nan, "I2": np.nan, "tau2": np.nan, "conversion_method": oa.conversion,
                 "studies": ", ".join(oa.studies_with_data), "note": oa.reason}]
    pooled = oa.pooled_inputs
    n_col = ("n_t", "n_c") if oa.info.kind == "continuous" else ("n_msc", "n_control")
    rows = []
    for a in oa.analyses:
        res = a.result
        note = "; ".join(x for x in (("primary analysis" if a.primary else ""), a.note, oa.reason) if x)
        if res is None:
            rows.append({**base, "analysis": a.name, "measure": a.measure, "model": a.model, "k": 0,
                         "n_msc": pooled[n_col[0]].sum(), "n_control": pooled[n_col[1]].sum(),
                         "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "I2": np.nan,
                         "tau2": np.nan, "conversion_method": oa.conversion,
                         "studies": ", ".join(pooled["study_id"]), "note": note})
            continue
        d = res.to_dict()
        estimable = res.studies["estimable"].to_numpy(dtype=bool)
        used = pooled[estimable] if len(estimable) == len(pooled) else pooled
        dropped = [s for s, e in zip(pooled["study_id"], estimable) if not e]
        if dropped:
            note += f"; not estimable (no events in either arm): {', '.join(dropped)}"
        rows.append({**base, "analysis": a.name, "measure": a.measure, "model": a.model, "k": int(res.k),
                     "n_msc": float(used[n_col[0]].sum()), "n_control": float(used[n_col[1]].sum()),
                     "estimate": d["estimate"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                     "p_value": d["p_value"], "I2": d["I2"], "tau2": d["tau2"],
                     "conversion_method": oa.conversion, "studies": ", ".join(used["study_id"]), "note": note})
    return rows


def pooled_table(analyses: Iterable[OutcomeAnalysis]) -> pd.DataFrame:
    """One row per outcome x analysis (descriptive-only outcomes: one row with the reason)."""
    rows = [r for oa in analyses for r in _pooled_rows(oa)]
    return _int_counts(pd.DataFrame(rows, columns=POOLED_COLUMNS))


def _num_text(value: float) -> str:
    if not np.isfinite(value):
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _arm_text(rec: Mapping[str, object], arm: str, unit_word: str) -> str:
    g = {k: _get(rec, f"{k}_{arm}") for k in _STATS}
    if np.isfinite(g["count"]) and np.isfinite(g["n"]):
        return f"{_num_text(g['count'])}/{_num_text(g['n'])}"
    if np.isfinite(g["count"]):
        return f"{_num_text(g['count'])} {unit_word}"
    parts = []
    if np.isfinite(g["mean"]):
        parts.append(f"mean {_num_text(g['mean'])}" + (f" (SD {_num_text(g['sd'])})" if np.isfinite(g["sd"]) else ""))
    if np.isfinite(g["median"]):
        spread = []
        if np.isfinite(g["q1"]) or np.isfinite(g["q3"]):
            spread.append(f"IQR {_num_text(g['q1']) or 'NR'} to {_num_text(g['q3']) or 'NR'}")
        if np.isfinite(g["min"]) or np.isfinite(g["max"]):
            spread.append(f"range {_num_text(g['min']) or 'NR'} to {_num_text(g['max']) or 'NR'}")
        parts.append(f"median {_num_text(g['median'])}" + (f" ({'; '.join(spread)})" if spread else ""))
    if np.isfinite(g["n"]):
        parts.append(f"n = {_num_text(g['n'])}")
    return ", ".join(parts)


def _contrast_text(rec: Mapping[str, object]) -> str:
    g = {k: _get(rec, f"{k}_contrast") for k in ("effect", "ci_low", "ci_high", "p_value")}
    parts = []
    if np.isfinite(g["effect"]):
        parts.append(f"{_num_text(g['effect'])}" + (f" ({_num_text(g['ci_low'])} to {_num_text(g['ci_high'])})"
                                                    if np.isfinite(g["ci_low"]) else ""))
    if np.isfinite(g["p_value"]):
        parts.append(f"P = {_num_text(g['p_value'])}")
    return ", ".join(parts)


def per_study_table(data: SecondaryData, analyses: Mapping[str, OutcomeAnalysis],
                    labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every study x outcome x time point as reported (primary and alternative readings).

    Columns: ``domain, outcome, outcome_label, study_id, study, timepoint, use, unit,
    msc, control, contrast, direction_only, in_pooled_analysis, mean_sd_msc,
    mean_sd_control, conversion_method, source_levels, sources, derivations, notes``.
    """
    labels = labels or {}
    rows = []
    for outcome, oa in analyses.items():
        sheet = _sheet_of(data, outcome)
        inputs = oa.pooled_inputs if oa.status == "pooled" else pd.DataFrame()
        pooled_ids = set(inputs["study_id"]) if not inputs.empty else set()
        conv = oa.inputs.set_index("study_id") if (oa.info.kind == "continuous" and not oa.inputs.empty) else None
        for use in ("primary", "alternative"):
            wide = arm_values(sheet, outcome, use)
            for rec in wide.to_dict("records"):
                unit_word = rec.get("unit") or ("events" if oa.info.kind == "events" else "patients")
                sid = rec["study_id"]
                row = {
                    "domain": oa.info.domain, "outcome": outcome, "outcome_label": oa.info.label,
                    "study_id": sid, "study": labels.get(sid, _default_label(sid)), "timepoint": rec["timepoint"],
                    "use": use, "unit": rec.get("unit", ""),
                    "msc": _arm_text(rec, "msc", unit_word), "control": _arm_text(rec, "control", unit_word),
                    "contrast": _contrast_text(rec), "direction_only": rec.get("narrative", ""),
                    "in_pooled_analysis": use == "primary" and sid in pooled_ids,
                    "mean_sd_msc": "", "mean_sd_control": "", "conversion_method": "",
                    "source_levels": rec["source_levels"], "sources": rec["sources"],
                    "derivations": rec["derivations"], "notes": rec["notes"],
                }
                if conv is not None and use == "primary" and sid in conv.index:
                    c = conv.loc[sid]
                    if np.isfinite(c["mean_t"]):
                        row["mean_sd_msc"] = f"{c['mean_t']:.2f} ({c['sd_t']:.2f})"
                    if np.isfinite(c["mean_c"]):
                        row["mean_sd_control"] = f"{c['mean_c']:.2f} ({c['sd_c']:.2f})"
                    methods = [m for m in (c["method_t"], c["method_c"]) if m]
                    row["conversion_method"] = "; ".join(dict.fromkeys(methods)) or c["reason"]
                rows.append(row)
    columns = ["domain", "outcome", "outcome_label", "study_id", "study", "timepoint", "use", "unit", "msc", "control",
               "contrast", "direction_only", "in_pooled_analysis", "mean_sd_msc", "mean_sd_control",
               "conversion_method", "source_levels", "sources", "derivations", "notes"]
    return pd.DataFrame(rows, columns=columns)


def ae_kinds_table(data: SecondaryData, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The kinds of adverse events reported, per study and arm (descriptive).

    Columns: ``study_id, study, ae_type, timepoint, unit, msc, control, source_level,
    source, location``; ``msc``/``control`` are counts (NaN where the arm is not reported).
    """
    labels = labels or {}
    ae = data.adverse_events
    rows = ae[(ae["outcome"] == "ae_kind") & (ae["use"] == "primary")]
    out = []
    for (study, kind, timepoint), g in rows.groupby(["study_id", "ae_type", "timepoint"], sort=True):
        counts = dict(zip(g["arm"], g["value"]))
        out.append({
            "study_id": study, "study": labels.get(study, _default_label(study)), "ae_type": kind,
            "timepoint": timepoint, "unit": g["unit"].iloc[0],
            "msc": float(counts["msc"]) if "msc" in counts else np.nan,
            "control": float(counts["control"]) if "control" in counts else np.nan,
            "source_level": "; ".join(dict.fromkeys(g["source_level"])), "source": "; ".join(dict.fromkeys(g["source"])),
            "location": "; ".join(dict.fromkeys(g["location"])),
        })
    columns = ["study_id", "study", "ae_type", "timepoint", "unit", "msc", "control", "source_level", "source", "location"]
    return pd.DataFrame(out, columns=columns)


def _default_label(study_id: str) -> str:
    head = study_id.rstrip("abcdefghijklmnopqrstuvwxyz")
    name, year = head[:-4], head[-4:]
    return f"{name.capitalize()} {year}{study_id[len(head):]}"


# --------------------------------------------------------------------------- claims

#: Where the quoted claims come from (Yao 2022's own text was not located; see the dossier §2.2).
YAO_SUMMARY_URL = (
    "https://www.pulmonologyadvisor.com/home/topics/critical-care/"
    "mesenchymal-stromal-cell-treatment-in-critically-ill-patients-with-covid-19/"
)


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of Yao et al. (2022) and the outcomes that test it.

    ``kind`` is ``"safety"`` (no relevant excess harm with MSC) or ``"benefit"`` (the
    outcomes move in the direction that favours MSC).
    """

    claim_id: str
    quote: str
    source: str
    kind: str
    outcomes: tuple[str, ...]
    note: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("safe", "Treatment with mesenchymal stromal cells (MSCs) is safe", YAO_SUMMARY_URL, "safety",
          ("any_ae", "serious_ae", "infusion_reaction"),
          "Conclusion as quoted by a news summary of the paper (evidence dossier §2.2)"),
    Claim("fewer_aes", "safe ... fewer AEs", "issue 7 of this project (paraphrase of Yao 2022)", "benefit",
          ("any_ae", "serious_ae"),
          "Wording as quoted in the project's issue; not located in the sources reviewed"),
    Claim("pulmonary_function", "MSC treatment may also improve pulmonary function", YAO_SUMMARY_URL, "benefit",
          ("pao2_fio2", "murray_score", "ct_score", "ct_improvement", "ct_normal", "ct_lesion_volume_change",
           "six_minute_walk", "pulmonary_function"),
          "Includes imaging, which the paper analysed with pulmonary function (dossier §2.2)"),
    Claim("inflammatory_cytokines", "decrease inflammatory cytokines", YAO_SUMMARY_URL, "benefit",
          ("il6", "tnf_alpha", "inflammatory_cytokines", "crp", "lymphocytes"),
          "CRP and lymphocytes are not cytokines; listed as related inflammatory markers"),
    Claim("resource_use", "and lower resource utilization", YAO_SUMMARY_URL, "benefit",
          ("length_of_stay_hospital", "length_of_stay_icu", "mechanical_ventilation", "ecmo"),
          "Resource use 'measured according to length of hospitalization or intensive care unit stay' (dossier §2.2)"),
)

VERDICT_RULE = (
    "Per outcome, from its primary pooled analysis (random-effects MD/SMD for continuous outcomes; MH OR with "
    "RevMan's zero-cell correction for binary outcomes; MH RD for the safety claim): a benefit claim is "
    "'supported' when the 95% CI excludes no effect in the direction favouring MSC, 'not supported' when the CI "
    "includes no effect or favours control; the safety claim is 'supported' when the upper 95% limit of the "
    "risk difference (MSC minus control) is below the harm margin, i.e. the data exclude an excess risk of that "
    "size, else 'not supported'. Outcomes without a pooled estimate (fewer than 2 studies with comparable data) "
    "are 'insufficient data'. A claim is 'supported' if at least one of its outcomes is supported and none "
    "points the other way with a CI excluding no effect; 'insufficient data' if none of its outcomes could be "
    "pooled; otherwise 'not supported'."
)


def _k_comparable(oa: OutcomeAnalysis) -> int:
    return int(oa.inputs["comparable"].sum()) if not oa.inputs.empty else 0


def short_reason(oa: OutcomeAnalysis) -> str:
    """One line on why an outcome is descriptive only (for figures)."""
    n = len(oa.studies_with_data)
    if not n:
        return "no data located"
    studies = f"{n} stud{'y' if n == 1 else 'ies'}"
    if oa.info.kind == "events":
        return f"{studies}, event counts only"
    if oa.info.kind == "contrast":
        return f"{studies}, between-arm estimate only"
    if oa.info.kind == "narrative":
        return f"{studies}, direction only"
    return f"{studies}, {_k_comparable(oa)} with both arms comparable"


def _primary_for_claim(oa: OutcomeAnalysis, kind: str) -> Analysis | None:
    if oa.status != "pooled":
        return None
    if kind == "safety" and oa.info.kind == "binary":
        return next((a for a in oa.analyses if a.measure == "RD" and "RevMan" in a.name and a.result is not None), None)
    prim = oa.primary
    return prim if prim is not None and prim.result is not None else None


def _format_estimate(a: Analysis) -> str:
    d = a.result.to_dict()
    return f"{a.measure} {d['estimate']:.2f} ({d['ci_low']:.2f} to {d['ci_high']:.2f})"


def _outcome_verdict(oa: OutcomeAnalysis, kind: str, harm_margin: float) -> tuple[str, str, Analysis | None]:
    """(verdict, direction, analysis); direction is 'msc', 'control' or '' (CI includes no effect)."""
    a = _primary_for_claim(oa, kind)
    if a is None:
        return "insufficient data", "", None
    d = a.result.to_dict()
    null = 1.0 if a.result.is_ratio() else 0.0
    lo, hi = d["ci_low"], d["ci_high"]
    lower_is_better = oa.info.better == "lower"
    if hi < null:
        direction = "msc" if lower_is_better else "control"
    elif lo > null:
        direction = "control" if lower_is_better else "msc"
    else:
        direction = ""
    if kind == "safety":
        verdict = "supported" if (hi < harm_margin and direction != "control") else "not supported"
    else:
        verdict = "supported" if direction == "msc" else "not supported"
    return verdict, direction, a


def claims_table(analyses: Mapping[str, OutcomeAnalysis], harm_margin: float = 0.10) -> pd.DataFrame:
    """One row per claim x outcome, with the evidence and the verdicts (rule: :data:`VERDICT_RULE`).

    Parameters
    ----------
    analyses : mapping
        Outcome name -> :class:`OutcomeAnalysis` (from :func:`analyse_secondary`).
    harm_margin : float
        Excess risk (risk difference, MSC minus control) the data must exclude for the
        safety claim to count as supported (0.10 = 10 percentage points).
    """
    if not 0 < harm_margin < 1:
        raise ValueError(f"harm_margin must lie between 0 and 1 (a risk difference), got {harm_margin!r}")
    rows = []
    for claim in CLAIMS:
        claim_rows = []
        for outcome in claim.outcomes:
            oa = analyses.get(outcome)
            if oa is None:
                continue
            verdict, direction, a = _outcome_verdict(oa, claim.kind, harm_margin)
            n_msc, n_control = analysis_n(oa, a) if a is not None else (np.nan, np.nan)
            claim_rows.append({
                "claim_id": claim.claim_id, "claim": claim.quote, "claim_source": claim.source,
                "outcome": outcome, "outcome_label": oa.info.label,
                "better_with_msc": oa.info.better,
                "studies_with_data": len(oa.studies_with_data),
                "k": int(a.result.k) if a is not None else _k_comparable(oa),
                "n_msc": n_msc,
                "n_control": n_control,
                "evidence": (f"{a.name}: {_format_estimate(a)}" if a is not None else oa.reason),
                "ci_favours": {"msc": "MSC", "control": "control", "": "neither (CI includes no effect)"}[direction]
                if a is not None else "",
                "outcome_verdict": verdict,
                "random_effects_check": _random_effects_check(oa, a, claim.kind),
            })
        verdicts = [r["outcome_verdict"] for r in claim_rows]
        against = any(r["ci_favours"] == "control" for r in claim_rows)
        if all(v == "insufficient data" for v in verdicts):
            claim_verdict = "insufficient data"
        elif "supported" in verdicts and not against:
            claim_verdict = "supported"
        else:
            claim_verdict = "not supported"
        for r in claim_rows:
            r["claim_verdict"] = claim_verdict
            r["note"] = claim.note + (f"; harm margin RD {harm_margin:g}" if claim.kind == "safety" else "")
        rows += claim_rows
    columns = ["claim_id", "claim", "claim_source", "outcome", "outcome_label", "better_with_msc", "studies_with_data",
               "k", "n_msc", "n_control", "evidence", "ci_favours", "outcome_verdict", "random_effects_check",
               "claim_verdict", "note"]
    return _int_counts(pd.DataFrame(rows, columns=columns))


def _int_counts(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("n_msc", "n_control"):
        frame[col] = pd.array(frame[col].round(), dtype="Int64")
    return frame


def _random_effects_check(oa: OutcomeAnalysis, used: Analysis | None, kind: str) -> str:
    """For a binary outcome judged on a Mantel-Haenszel (fixed-effect) analysis: does the
    random-effects odds ratio lead to the same reading of its CI? Empty otherwise."""
    if used is None or used.model != "fixed" or oa.info.kind != "binary":
        return ""
    re = next((a for a in oa.analyses if a.model == "random" and a.result is not None), None)
    if re is None:
        return ""
    d = re.result.to_dict()
    excludes = d["ci_high"] < 1 or d["ci_low"] > 1
    return f"{re.name}: {_format_estimate(re)}; CI {'excludes' if excludes else 'includes'} no effect"


# --------------------------------------------------------------------------- the whole stage


@dataclass(frozen=True)
class SecondaryReport:
    """Everything notebook 05 shows and writes."""

    analyses: Mapping[str, OutcomeAnalysis]
    secondary_pooled: pd.DataFrame
    ae_pooled: pd.DataFrame
    per_study: pd.DataFrame
    ae_kinds: pd.DataFrame
    claims: pd.DataFrame
    options: Mapping[str, object] = field(default_factory=dict)

    def pooled(self) -> list[OutcomeAnalysis]:
        """Outcomes with a pooled estimate, in :data:`mscmeta.review.schema_secondary.OUTCOMES` order."""
        return [oa for oa in self.analyses.values() if oa.status == "pooled"]


MODELS = ("random", "fixed")


def analyse_secondary(
    data: SecondaryData,
    model: str = "random",
    tau2_method: str = "REML",
    harm_margin: float = 0.10,
    labels: Mapping[str, str] | None = None,
) -> SecondaryReport:
    """Analyse every outcome of :data:`mscmeta.review.schema_secondary.OUTCOMES` and build the tables.

    Parameters
    ----------
    data : SecondaryData
        Validated sheets (:func:`load_secondary`), possibly restricted to a scenario.
    model : {"random", "fixed"}
        Model of the continuous analyses (and of the extra inverse-variance OR row of the
        binary ones); the MH analyses are fixed-effect by construction.
    tau2_method : str
        tau² estimator for random effects (default REML, as metafor).
    harm_margin : float
        Risk difference the safety claim must exclude (see :func:`claims_table`).
    labels : mapping, optional
        Study id -> display label (``studies.csv`` ``label``).
    """
    model = str(model).strip().lower()
    if model not in MODELS:
        raise ValueError(f"parameter model={model!r} is not valid; use one of: {', '.join(MODELS)}")
    analyses = {o: analyse_outcome(data, o, model, tau2_method) for o in SS.OUTCOMES if o != "ae_kind"}
    ae = [oa for o, oa in analyses.items() if o in SS.AE_OUTCOMES]
    sec = [oa for o, oa in analyses.items() if o in SS.SECONDARY_OUTCOMES]
    return SecondaryReport(
        analyses=analyses,
        secondary_pooled=pooled_table(sec),
        ae_pooled=pooled_table(ae),
        per_study=per_study_table(data, analyses, labels),
        ae_kinds=ae_kinds_table(data, labels),
        claims=claims_table(analyses, harm_margin),
        options={"model": model, "tau2_method": tau2_method, "harm_margin": harm_margin},
    )


def provenance_table(data: SecondaryData) -> pd.DataFrame:
    """Numbers (non-narrative rows) per sheet, source level and quote check, with derived counts.

    Columns: ``sheet, source_level, quote_check, numbers, derived, primary_use``.
    """
    frames = []
    for name, df in ((AE_FILE, data.adverse_events), (SECONDARY_FILE, data.outcomes)):
        numbers = df[df["statistic"] != "narrative"].assign(sheet=name)
        numbers = numbers.assign(derived=numbers["derivation"].notna(), primary_use=numbers["use"] == "primary")
        frames.append(numbers)
    rows = pd.concat(frames, ignore_index=True)
    out = (rows.groupby(["sheet", "source_level", "quote_check"], sort=True)
           .agg(numbers=("value", "size"), derived=("derived", "sum"), primary_use=("primary_use", "sum"))
           .reset_index())
    return out.astype({"numbers": "int64", "derived": "int64", "primary_use": "int64"})


def coverage_markdown(data: SecondaryData, study_ids: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """Which studies of the review set contribute adverse-event or secondary-outcome rows, and which none."""
    labels = labels or {}
    ids = sorted(set(study_ids))

    def names(found: Iterable[str]) -> str:
        found = sorted(found)
        return ", ".join(labels.get(s, _default_label(s)) for s in found) if found else "none"

    ae = set(data.adverse_events["study_id"])
    so = set(data.outcomes["study_id"])
    return "\n".join([
        f"- Review set of this scenario: {len(ids)} studies.",
        f"- Adverse-event data located for: {names(s for s in ids if s in ae)}; none located for: "
        f"{names(s for s in ids if s not in ae)}.",
        f"- Secondary-outcome data located for: {names(s for s in ids if s in so)}; none located for: "
        f"{names(s for s in ids if s not in so)}.",
    ])


def summary_markdown(report: SecondaryReport) -> str:
    """A short generated narrative of the results (numbers come from the report only)."""
    lines = []
    pooled = report.pooled()
    lines.append(f"**{len(pooled)} of {len(report.analyses)} outcomes could be pooled** "
                 "(at least two studies with comparable data in both arms); the others are shown descriptively.")
    for oa in pooled:
        a = oa.primary
        if a is None or a.result is None:
            continue
        d = a.result.to_dict()
        unit = f" {oa.inputs['unit'].iloc[0]}" if a.measure == "MD" else ""
        conv = f"; medians converted ({oa.conversion})" if "Luo" in oa.conversion or "Wan" in oa.conversion else ""
        lines.append(
            f"- {oa.info.label}: {a.name}, k = {a.result.k}: {a.measure} {d['estimate']:.2f}{unit} "
            f"(95% CI {d['ci_low']:.2f} to {d['ci_high']:.2f}), I² = {d['I2']:.0f}%{conv}."
        )
    verdicts = report.claims.drop_duplicates("claim_id")["claim_verdict"]
    counts = {v: int((verdicts == v).sum()) for v in ("supported", "not supported", "insufficient data")}
    lines.append("")
    lines.append(f"Claims of the paper ({len(verdicts)}): {counts['supported']} supported, "
                 f"{counts['not supported']} not supported, {counts['insufficient data']} with insufficient data "
                 "(rule and details below).")
    return "\n".join(lines)
