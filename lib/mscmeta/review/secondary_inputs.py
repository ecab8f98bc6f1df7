"""Secondary outcomes: reshaping the long sheets to one row per study.

:func:`continuous_input` gives arm-level means/SDs (medians with IQR and/or range converted
by :func:`mscmeta.engine.continuous.fivenum_to_mean_sd`, metafor ``conv.fivenum``: Luo et
al. 2018 for the mean, Wan et al. 2014 or Shi et al. 2020 for the SD; the method recorded
per arm); :func:`binary_input` gives events/n per arm.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mscmeta.engine.continuous import fivenum_to_mean_sd
from mscmeta.review import schema_secondary as SS
from mscmeta.review.secondary_sheets import SecondaryData


ARM_STATISTICS = ("mean", "sd", "median", "q1", "q3", "min", "max", "n", "count", "effect", "ci_low", "ci_high", "p_value")


def sheet_of(data: SecondaryData, outcome: str) -> pd.DataFrame:
    if outcome in SS.AE_OUTCOMES:
        return data.adverse_events
    if outcome in SS.SECONDARY_OUTCOMES:
        return data.outcomes
    raise KeyError(f"unknown outcome {outcome!r}; known outcomes: {', '.join(SS.OUTCOMES)}")


def _joined(values: list[object]) -> str:
    """The distinct non-blank texts of *values*, in order, joined by "; "."""
    return "; ".join(dict.fromkeys(str(v) for v in values if not pd.isna(v) and str(v).strip()))


def _arm_record(study: str, timepoint: str, group: list[dict]) -> dict[str, object]:
    rec: dict[str, object] = {"study_id": study, "timepoint": timepoint}
    units = [r["unit"] for r in group if r["statistic"] not in ("n", "narrative", "p_value") and not pd.isna(r["unit"])]
    rec["unit"] = units[0] if units else ""
    for r in group:
        if r["statistic"] != "narrative":
            rec[f"{r['statistic']}_{r['arm']}"] = float(r["value"])
    rec["narrative"] = " | ".join(f"[{r['arm']}] {r['quote']}" for r in group if r["statistic"] == "narrative")
    rec["sources"] = "; ".join(dict.fromkeys(r["source"] for r in group))
    rec["notes"] = _joined([r["note"] for r in group])
    rec["derivations"] = _joined([r["derivation"] for r in group])
    rec["source_levels"] = "; ".join(dict.fromkeys(r["source_level"] for r in group))
    return rec


def arm_values(df: pd.DataFrame, outcome: str, use: str = "primary") -> pd.DataFrame:
    """One row per study (and time point) with the statistics of each arm side by side.

    Columns: ``study_id``, ``timepoint``, ``unit``, then ``<statistic>_<arm>`` for every
    statistic reported (arm ``msc``, ``control``, ``contrast``), ``narrative`` (the
    direction-only quotes) and ``sources`` (the distinct source URLs of the rows). Studies
    and time points in sorted order, rows of a study in sheet order; rows without a study
    or a time point are left out.
    """
    rows = df[(df["outcome"] == outcome) & (df["use"] == use)]
    if "ae_type" in rows.columns:
        rows = rows[rows["ae_type"].isna()]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows.to_dict("records"):
        if not (pd.isna(r["study_id"]) or pd.isna(r["timepoint"])):
            groups.setdefault((r["study_id"], r["timepoint"]), []).append(r)
    return pd.DataFrame.from_records([_arm_record(s, t, groups[(s, t)]) for s, t in sorted(groups)])


def value_of(rec: Mapping[str, object], key: str) -> float:
    value = rec.get(key, np.nan)
    return float(value) if value is not None and not pd.isna(value) else np.nan


def _arm_mean_sd(rec: Mapping[str, object], arm: str, study: str) -> tuple[float, float, float, str, str]:
    """Mean, SD, n of one arm, the method used, and why not (empty if usable)."""

    n = value_of(rec, f"n_{arm}")
    mean, sd = value_of(rec, f"mean_{arm}"), value_of(rec, f"sd_{arm}")
    if not np.isfinite(n):
        return np.nan, np.nan, n, "", f"{arm}: n not reported"
    if np.isfinite(mean) and np.isfinite(sd):
        return mean, sd, n, "reported mean (SD)", ""
    quantiles = {k: value_of(rec, f"{k}_{arm}") for k in ("median", "q1", "q3", "min", "max")}
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
    wide = arm_values(sheet_of(data, outcome), outcome)
    out = []
    for rec in wide.to_dict("records"):
        mt, st, nt, how_t, why_t = _arm_mean_sd(rec, "msc", rec["study_id"])
        mc, sc, nc, how_c, why_c = _arm_mean_sd(rec, "control", rec["study_id"])
        reasons = [w for w in (why_t, why_c) if w]
        has_arm_values = any(np.isfinite(value_of(rec, f"{s}_{arm}")) for s in ARM_STATISTICS for arm in ("msc", "control"))
        if not has_arm_values:
            has_contrast = any(np.isfinite(value_of(rec, f"{s}_contrast")) for s in ARM_STATISTICS)
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
    wide = arm_values(sheet_of(data, outcome), outcome)
    out = []
    for rec in wide.to_dict("records"):
        row = {"study_id": rec["study_id"], "timepoint": rec["timepoint"],
               "events_msc": value_of(rec, "count_msc"), "n_msc": value_of(rec, "n_msc"),
               "events_control": value_of(rec, "count_control"), "n_control": value_of(rec, "n_control")}
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
