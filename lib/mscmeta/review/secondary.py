"""Stage 05 (notebook ``05-secondary-outcomes``): safety, resource use, pulmonary function, inflammation.

The one module notebook 05 imports. :func:`analyse_secondary` analyses every outcome of
:data:`mscmeta.review.schema_secondary.OUTCOMES` (:mod:`~mscmeta.review.secondary_analyses`)
and builds the tables: pooled analyses, per-study rows, kinds of adverse events and the
claims with their verdicts (:mod:`~mscmeta.review.claims`). The sheets come validated from
:func:`~mscmeta.review.sheets.load_raw`; the figures are drawn by
:mod:`~mscmeta.review.secondary_figures`. Nothing here writes files; the notebook writes
the tables with :mod:`mscmeta.bundle.io`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from mscmeta.engine.options import normalise_model
from mscmeta.engine.validation import DataError
from mscmeta.plots.style import use_style
from mscmeta.review import schema_secondary as SS
from mscmeta.review.claims import VERDICT_RULE, claims_table
from mscmeta.review.csvsheet import DataValidationError, Failure
from mscmeta.review.display import fmt_number, save_table, show_figure, show_table
from mscmeta.review.scenarios import scenario_studies
from mscmeta.review.secondary_analyses import OutcomeAnalysis, SecondaryReport, analyse_outcome, int_counts
from mscmeta.review.secondary_figures import outcome_forest_plot, overview_plot
from mscmeta.review.secondary_inputs import ARM_STATISTICS, arm_values, sheet_of, value_of
from mscmeta.review.secondary_sheets import AE_FILE, SECONDARY_FILE, SecondaryData, restrict_to_studies
from mscmeta.review.sheets import RawData, default_label, load_raw, study_labels
from mscmeta.review.tables import (
    AE_KINDS,
    CLAIMS,
    SECONDARY_PROVENANCE,
    per_study_spec,
    per_study_view,
    pooled_outcomes_spec,
    secondary_provenance_view,
)

__all__ = [
    "use_style", "load_raw", "scenario_studies", "study_labels", "secondary_data", "restrict_to_studies",
    "analyse_secondary", "SecondaryReport", "provenance_table", "coverage_markdown", "summary_markdown",
    "VERDICT_RULE", "outcome_forest_plot", "overview_plot", "secondary_pooled_table", "per_study_table", "ae_kinds_table",
    "show_table", "show_figure", "save_table", "AE_KINDS", "CLAIMS", "SECONDARY_PROVENANCE", "per_study_spec",
    "per_study_view", "pooled_outcomes_spec", "secondary_provenance_view", "outcome_caption", "OVERVIEW_CAPTION",
]


def secondary_data(raw: RawData, study_ids: Iterable[str]) -> SecondaryData:
    """The validated secondary sheets of *raw*, restricted to *study_ids* (a scenario's review set).

    Raises
    ------
    DataValidationError
        If neither sheet was read (both are missing from the data folder).
    """
    if raw.secondary is None:
        missing = [Failure(name, None, None, None, "required sheet is missing") for name in (AE_FILE, SECONDARY_FILE)]
        raise DataValidationError(missing, raw.data_dir)
    return restrict_to_studies(raw.secondary, study_ids)


POOLED_COLUMNS = ["domain", "outcome", "outcome_label", "analysis", "measure", "model", "k", "n_msc", "n_control",
                  "estimate", "ci_low", "ci_high", "p_value", "I2", "tau2", "conversion_method", "studies", "note"]


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


def secondary_pooled_table(analyses: Iterable[OutcomeAnalysis]) -> pd.DataFrame:
    """One row per outcome x analysis (descriptive-only outcomes: one row with the reason)."""
    rows = [r for oa in analyses for r in _pooled_rows(oa)]
    return int_counts(pd.DataFrame(rows, columns=POOLED_COLUMNS))


def _num_text(value: float) -> str:
    if not np.isfinite(value):
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _arm_text(rec: Mapping[str, object], arm: str, unit_word: str) -> str:
    g = {k: value_of(rec, f"{k}_{arm}") for k in ARM_STATISTICS}
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
    g = {k: value_of(rec, f"{k}_contrast") for k in ("effect", "ci_low", "ci_high", "p_value")}
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
        sheet = sheet_of(data, outcome)
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
                    "study_id": sid, "study": labels.get(sid, default_label(sid)), "timepoint": rec["timepoint"],
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
            "study_id": study, "study": labels.get(study, default_label(study)), "ae_type": kind,
            "timepoint": timepoint, "unit": g["unit"].iloc[0],
            "msc": float(counts["msc"]) if "msc" in counts else np.nan,
            "control": float(counts["control"]) if "control" in counts else np.nan,
            "source_level": "; ".join(dict.fromkeys(g["source_level"])), "source": "; ".join(dict.fromkeys(g["source"])),
            "location": "; ".join(dict.fromkeys(g["location"])),
        })
    columns = ["study_id", "study", "ae_type", "timepoint", "unit", "msc", "control", "source_level", "source", "location"]
    return pd.DataFrame(out, columns=columns)


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
    try:
        model = normalise_model(model)
    except DataError as err:
        raise DataError(f"parameter model={model!r} is not valid: {err}") from None
    analyses = {o: analyse_outcome(data, o, model, tau2_method) for o in SS.OUTCOMES if o != "ae_kind"}
    ae = [oa for o, oa in analyses.items() if o in SS.AE_OUTCOMES]
    sec = [oa for o, oa in analyses.items() if o in SS.SECONDARY_OUTCOMES]
    return SecondaryReport(
        analyses=analyses,
        secondary_pooled=secondary_pooled_table(sec),
        ae_pooled=secondary_pooled_table(ae),
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
        return ", ".join(labels.get(s, default_label(s)) for s in found) if found else "none"

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
            f"- {oa.info.label}: {a.name}, k = {a.result.k}: {a.measure} {fmt_number(d['estimate'])}{unit} "
            f"(95% CI {fmt_number(d['ci_low'])} to {fmt_number(d['ci_high'])}), I² = {d['I2']:.0f}%{conv}."
        )
    verdicts = report.claims.drop_duplicates("claim_id")["claim_verdict"]
    counts = {v: int((verdicts == v).sum()) for v in ("supported", "not supported", "insufficient data")}
    lines.append("")
    lines.append(f"Claims of the paper ({len(verdicts)}): {counts['supported']} supported, "
                 f"{counts['not supported']} not supported, {counts['insufficient data']} with insufficient data "
                 "(rule and details below).")
    return "\n".join(lines)


def outcome_caption(oa: OutcomeAnalysis) -> str:
    """Caption of one secondary outcome's forest plot: what it shows and how to read it."""
    a = oa.primary
    better = "lower" if oa.info.better == "lower" else "higher"
    scale = {"OR": "odds ratio (log scale)", "RD": "risk difference", "MD": "mean difference",
             "SMD": "standardised mean difference (Hedges' g)"}.get(a.measure, a.measure)
    conv = f" Medians and IQRs converted to means and SDs: {oa.conversion}." if oa.conversion else ""
    return (f"{oa.info.label}, MSC vs control: {a.name}, RevMan layout. Squares are the studies' estimates (area "
            f"proportional to weight) with 95% CIs, the diamond the pooled {scale}; {better} values are better for "
            f"this outcome.{conv}")


OVERVIEW_CAPTION = (
    "Secondary outcomes at a glance: one panel per scale, each outcome on the scale of its own forest plot (odds ratios "
    "on a log axis; mean differences in their unit; standardised mean differences), estimate and 95% CI. Whether lower "
    "or higher values are better is given for each outcome; the axis labels say which side is lower or higher with MSC. "
    "Outcomes that could not be pooled are listed below the panels with the number of studies reporting them."
)
