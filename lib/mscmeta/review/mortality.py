"""The mortality analyses of notebooks 03-pool and 04-subgroup: options, runs, tables, prose.

Everything comes from the per-study rows of ``analysis_mortality`` (one row per study:
``study_id, label, events_msc, n_msc, events_control, n_control`` plus study
characteristics; :func:`mscmeta.review.scenarios.analysis_mortality`):

* :func:`main_specs` / :func:`main_analyses` -- the primary analysis chosen by the notebook
  parameters (default: RevMan 5's default for dichotomous outcomes, Mantel-Haenszel
  fixed-effect odds ratio with 0.5 added to every cell of a study with a zero cell,
  double-zero studies not estimable; Cochrane Handbook 5.1 §9.4.4, §16.9.3 and §9.4.10)
  and beside it the exact MH estimate (no continuity correction; metafor ``rma.mh``
  default), RevMan's DerSimonian-Laird random-effects model and REML with the
  Hartung-Knapp-Sidik-Jonkman adjustment and a prediction interval (metafor
  ``rma(method="REML", test="knha")``; ``predict``);
* :func:`pooled_table` and :func:`mortality_studies_table` -- ``pooled_mortality.csv`` and
  ``mortality_studies.csv``;
* :func:`pooled_markdown` and :func:`conventions_markdown` -- the narrative.

Options travel as :class:`mscmeta.engine.options.BinaryOptions`. Ratio measures (OR, RR)
are reported on the ratio scale in every table (``exp`` of the analysis-scale estimate),
the risk difference as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.options import MH_MEASURES, BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import DataError, NotEstimableError
from mscmeta.review.sheets import ARM_COLUMNS, study_labels
from mscmeta.review.text import fmt_ci, fmt_p



class AnalysisOptionError(ValueError):
    """A notebook parameter (measure, model, zero_cell, tau2_method, scenario) is not valid."""


def check_options(measure: str, model: str, zero_cell: str, tau2_method: str) -> BinaryOptions:
    """The options of the primary analysis from the notebook parameters (method MH).

    The vocabulary is the engine's (:mod:`mscmeta.engine.options`); the measure is one of
    :data:`~mscmeta.engine.options.MH_MEASURES`.

    Raises
    ------
    AnalysisOptionError
        Naming the parameter, the value given and the valid values.
    """
    if str(measure).strip().upper() not in MH_MEASURES:
        raise AnalysisOptionError(f"parameter measure={measure!r} is not valid; use one of: {', '.join(MH_MEASURES)}")
    checks = (("measure", measure), ("model", model), ("zero_cell", zero_cell), ("tau2_method", tau2_method))
    for name, value in checks:
        try:
            BinaryOptions(**{name: value, "model": "random"} if name == "tau2_method" else {name: value})
        except DataError as err:
            valid = str(err).split("valid values: ")[-1]
            raise AnalysisOptionError(f"parameter {name}={value!r} is not valid; use one of: {valid}") from None
    return BinaryOptions(measure=measure, method="MH", model=model, zero_cell=zero_cell, tau2_method=tau2_method)


def pool(data: pd.DataFrame, options: BinaryOptions, source: str | None = None) -> MetaResult:
    """:func:`mscmeta.engine.binary.meta_binary` of analysis rows (our column names)."""
    return meta_binary(data, columns=ARM_COLUMNS, source=source, options=options)


def try_pool(data: pd.DataFrame, options: BinaryOptions, source: str | None = None) -> MetaResult | None:
    """:func:`pool`, but ``None`` when no study carries information (e.g. all double zero)."""
    if len(data) == 0:
        return None
    try:
        return pool(data, options, source=source)
    except NotEstimableError:
        return None


@dataclass(frozen=True)
class AnalysisSpec:
    """One named pooled analysis: a label, a sentence naming its conventions, engine options."""

    name: str
    description: str
    options: BinaryOptions


def describe_options(options: BinaryOptions) -> str:
    """One phrase naming the method, model, measure and zero-cell convention of *options*."""
    measure, mh, fixed = options.measure, options.method == "MH", options.model != "random"
    if not fixed:
        ci = "Hartung-Knapp-Sidik-Jonkman CI" if options.hksj else "normal-based CI"
        if mh and options.tau2_method == "DL":
            what = (f"RevMan 'M-H, Random' {measure}: DerSimonian-Laird τ² from the MH-based Q, inverse-variance "
                    f"pooling, {ci}")
        else:
            what = f"inverse-variance random-effects {measure}, τ² by {options.tau2_method}, {ci}"
    elif mh:
        what = f"Mantel-Haenszel fixed-effect {measure}"
    else:
        what = f"inverse-variance fixed-effect {measure}"
    if options.zero_cell == "revman":
        zc = "RevMan 0.5 zero-cell correction" + (" (also inside MH)" if mh and fixed else "")
    else:
        zc = "no continuity correction in the MH estimator" if mh and fixed else "0.5 added to zero-cell studies' estimates"
    return f"{what}; {zc}"


def main_specs(measure: str = "OR", model: str = "fixed", zero_cell: str = "revman", tau2_method: str = "DL") -> list[AnalysisSpec]:
    """The analyses of ``pooled_mortality.csv``: the primary one and its comparators.

    The primary analysis follows the notebook parameters (default: MH fixed-effect OR,
    RevMan zero-cell convention). The comparators are always the exact MH fixed-effect
    estimate (``zero_cell="none"``), DerSimonian-Laird random effects (RevMan's
    "M-H, Random": DL τ² from Cochran's Q around the MH estimate) and REML with
    HKSJ and a prediction interval, all for the same measure. A comparator identical
    to the primary analysis is left out (the τ² estimator does not apply to fixed-effect
    models, so it never distinguishes two of them).
    """
    primary = check_options(measure, model, zero_cell, tau2_method)
    comparators = [
        ("MH RevMan", primary.replace(model="fixed", zero_cell="revman", hksj=False, tau2_method=None)),
        ("MH exact", primary.replace(model="fixed", zero_cell="none", hksj=False, tau2_method=None)),
        ("DL random", primary.replace(model="random", tau2_method="DL", hksj=False)),
        ("REML + HKSJ", primary.replace(method="IV", model="random", tau2_method="REML", hksj=True)),
    ]
    specs = [AnalysisSpec("primary", describe_options(primary), primary)]
    specs += [AnalysisSpec(name, describe_options(opts), opts) for name, opts in comparators if opts != primary]
    return specs


def main_analyses(data: pd.DataFrame, specs: Sequence[AnalysisSpec], source: str | None = None) -> dict[str, MetaResult | None]:
    """Run every spec on *data*; a spec that cannot be estimated maps to ``None``."""
    return {spec.name: try_pool(data, spec.options, source=source) for spec in specs}


def display_value(result, value: float) -> float:
    if value is None or not np.isfinite(value):
        return np.nan
    return float(np.exp(value)) if result.is_ratio() else float(value)


POOLED_COLUMNS = (
    "analysis", "description", "scenario", "model", "method", "tau2_method", "hksj", "measure", "zero_cell", "k",
    "studies_in_table", "events_msc", "n_msc", "events_control", "n_control", "estimate", "ci_low", "ci_high",
    "p_value", "Q", "Q_df", "Q_p", "I2", "I2_ci_low", "I2_ci_high", "tau2", "pi_low", "pi_high",
)


def _arm_totals(data: pd.DataFrame) -> dict[str, int]:
    """Deaths and patients per arm summed over the analysis rows (RevMan's "Total" row)."""
    return {
        "events_msc": int(data[ARM_COLUMNS["events_t"]].sum()),
        "n_msc": int(data[ARM_COLUMNS["n_t"]].sum()),
        "events_control": int(data[ARM_COLUMNS["events_c"]].sum()),
        "n_control": int(data[ARM_COLUMNS["n_c"]].sum()),
    }


def pooled_row(name: str, result: MetaResult | None, data: pd.DataFrame, scenario: str, description: str = "",
               options: BinaryOptions | None = None) -> dict:
    """One row of ``pooled_mortality.csv`` (ratio scale for OR/RR).

    ``k`` counts the studies that entered the pooled estimate; ``studies_in_table`` all
    rows of the analysis table (double-zero studies included), and the events/totals
    are summed over all of them, as in RevMan's "Total" row.
    """
    opts = options if options is not None else (result.options if result is not None else BinaryOptions())
    row = {
        "analysis": name, "description": description, "scenario": scenario, "model": opts.model,
        "method": opts.method, "tau2_method": opts.tau2_method if opts.model == "random" else "",
        "hksj": opts.hksj, "measure": opts.measure, "zero_cell": opts.zero_cell,
        "studies_in_table": int(len(data)), **_arm_totals(data),
    }
    if result is None:
        row.update(k=0, estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, Q=np.nan, Q_df=np.nan,
                   Q_p=np.nan, I2=np.nan, I2_ci_low=np.nan, I2_ci_high=np.nan, tau2=np.nan, pi_low=np.nan, pi_high=np.nan)
        return row
    i2_lo, i2_hi = result.I2_ci if result.I2_ci is not None else (np.nan, np.nan)
    row.update(
        k=int(result.k), estimate=display_value(result, result.estimate), ci_low=display_value(result, result.ci_low),
        ci_high=display_value(result, result.ci_high), p_value=float(result.p_value), Q=float(result.Q),
        Q_df=int(result.Q_df), Q_p=float(result.Q_p), I2=float(result.I2), I2_ci_low=float(i2_lo),
        I2_ci_high=float(i2_hi), tau2=float(result.tau2) if result.model == "random" else np.nan,
        pi_low=display_value(result, result.pi_low), pi_high=display_value(result, result.pi_high),
    )
    return row


def pooled_table(results: Mapping[str, MetaResult | None], specs: Sequence[AnalysisSpec], data: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """``pooled_mortality.csv``: one row per analysis, in the order of *specs*."""
    rows = [pooled_row(s.name, results[s.name], data, scenario, s.description, s.options) for s in specs]
    return pd.DataFrame(rows, columns=list(POOLED_COLUMNS))


MORTALITY_STUDY_COLUMNS = (
    "study_id", "label", "events_msc", "n_msc", "events_control", "n_control", "weight", "estimate", "ci_low",
    "ci_high", "yi", "vi", "estimable", "note", "measure", "zero_cell", "source_level",
)


def mortality_studies_table(result, data: pd.DataFrame) -> pd.DataFrame:
    """``mortality_studies.csv``: the per-study rows of the primary analysis.

    ``estimate``/``ci_low``/``ci_high`` are on the ratio scale for OR/RR; ``yi``/``vi`` are
    the analysis-scale estimate and variance (with the analysis' zero-cell convention) so
    anyone can re-pool them, e.g. ``metafor::rma(yi, vi)``. ``weight`` is the percentage
    weight in the pooled estimate (empty for studies that are not estimable).
    """
    d = data.reset_index(drop=True)
    if result is None:
        s = pd.DataFrame({"weight": np.nan, "yi": np.nan, "vi": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                          "estimable": False, "note": "not estimable"}, index=d.index)
        result = _NotPooled()
    else:
        s = result.studies.reset_index(drop=True)
    out = pd.DataFrame(
        {
            "study_id": d[ARM_COLUMNS["study"]].astype(str),
            "label": d[ARM_COLUMNS["study"]].astype(str).map(labels_of(d)),
            "events_msc": d[ARM_COLUMNS["events_t"]].astype(int),
            "n_msc": d[ARM_COLUMNS["n_t"]].astype(int),
            "events_control": d[ARM_COLUMNS["events_c"]].astype(int),
            "n_control": d[ARM_COLUMNS["n_c"]].astype(int),
            "weight": s["weight"].astype(float),
            "estimate": [display_value(result, v) for v in s["yi"]],
            "ci_low": [display_value(result, v) for v in s["ci_low"]],
            "ci_high": [display_value(result, v) for v in s["ci_high"]],
            "yi": s["yi"].astype(float),
            "vi": s["vi"].astype(float),
            "estimable": s["estimable"].astype(bool),
            "note": s["note"].fillna("").astype(str),
            "measure": result.measure,
            "zero_cell": result.zero_cell,
            "source_level": d["source_level"].astype(str) if "source_level" in d.columns else "",
        }
    )
    return out.loc[:, list(MORTALITY_STUDY_COLUMNS)]


class _NotPooled:
    """Stand-in for a result when nothing could be pooled (tables keep their columns)."""

    measure = ""
    zero_cell = ""

    @staticmethod
    def is_ratio() -> bool:
        return False


def labels_of(data: pd.DataFrame) -> dict[str, str]:
    """study_id → display label (e.g. "Adas 2021") of analysis rows."""
    return study_labels(data)


def pooled_markdown(table: pd.DataFrame, results: Mapping[str, object]) -> str:
    """Narrative of ``pooled_mortality.csv``: the primary result, its comparators and the
    heterogeneity, every number taken from *table* and *results*."""
    prim = table.iloc[0]
    res = results.get("primary")
    m = prim["measure"]
    if res is None:
        return (f"The primary analysis is **not estimable** for this scenario: no study has an estimable {m} "
                "(no deaths in either arm of every study).\n")
    lines = [
        f"**Primary analysis** ({prim['description']}): {m} {fmt_ci(prim['estimate'], prim['ci_low'], prim['ci_high'])}, "
        f"{fmt_p(prim['p_value'])}; k = {int(prim['k'])} of {int(prim['studies_in_table'])} studies pooled; "
        f"{int(prim['events_msc'])}/{int(prim['n_msc'])} deaths with MSCs vs {int(prim['events_control'])}/{int(prim['n_control'])} with control.",
        "",
    ]
    for r in table.iloc[1:].itertuples(index=False):
        extra = ""
        if r.model == "random":
            extra = f"; τ² = {r.tau2:.3f}"
            if np.isfinite(r.pi_low):
                extra += f"; 95% prediction interval {r.pi_low:.2f} to {r.pi_high:.2f}"
        lines.append(f"- {r.analysis} ({r.description}): {fmt_ci(r.estimate, r.ci_low, r.ci_high)}{extra}.")
    lines.append("")
    if int(prim["k"]) >= 2:
        q, df, qp, i2 = prim["Q"], int(prim["Q_df"]), prim["Q_p"], prim["I2"]
        i2_rows = table[np.isfinite(table["I2_ci_high"].astype(float))]
        i2_ci = ""
        if len(i2_rows):
            r = i2_rows.iloc[-1]
            i2_ci = f" (Q-profile 95% CI {r['I2_ci_low']:.0f}% to {r['I2_ci_high']:.0f}% in the {r['analysis']} fit)"
        lines.append(
            f"**Heterogeneity.** Cochran's Q = {q:.2f} on {df} df ({fmt_p(qp)}); I² = {i2:.0f}%{i2_ci}. "
            + ("Q is below its degrees of freedom: the studies scatter *less* than sampling error alone predicts, "
               "which is what small, sparse studies with wide intervals produce; it is not evidence that the true "
               "effects are identical. " if q < df else
               "Q exceeds its degrees of freedom, so part of the variation between studies is more than chance. ")
            + "With few studies and few deaths the test has little power, so a non-significant Q does not rule out "
              "heterogeneity; the I² interval shows how much is compatible with the data."
        )
        s = res.studies
        zero = int(((s["events_t"] == 0) | (s["events_c"] == 0)).sum())
        if zero:
            lines.append("")
            lines.append(
                f"**Sparse data.** {zero} of {len(s)} studies have no deaths in at least one arm, and the trials are small "
                f"({int(prim['events_msc']) + int(prim['events_control'])} deaths in total). The zero-cell convention then "
                f"matters: RevMan's 0.5 correction pulls such studies towards {m} = {0 if m == 'RD' else 1}, the exact MH "
                "estimate does not (compare the MH rows)."
            )
    dl = table[table["analysis"] == "DL random"]
    hk = table[table["analysis"] == "REML + HKSJ"]
    if len(dl) and len(hk) and np.isfinite(hk.iloc[0]["ci_low"]) and np.isfinite(dl.iloc[0]["ci_low"]):
        w_dl = np.log(dl.iloc[0]["ci_high"] / dl.iloc[0]["ci_low"]) if m != "RD" else dl.iloc[0]["ci_high"] - dl.iloc[0]["ci_low"]
        w_hk = np.log(hk.iloc[0]["ci_high"] / hk.iloc[0]["ci_low"]) if m != "RD" else hk.iloc[0]["ci_high"] - hk.iloc[0]["ci_low"]
        if w_hk < w_dl and hk.iloc[0]["Q"] < hk.iloc[0]["Q_df"]:
            lines.append("")
            lines.append(
                "**Note on HKSJ.** Here the Hartung-Knapp-Sidik-Jonkman interval is *narrower* than the DerSimonian-Laird "
                "one, because its variance is scaled by Q/(k − 1) < 1. This is a known property of HKSJ with homogeneous, "
                "sparse data (Jackson et al., Stat Med 2017); the 'ad hoc' variant that never scales below 1 "
                "(Knapp & Hartung 2003; Röver et al., BMC Med Res Methodol 2015) would not be narrower than DL."
            )
    return "\n".join(lines) + "\n"


def conventions_markdown(results: Mapping[str, object]) -> str:
    """Which conventions each analysis used, read back from the results (zero cells, τ², PI)."""
    lines = []
    for name, res in results.items():
        if res is None:
            lines.append(f"- **{name}**: not estimable.")
            continue
        bits = [f"{res.method}, {res.model}"]
        if res.model == "random":
            bits.append(f"τ² estimator {res.tau2_method}")
            bits.append("HKSJ t-based CI on k − 1 df" if res.hksj else "normal-based CI")
            if res.pi_low is not None and np.isfinite(res.pi_low):
                bits.append(f"prediction interval on a {res.pi_dist} distribution"
                            + (" (metafor predict() convention: t with k − 1 df after test='knha'; R meta ≥ 8 likewise)"
                               if str(res.pi_dist).startswith("t(") else " (metafor predict() default for z-based fits)"))
        if res.method == "MH" and res.model == "fixed":
            notes = res.notes[0] if res.notes else ""
        else:
            notes = ("0.5 added to every cell of studies with a zero cell for the study estimates; studies without events "
                     "in both arms not estimable" + ("" if res.measure != "RD" else " for OR/RR (kept for RD)"))
        lines.append(f"- **{name}**: " + ", ".join(bits) + (f". Zero cells: {notes}." if notes else "."))
    return "\n".join(lines) + "\n"


MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}


def plan_markdown(specs: Sequence[AnalysisSpec], scenario: str) -> str:
    """What this run pools, generated from its parameters (the primary analysis and its comparators)."""
    primary = specs[0].options
    name = MEASURE_NAMES.get(primary.measure, primary.measure)
    lines = [f"**This run** (scenario {scenario}) pools in-hospital mortality as a **{name}** ({primary.measure}), "
             f"MSC vs control. Primary analysis: {specs[0].description}. Beside it, on the same studies and measure:"]
    lines += [f"- **{s.name}**: {s.description}" for s in specs[1:]]
    return "\n".join(lines) + "\n"
