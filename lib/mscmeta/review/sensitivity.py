"""Sensitivity analyses, influence, cumulative meta-analysis and small-study effects of the
mortality analysis (notebook 03): the tables and their prose.

* :func:`sensitivity_analyses` -- leave-one-out, randomised trials only, excluding high
  risk of bias, excluding mixed severity, the other inclusion scenarios, the other
  zero-cell convention and the other effect measures;
* :func:`influence_table`, :func:`cumulative_table` -- influence diagnostics and the
  cumulative meta-analysis by publication date;
* :func:`small_study_table` -- small-study-effect tests and trim-and-fill.

The figures are drawn by :mod:`mscmeta.plots.intervals` and :mod:`mscmeta.plots.funnel`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from mscmeta.engine import bias
from mscmeta.engine.options import MH_MEASURES, BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.engine.sensitivity import cumulative, influence, leave_one_out
from mscmeta.engine.validation import DataError
from mscmeta.review.mortality import ARM_COLUMNS, display_value, labels_of, try_pool
from mscmeta.review.text import fmt_ci


SMALL_STUDY_COLUMNS = (
    "test", "k", "statistic_name", "statistic", "df", "p_value", "coefficient", "limit_estimate", "limit_ci_low",
    "limit_ci_high", "method", "caveat",
)


def _trim_fill_row(result: MetaResult, res) -> dict:
    return {
        "test": "Trim and fill (L0)", "k": res.k, "statistic_name": "k0", "statistic": float(res.k0), "df": np.nan,
        "p_value": np.nan, "coefficient": np.nan,
        "limit_estimate": display_value(result, res.estimate), "limit_ci_low": display_value(result, res.ci_low),
        "limit_ci_high": display_value(result, res.ci_high),
        "method": f"Duval & Tweedie trim and fill, L0 estimator, {res.model}-effect model, side {res.side} (metafor trimfill)",
        "caveat": res.caveat or "",
    }


def _bias_test_row(result: MetaResult, res) -> dict:
    limit = res.test != "Begg"
    return {
        "test": res.test, "k": res.k, "statistic_name": res.statistic_name, "statistic": res.statistic,
        "df": res.df if res.df is not None else np.nan, "p_value": res.p_value, "coefficient": res.coefficient,
        "limit_estimate": display_value(result, res.limit_estimate) if limit else np.nan,
        "limit_ci_low": display_value(result, res.limit_ci_low) if limit else np.nan,
        "limit_ci_high": display_value(result, res.limit_ci_high) if limit else np.nan,
        "method": res.method, "caveat": res.caveat or "",
    }


def _small_study_runs(result: MetaResult, data: pd.DataFrame, yi, vi, labels) -> list[tuple[str, Callable[[], object], str]]:
    """(test, how to run it, why it does not apply or "") for every small-study test."""
    counts = [data[ARM_COLUMNS[c]].to_numpy(float) for c in ("events_t", "n_t", "events_c", "n_c")]
    not_or = "" if str(result.measure).upper() == "OR" else "not applicable: {} test is defined for odds ratios"
    model = "random" if result.model == "random" else "fixed"
    tau2 = "REML" if str(result.tau2_method or "").upper().startswith("REML") else "DL"
    return [
        ("Egger", lambda: bias.egger_test(yi, vi, studies=labels), ""),
        ("Begg", lambda: bias.begg_test(yi, vi, studies=labels), ""),
        ("Peters", lambda: bias.peters_test(*counts), not_or.format("Peters'")),
        ("Harbord", lambda: bias.harbord_test(*counts), not_or.format("Harbord's")),
        ("Trim and fill (L0)", lambda: bias.trim_and_fill(yi, vi, model=model, tau2_method=tau2,
                                                           measure=str(result.measure), studies=labels), ""),
    ]


def small_study_table(result: MetaResult | None, data: pd.DataFrame) -> pd.DataFrame:
    """Egger, Begg, Peters and Harbord tests and trim-and-fill for *result*.

    Egger (metafor ``regtest(model="lm")``), Begg (``ranktest``) and trim-and-fill
    (``trimfill``, L0) use the study estimates of *result* (``yi``, ``vi``; with its
    zero-cell convention); Peters and Harbord (R meta ``metabias``) use the 2×2 counts and
    apply to odds ratios only. A test that cannot be computed (fewer than 3 informative
    studies, no spread in precision) gets a row with the reason in ``caveat``. The
    ``limit_*`` columns hold the regression intercept (Egger, Peters) or slope (Harbord) —
    the "limit" estimate as precision grows — and for trim-and-fill the adjusted pooled
    estimate, on the ratio scale for OR/RR.
    """
    if result is None:
        return pd.DataFrame([{"test": "all", "k": 0, "caveat": "not computed: nothing was pooled"}],
                            columns=list(SMALL_STUDY_COLUMNS))
    s = result.studies
    ok = s["estimable"].astype(bool) & np.isfinite(s["yi"].astype(float)) & np.isfinite(s["vi"].astype(float))
    yi, vi, labels = s.loc[ok, "yi"].to_numpy(float), s.loc[ok, "vi"].to_numpy(float), s.loc[ok, "study"].astype(str).tolist()
    rows = []
    for name, run, why_not in _small_study_runs(result, data, yi, vi, labels):
        if why_not:
            rows.append({"test": name, "k": int(ok.sum()), "caveat": why_not})
            continue
        try:
            res = run()
        except DataError as exc:
            rows.append({"test": name, "k": int(ok.sum()), "caveat": f"not computed: {exc}"})
            continue
        rows.append(_trim_fill_row(result, res) if name.startswith("Trim") else _bias_test_row(result, res))
    out = pd.DataFrame(rows)
    for c in SMALL_STUDY_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan if c not in ("method", "caveat", "statistic_name") else ""
    out[["method", "caveat", "statistic_name"]] = out[["method", "caveat", "statistic_name"]].fillna("")
    return out.loc[:, list(SMALL_STUDY_COLUMNS)]


def small_study_markdown(table: pd.DataFrame) -> str:
    """Narrative of the small-study tests with the caveat, numbers from *table*."""
    if table.empty:
        return "No small-study tests were run.\n"
    k = int(table["k"].max())
    lines = []
    caveats = [c for c in table["caveat"] if c and not c.startswith(("not computed", "not applicable"))]
    if k < 10:
        lines.append(
            f"**Caveat: only k = {k} studies carry an estimable effect.** With fewer than 10 studies, tests for "
            "funnel-plot asymmetry have too little power to tell chance from real small-study effects "
            "(Cochrane Handbook v6 §13.3.5.4); the results below are reported for completeness, not as evidence "
            "for or against publication bias."
        )
    elif caveats:
        lines.append(caveats[0])
    for row in table.itertuples(index=False):
        if isinstance(row.caveat, str) and row.caveat.startswith(("not computed", "not applicable")):
            lines.append(f"- {row.test}: {row.caveat}.")
        elif row.test.startswith("Trim"):
            lines.append(
                f"- {row.test}: {int(row.statistic)} stud{'y' if int(row.statistic) == 1 else 'ies'} imputed; "
                f"adjusted estimate {row.limit_estimate:.2f} [{row.limit_ci_low:.2f}, {row.limit_ci_high:.2f}]."
            )
        else:
            df = f", df = {row.df:g}" if np.isfinite(row.df) else ""
            lines.append(f"- {row.test}: {row.statistic_name} = {row.statistic:.2f}{df}, p = {row.p_value:.3f} (k = {int(row.k)}).")
    return "\n".join(lines) + "\n"


SENSITIVITY_COLUMNS = (
    "group", "analysis", "measure", "model", "zero_cell", "k", "studies_in_table", "studies", "estimate", "ci_low",
    "ci_high", "p_value", "Q_p", "I2", "tau2", "note",
)


def _sens_row(group: str, analysis: str, data: pd.DataFrame, result: MetaResult | None, options: BinaryOptions,
              note: str = "") -> dict:
    pooled = []
    if result is not None:
        s = result.studies
        pooled = list(s.loc[s["estimable"].astype(bool), "study"].astype(str))
    row = {
        "group": group, "analysis": analysis, "measure": options.measure, "model": options.model,
        "zero_cell": options.zero_cell, "studies_in_table": int(len(data)), "studies": "; ".join(pooled),
        "note": note,
    }
    if result is None:
        row.update(k=0, estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, Q_p=np.nan, I2=np.nan, tau2=np.nan)
        row["note"] = note or ("no studies" if len(data) == 0 else "not estimable: no study with an estimable effect")
        return row
    row.update(
        k=int(result.k), estimate=display_value(result, result.estimate), ci_low=display_value(result, result.ci_low),
        ci_high=display_value(result, result.ci_high), p_value=float(result.p_value),
        Q_p=float(result.Q_p) if result.k >= 2 else np.nan, I2=float(result.I2) if result.k >= 2 else np.nan,
        tau2=float(result.tau2) if result.model == "random" else np.nan,
    )
    if result.k == 1 and not row["note"]:
        row["note"] = "one pooled study: its own estimate"
    return row


def _leave_one_out_rows(data: pd.DataFrame, primary: MetaResult, opts: BinaryOptions) -> list[dict]:
    """metafor ``leave1out``: each pooled study omitted in turn, same settings."""
    try:
        loo = leave_one_out(primary)
    except DataError as exc:
        return [_sens_row("leave-one-out", "leave-one-out", data, None, opts, note=f"not computed: {exc}")]
    lab, ratio, rows = labels_of(data), primary.is_ratio(), []
    pooled = set(primary.studies.loc[primary.studies["estimable"].astype(bool), "study"].astype(str))
    for r in loo.itertuples(index=False):
        subset = data[data[ARM_COLUMNS["study"]].astype(str) != str(r.study)]
        row = _sens_row("leave-one-out", f"without {lab.get(str(r.study), r.study)}", subset, None, opts,
                        note=str(r.note or ""))
        row.update(
            k=int(r.k), studies="; ".join(sorted(pooled - {str(r.study)})),
            estimate=r.exp_estimate if ratio else r.estimate, ci_low=r.exp_ci_low if ratio else r.ci_low,
            ci_high=r.exp_ci_high if ratio else r.ci_high, p_value=r.p_value, Q_p=r.Q_p, I2=r.I2,
            tau2=r.tau2 if opts.model == "random" else np.nan,
        )
        rows.append(row)
    return rows


def _subset_rows(data: pd.DataFrame, opts: BinaryOptions, high_risk: Iterable[str] | None,
                 source: str | None) -> list[dict]:
    """Randomised trials only, excluding high risk of bias, excluding mixed severity."""
    rows: list[dict] = []

    def subset_row(group: str, name: str, mask, why_empty: str) -> None:
        subset = data[mask]
        note = why_empty if subset.empty else ""
        result = try_pool(subset, opts, source=source) if len(subset) else None
        rows.append(_sens_row(group, name, subset, result, opts, note=note))

    ids = data[ARM_COLUMNS["study"]].astype(str)
    subset_row("design", "randomised trials only", data["randomised"].astype(bool).to_numpy(), "no randomised trial in this set")
    if high_risk is None:
        rows.append(_sens_row("risk of bias", "excluding high risk of bias", data.iloc[0:0], None, opts,
                              note="not computed: risk-of-bias assessments not available"))
    else:
        high = set(map(str, high_risk))
        n_dropped = sum(s in high for s in ids)
        subset_row("risk of bias", f"excluding high/serious risk of bias ({n_dropped} studies excluded)",
                   ~ids.isin(high).to_numpy(), "every study is at high/serious risk of bias")
    subset_row("severity", "excluding mixed-severity populations", (data["severity"].astype(str) != "mixed").to_numpy(),
               "every study enrolled a mixed-severity population")
    return rows


def _convention_rows(data: pd.DataFrame, opts: BinaryOptions, source: str | None) -> list[dict]:
    """The other zero-cell convention and the other effect measures, same studies."""
    other_zero = "none" if opts.zero_cell == "revman" else "revman"
    zopts = opts.replace(zero_cell=other_zero)
    name = "exact MH (no continuity correction)" if other_zero == "none" else "RevMan 0.5 correction"
    rows = [_sens_row("zero cells", name, data, try_pool(data, zopts, source=source), zopts)]
    for m in MH_MEASURES:
        if m != opts.measure:
            mopts = opts.replace(measure=m)
            rows.append(_sens_row("measure", f"{m} instead of {opts.measure}", data, try_pool(data, mopts, source=source), mopts))
    return rows


def sensitivity_analyses(
    data: pd.DataFrame,
    options: BinaryOptions,
    *,
    scenario_data: Mapping[str, pd.DataFrame] | None = None,
    high_risk: Iterable[str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """``sensitivity_mortality.csv``: the primary analysis re-run on other sets and conventions.

    Rows (``group``): ``primary``; ``leave-one-out`` (metafor ``leave1out``: each pooled
    study omitted in turn, same settings); ``design`` (randomised trials only);
    ``risk of bias`` (excluding studies at high risk: RoB 2 "high" or ROBINS-I
    "serious"/"critical" overall, :func:`mscmeta.review.quality.high_risk_studies`);
    ``severity`` (excluding studies with a mixed-severity population); ``scenario``
    (each other inclusion scenario); ``zero cells`` (the other convention); ``measure``
    (the other effect measures). Estimates on the ratio scale for OR/RR.

    Parameters
    ----------
    data : DataFrame
        The rows of the primary analysis (``analysis_mortality.csv``).
    options : BinaryOptions
        Engine options of the primary analysis (:func:`~mscmeta.review.mortality.main_specs` ``[0].options``).
    scenario_data : mapping, optional
        Scenario name → its analysis rows (the other inclusion scenarios).
    high_risk : iterable of str, optional
        study_ids at high risk of bias; ``None`` = assessments not available (row noted).
    """
    primary = try_pool(data, options, source=source)
    rows = [_sens_row("primary", "primary analysis", data, primary, options)]
    if primary is not None:
        rows += _leave_one_out_rows(data, primary, options)
    rows += _subset_rows(data, options, high_risk, source)
    for name, sdata in (scenario_data or {}).items():
        result = try_pool(sdata, options, source=source) if len(sdata) else None
        rows.append(_sens_row("scenario", f"'{name}' inclusion set", sdata, result, options))
    rows += _convention_rows(data, options, source)
    return pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))


def influence_table(data: pd.DataFrame, options: BinaryOptions, source: str | None = None) -> pd.DataFrame:
    """Influence diagnostics (metafor ``influence.rma.uni``) of the primary analysis' IV counterpart.

    metafor offers ``influence()`` only for inverse-variance models; for a Mantel-Haenszel
    analysis the same studies are refitted by inverse variance with the same model,
    τ² estimator and zero-cell convention. Returns ``study_id, label`` plus the columns of
    :func:`mscmeta.engine.sensitivity.influence`; an empty table with a ``note`` when there are
    too few studies.
    """
    res = try_pool(data, options.replace(method="IV"), source=source)
    if res is None:
        return pd.DataFrame({"study_id": [], "label": [], "note": []})
    try:
        out = influence(res)
    except DataError as exc:
        return pd.DataFrame({"study_id": [""], "label": [""], "note": [f"not computed: {exc}"]})
    lab = labels_of(data)
    out.insert(0, "label", out["study"].astype(str).map(lab))
    out = out.rename(columns={"study": "study_id"})
    out["model"] = f"IV {res.model}" + (f", tau2 {res.tau2_method}" if res.model == "random" else "")
    return out


def cumulative_table(result, data: pd.DataFrame) -> pd.DataFrame:
    """Cumulative meta-analysis by publication date (metafor ``cumul``; Lau et al. 1992).

    Studies are added in order of ``pub_date`` (ISO date; a study dated by year only
    sorts before the dated studies of that year; ties in study_id order). Estimates on
    the ratio scale for OR/RR.
    """

    if result is None:
        return pd.DataFrame(columns=["step", "study_id", "label", "pub_date", "k", "estimate", "ci_low", "ci_high", "note"])
    order = pd.Series(data["pub_date"].astype(str).to_numpy(), index=data[ARM_COLUMNS["study"]].astype(str))
    try:
        cum = cumulative(result, order)
    except DataError as exc:
        return pd.DataFrame({"step": [0], "note": [f"not computed: {exc}"]})
    lab = labels_of(data)
    out = pd.DataFrame({
        "step": cum["step"], "study_id": cum["study"], "label": cum["study"].astype(str).map(lab),
        "pub_date": cum["order_value"], "k": cum["k"],
        "estimate": cum["exp_estimate"] if result.is_ratio() else cum["estimate"],
        "ci_low": cum["exp_ci_low"] if result.is_ratio() else cum["ci_low"],
        "ci_high": cum["exp_ci_high"] if result.is_ratio() else cum["ci_high"],
        "p_value": cum["p_value"], "Q_p": cum["Q_p"], "I2": cum["I2"], "note": cum["note"].fillna(""),
    })
    return out


def sensitivity_markdown(table: pd.DataFrame) -> str:
    """Findings of the sensitivity analyses, numbers from *table*."""
    prim = table[table["group"] == "primary"].iloc[0]
    m = prim["measure"]
    null = 0.0 if m == "RD" else 1.0
    lines = []
    loo = table[(table["group"] == "leave-one-out") & np.isfinite(table["estimate"].astype(float))]
    if len(loo):
        lo, hi = loo.loc[loo["estimate"].idxmin()], loo.loc[loo["estimate"].idxmax()]
        lines.append(f"- Leave-one-out: the {m} ranges from {lo['estimate']:.2f} ({lo['analysis']}) to {hi['estimate']:.2f} "
                     f"({hi['analysis']}); primary {prim['estimate']:.2f}.")
    same = table[(table["measure"] == m) & np.isfinite(table["estimate"].astype(float))]
    crosses = same[(same["ci_low"] <= null) & (same["ci_high"] >= null)]
    lines.append(f"- {len(crosses)} of {len(same)} analyses on the {m} scale have a 95% CI that includes {null:g}"
                 + (f": {', '.join(crosses['analysis'])}." if len(crosses) else "."))
    for group in ("design", "risk of bias", "severity", "scenario", "zero cells", "measure"):
        for r in table[table["group"] == group].itertuples(index=False):
            if np.isfinite(r.estimate):
                lines.append(f"- {r.analysis}: {r.measure} {fmt_ci(r.estimate, r.ci_low, r.ci_high)}, k = {int(r.k)}.")
            else:
                lines.append(f"- {r.analysis}: {r.note or 'not estimable'}.")
    return "\n".join(lines) + "\n"
