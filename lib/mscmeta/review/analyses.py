"""The mortality analysis set of notebooks 03-pool and 04-subgroup.

Everything the notebooks show is computed here, from the per-study rows of
``analysis_mortality.csv`` (one row per study: ``study_id, label, events_msc, n_msc,
events_control, n_control`` plus study characteristics):

* :func:`main_analyses` -- the primary analysis chosen by the notebook parameters
  (default: RevMan 5's default for dichotomous outcomes, Mantel-Haenszel fixed-effect
  odds ratio with 0.5 added to every cell of a study with a zero cell, double-zero
  studies not estimable; Cochrane Handbook 5.1 §9.4.4, §16.9.3 and §9.4.10) and beside it the
  exact MH estimate (no continuity correction; metafor ``rma.mh`` default), the
  DerSimonian-Laird random-effects model and REML with the Hartung-Knapp-Sidik-Jonkman
  adjustment and a prediction interval (metafor ``rma(method="REML", test="knha")``;
  ``predict``);
* :func:`pooled_table` and :func:`studies_table` -- ``pooled_mortality.csv`` and
  ``mortality_studies.csv``;
* :func:`sensitivity_analyses` and :func:`sensitivity_plot` -- leave-one-out,
  randomised trials only, excluding high risk of bias, excluding mixed severity, the
  other inclusion scenarios, the other zero-cell convention and the other effect
  measures;
* :func:`influence_table`, :func:`cumulative_table`/:func:`cumulative_plot`,
  :func:`small_study_table` -- influence diagnostics, cumulative meta-analysis by
  publication date, small-study-effect tests;
* :func:`subgroup_table` and :data:`SUBGROUP_FACTORS` -- the subgroup analyses of 04.

Ratio measures (OR, RR) are reported on the ratio scale in every table
(``exp`` of the analysis-scale estimate), the risk difference as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mscmeta.plots import style

#: Our column names for the engine's canonical binary columns.
COLUMNS: dict[str, str] = {
    "study": "study_id",
    "events_t": "events_msc",
    "n_t": "n_msc",
    "events_c": "events_control",
    "n_c": "n_control",
}
#: Measures, models, zero-cell conventions and tau² estimators the notebooks accept.
MEASURES = ("OR", "RR", "RD")
MODELS = ("fixed", "random")
ZERO_CELLS = ("revman", "none")
TAU2_METHODS = ("DL", "REML", "PM", "SJ", "HE", "ML", "EB")


class AnalysisOptionError(ValueError):
    """A notebook parameter (measure, model, zero_cell, tau2_method, scenario) is not valid."""


def check_options(measure: str, model: str, zero_cell: str, tau2_method: str) -> tuple[str, str, str, str]:
    """Validate and normalise the notebook parameters.

    Raises
    ------
    AnalysisOptionError
        Naming the parameter, the value given and the valid values.
    """
    checks = (
        ("measure", str(measure).upper(), MEASURES),
        ("model", str(model).lower(), MODELS),
        ("zero_cell", str(zero_cell).lower(), ZERO_CELLS),
        ("tau2_method", str(tau2_method).upper(), TAU2_METHODS),
    )
    out = []
    for name, value, valid in checks:
        if value not in valid:
            raise AnalysisOptionError(f"parameter {name}={value!r} is not valid; use one of: {', '.join(valid)}")
        out.append(value)
    return tuple(out)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Running the engine
# ---------------------------------------------------------------------------


def pool(data: pd.DataFrame, source: str | None = None, **kwargs):
    """:func:`mscmeta.engine.binary.meta_binary` on our column names."""
    from mscmeta.engine.binary import meta_binary

    return meta_binary(data, columns=COLUMNS, source=source, **kwargs)


def try_pool(data: pd.DataFrame, source: str | None = None, **kwargs):
    """:func:`pool`, but ``None`` when no study carries information (e.g. all double zero)."""
    from mscmeta.engine.validation import NotEstimableError

    if len(data) == 0:
        return None
    try:
        return pool(data, source=source, **kwargs)
    except NotEstimableError:
        return None


@dataclass(frozen=True)
class AnalysisSpec:
    """One named pooled analysis: a label, a sentence naming its conventions, engine options."""

    name: str
    description: str
    options: dict = field(default_factory=dict)


def _describe(options: Mapping) -> str:
    """One phrase naming the method, model, measure and zero-cell convention of *options*."""
    measure = options["measure"]
    tau = str(options.get("tau2_method", "DL")).upper()
    if options.get("model") == "random":
        ci = "Hartung-Knapp-Sidik-Jonkman CI" if options.get("hksj") else "normal-based CI"
        if options.get("method") == "MH" and tau == "DL":
            what = (f"RevMan 'M-H, Random' {measure}: DerSimonian-Laird τ² from the MH-based Q, inverse-variance "
                    f"pooling, {ci}")
        else:
            what = f"inverse-variance random-effects {measure}, τ² by {tau}, {ci}"
    elif options.get("method") == "MH":
        what = f"Mantel-Haenszel fixed-effect {measure}"
    else:
        what = f"inverse-variance fixed-effect {measure}"
    if options["zero_cell"] == "revman":
        zc = "RevMan 0.5 zero-cell correction" + (" (also inside MH)" if options.get("method") == "MH" and options.get("model") != "random" else "")
    else:
        zc = "no continuity correction in the MH estimator" if options.get("method") == "MH" and options.get("model") != "random" else "0.5 added to zero-cell studies' estimates"
    return f"{what}; {zc}"


def main_specs(measure: str = "OR", model: str = "fixed", zero_cell: str = "revman", tau2_method: str = "DL") -> list[AnalysisSpec]:
    """The analyses of ``pooled_mortality.csv``: the primary one and its comparators.

    The primary analysis follows the notebook parameters (default: MH fixed-effect OR,
    RevMan zero-cell convention). The comparators are always the exact MH fixed-effect
    estimate (``zero_cell="none"``), DerSimonian-Laird random effects (RevMan's
    "M-H, Random": DL τ² from Cochran's Q around the MH estimate) and REML with
    HKSJ and a prediction interval, all for the same measure. A comparator identical
    to the primary analysis is left out.
    """
    measure, model, zero_cell, tau2_method = check_options(measure, model, zero_cell, tau2_method)
    primary = dict(measure=measure, method="MH", model=model, zero_cell=zero_cell, tau2_method=tau2_method, hksj=False)
    comparators = [
        ("MH RevMan", dict(measure=measure, method="MH", model="fixed", zero_cell="revman", tau2_method="DL", hksj=False)),
        ("MH exact", dict(measure=measure, method="MH", model="fixed", zero_cell="none", tau2_method="DL", hksj=False)),
        ("DL random", dict(measure=measure, method="MH", model="random", zero_cell=zero_cell, tau2_method="DL", hksj=False)),
        ("REML + HKSJ", dict(measure=measure, method="IV", model="random", zero_cell=zero_cell, tau2_method="REML", hksj=True)),
    ]
    def same(a: Mapping, b: Mapping) -> bool:  # tau² estimator is irrelevant for fixed-effect models
        strip = ("tau2_method",) if a["model"] == b["model"] == "fixed" else ()
        return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}

    specs = [AnalysisSpec("primary", _describe(primary), primary)]
    specs += [AnalysisSpec(name, _describe(opts), opts) for name, opts in comparators if not same(opts, primary)]
    return specs


def main_analyses(data: pd.DataFrame, specs: Sequence[AnalysisSpec], source: str | None = None) -> dict[str, object]:
    """Run every spec on *data*; a spec that cannot be estimated maps to ``None``."""
    return {spec.name: try_pool(data, source=source, **spec.options) for spec in specs}


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


def _display(result, value: float) -> float:
    if value is None or not np.isfinite(value):
        return np.nan
    return float(np.exp(value)) if result.is_ratio() else float(value)


POOLED_COLUMNS = (
    "analysis", "description", "scenario", "model", "method", "tau2_method", "hksj", "measure", "zero_cell", "k",
    "studies_in_table", "events_msc", "n_msc", "events_control", "n_control", "estimate", "ci_low", "ci_high",
    "p_value", "Q", "Q_df", "Q_p", "I2", "I2_ci_low", "I2_ci_high", "tau2", "pi_low", "pi_high",
)


def pooled_row(name: str, result, data: pd.DataFrame, scenario: str, description: str = "", options: Mapping | None = None) -> dict:
    """One row of ``pooled_mortality.csv`` (ratio scale for OR/RR).

    ``k`` counts the studies that entered the pooled estimate; ``studies_in_table`` all
    rows of the analysis table (double-zero studies included), and the events/totals
    are summed over all of them, as in RevMan's "Total" row.
    """
    options = dict(options or {})
    row = {
        "analysis": name,
        "description": description,
        "scenario": scenario,
        "model": options.get("model", getattr(result, "model", "")),
        "method": options.get("method", getattr(result, "method", "")),
        "tau2_method": options.get("tau2_method", getattr(result, "tau2_method", "")) if options.get("model", getattr(result, "model", "")) == "random" else "",
        "hksj": bool(options.get("hksj", getattr(result, "hksj", False))),
        "measure": options.get("measure", getattr(result, "measure", "")),
        "zero_cell": options.get("zero_cell", getattr(result, "zero_cell", "")),
        "studies_in_table": int(len(data)),
        "events_msc": int(data[COLUMNS["events_t"]].sum()),
        "n_msc": int(data[COLUMNS["n_t"]].sum()),
        "events_control": int(data[COLUMNS["events_c"]].sum()),
        "n_control": int(data[COLUMNS["n_c"]].sum()),
    }
    if result is None:
        row.update(k=0, estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, Q=np.nan, Q_df=np.nan,
                   Q_p=np.nan, I2=np.nan, I2_ci_low=np.nan, I2_ci_high=np.nan, tau2=np.nan, pi_low=np.nan, pi_high=np.nan)
        return row
    i2_ci = getattr(result, "I2_ci", None)
    i2_lo, i2_hi = (i2_ci if i2_ci is not None and len(i2_ci) == 2 else (np.nan, np.nan))
    row.update(
        k=int(result.k),
        estimate=_display(result, result.estimate),
        ci_low=_display(result, result.ci_low),
        ci_high=_display(result, result.ci_high),
        p_value=float(result.p_value),
        Q=float(result.Q),
        Q_df=int(result.Q_df),
        Q_p=float(result.Q_p),
        I2=float(result.I2),
        I2_ci_low=float(i2_lo) if i2_lo is not None else np.nan,
        I2_ci_high=float(i2_hi) if i2_hi is not None else np.nan,
        tau2=float(result.tau2) if result.model == "random" else np.nan,
        pi_low=_display(result, getattr(result, "pi_low", np.nan)),
        pi_high=_display(result, getattr(result, "pi_high", np.nan)),
    )
    return row


def pooled_table(results: Mapping[str, object], specs: Sequence[AnalysisSpec], data: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """``pooled_mortality.csv``: one row per analysis, in the order of *specs*."""
    rows = [pooled_row(s.name, results[s.name], data, scenario, s.description, s.options) for s in specs]
    return pd.DataFrame(rows, columns=list(POOLED_COLUMNS))


STUDY_COLUMNS = (
    "study_id", "label", "events_msc", "n_msc", "events_control", "n_control", "weight", "estimate", "ci_low",
    "ci_high", "yi", "vi", "estimable", "note", "measure", "zero_cell", "source_level",
)


def studies_table(result, data: pd.DataFrame) -> pd.DataFrame:
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
            "study_id": d[COLUMNS["study"]].astype(str),
            "label": d["label"].astype(str) if "label" in d.columns else d[COLUMNS["study"]].astype(str),
            "events_msc": d[COLUMNS["events_t"]].astype(int),
            "n_msc": d[COLUMNS["n_t"]].astype(int),
            "events_control": d[COLUMNS["events_c"]].astype(int),
            "n_control": d[COLUMNS["n_c"]].astype(int),
            "weight": s["weight"].astype(float),
            "estimate": [_display(result, v) for v in s["yi"]],
            "ci_low": [_display(result, v) for v in s["ci_low"]],
            "ci_high": [_display(result, v) for v in s["ci_high"]],
            "yi": s["yi"].astype(float),
            "vi": s["vi"].astype(float),
            "estimable": s["estimable"].astype(bool),
            "note": s["note"].fillna("").astype(str),
            "measure": result.measure,
            "zero_cell": result.zero_cell,
            "source_level": d["source_level"].astype(str) if "source_level" in d.columns else "",
        }
    )
    return out.loc[:, list(STUDY_COLUMNS)]


class _NotPooled:
    """Stand-in for a result when nothing could be pooled (tables keep their columns)."""

    measure = ""
    zero_cell = ""

    @staticmethod
    def is_ratio() -> bool:
        return False


def labels_of(data: pd.DataFrame) -> dict[str, str]:
    """study_id → display label (e.g. "Adas 2021")."""
    if "label" not in data.columns:
        return {str(s): str(s) for s in data[COLUMNS["study"]]}
    return dict(zip(data[COLUMNS["study"]].astype(str), data["label"].astype(str), strict=True))


# ---------------------------------------------------------------------------
# Small-study effects
# ---------------------------------------------------------------------------

SMALL_STUDY_COLUMNS = (
    "test", "k", "statistic_name", "statistic", "df", "p_value", "coefficient", "limit_estimate", "limit_ci_low",
    "limit_ci_high", "method", "caveat",
)


def small_study_table(result, data: pd.DataFrame) -> pd.DataFrame:
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
    from mscmeta.engine import bias
    from mscmeta.engine.validation import DataError

    if result is None:
        return pd.DataFrame([{"test": "all", "k": 0, "caveat": "not computed: nothing was pooled"}],
                            columns=list(SMALL_STUDY_COLUMNS))
    s = result.studies
    ok = s["estimable"].astype(bool) & np.isfinite(s["yi"].astype(float)) & np.isfinite(s["vi"].astype(float))
    yi, vi, labels = s.loc[ok, "yi"].to_numpy(float), s.loc[ok, "vi"].to_numpy(float), s.loc[ok, "study"].astype(str).tolist()
    counts = [data[COLUMNS[c]].to_numpy(float) for c in ("events_t", "n_t", "events_c", "n_c")]
    rows = []

    def add(name: str, run: Callable[[], object], applies: bool = True, why_not: str = "") -> None:
        if not applies:
            rows.append({"test": name, "k": int(ok.sum()), "caveat": why_not})
            return
        try:
            res = run()
        except DataError as exc:
            rows.append({"test": name, "k": int(ok.sum()), "caveat": f"not computed: {exc}"})
            return
        if name == "Trim and fill (L0)":
            rows.append({
                "test": name, "k": res.k, "statistic_name": "k0", "statistic": float(res.k0), "df": np.nan,
                "p_value": np.nan, "coefficient": np.nan,
                "limit_estimate": _display(result, res.estimate), "limit_ci_low": _display(result, res.ci_low),
                "limit_ci_high": _display(result, res.ci_high),
                "method": f"Duval & Tweedie trim and fill, L0 estimator, {res.model}-effect model, side {res.side} (metafor trimfill)",
                "caveat": res.caveat or "",
            })
            return
        rows.append({
            "test": res.test, "k": res.k, "statistic_name": res.statistic_name, "statistic": res.statistic,
            "df": res.df if res.df is not None else np.nan, "p_value": res.p_value, "coefficient": res.coefficient,
            "limit_estimate": _display(result, res.limit_estimate) if res.test != "Begg" else np.nan,
            "limit_ci_low": _display(result, res.limit_ci_low) if res.test != "Begg" else np.nan,
            "limit_ci_high": _display(result, res.limit_ci_high) if res.test != "Begg" else np.nan,
            "method": res.method, "caveat": res.caveat or "",
        })

    is_or = str(result.measure).upper() == "OR"
    add("Egger", lambda: bias.egger_test(yi, vi, studies=labels))
    add("Begg", lambda: bias.begg_test(yi, vi, studies=labels))
    add("Peters", lambda: bias.peters_test(*counts), is_or, "not applicable: Peters' test is defined for odds ratios")
    add("Harbord", lambda: bias.harbord_test(*counts), is_or, "not applicable: Harbord's test is defined for odds ratios")
    add(
        "Trim and fill (L0)",
        lambda: bias.trim_and_fill(
            yi, vi, model="random" if result.model == "random" else "fixed",
            tau2_method="REML" if str(result.tau2_method or "").upper().startswith("REML") else "DL",
            measure=str(result.measure), studies=labels,
        ),
    )
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


# ---------------------------------------------------------------------------
# Subgroups
# ---------------------------------------------------------------------------

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
    d = d.assign(_rank=key).sort_values(["_rank", COLUMNS["study"]], kind="mergesort").drop(columns="_rank")
    return d.reset_index(drop=True)


def run_subgroups(data: pd.DataFrame, factor: SubgroupFactor, options: Mapping, source: str | None = None):
    """:func:`mscmeta.engine.subgroups.subgroup_analysis` of *data* by *factor*.

    ``None`` when there are fewer than two subgroups (nothing to compare) or no study has
    an estimable effect.
    """
    from mscmeta.engine.subgroups import subgroup_analysis
    from mscmeta.engine.validation import NotEstimableError

    d = grouped(data, factor)
    if d[GROUP_COLUMN].nunique() < 2:
        return None
    try:
        return subgroup_analysis(d, GROUP_COLUMN, columns=COLUMNS, source=source, **dict(options))
    except NotEstimableError:
        return None


SUBGROUP_COLUMNS = (
    "factor", "subgroup", "studies", "k", "events_msc", "n_msc", "events_control", "n_control", "estimate", "ci_low",
    "ci_high", "p_value", "Q", "Q_df", "Q_p", "I2", "tau2", "Q_between", "df_between", "p_between", "measure", "model",
    "zero_cell", "note",
)


def subgroup_rows(factor: SubgroupFactor, data: pd.DataFrame, sg) -> list[dict]:
    """Rows of ``subgroups_mortality.csv`` for one factor (one per subgroup, then the overall)."""
    d = grouped(data, factor)
    groups = d[GROUP_COLUMN]
    rows = []
    if sg is None:
        labels = sorted(set(groups))
        why = ("single subgroup: no subgroup comparison possible" if len(labels) < 2
               else "not estimable: no study has an estimable effect")
        return [{"factor": factor.name, "subgroup": "; ".join(labels), "studies": "; ".join(d[COLUMNS["study"]].astype(str)),
                 "k": 0, "note": why}]
    for name, sub in sg.subgroups.items():
        members = d[groups.to_numpy() == str(name)]
        row = {
            "factor": factor.name, "subgroup": str(name),
            "studies": "; ".join(members[COLUMNS["study"]].astype(str)),
            "events_msc": int(members[COLUMNS["events_t"]].sum()), "n_msc": int(members[COLUMNS["n_t"]].sum()),
            "events_control": int(members[COLUMNS["events_c"]].sum()), "n_control": int(members[COLUMNS["n_c"]].sum()),
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
    overall = {"factor": factor.name, "subgroup": "overall", "studies": "; ".join(data[COLUMNS["study"]].astype(str)),
               "events_msc": int(data[COLUMNS["events_t"]].sum()), "n_msc": int(data[COLUMNS["n_t"]].sum()),
               "events_control": int(data[COLUMNS["events_c"]].sum()), "n_control": int(data[COLUMNS["n_c"]].sum()),
               "Q_between": sg.Q_between, "df_between": sg.df_between, "p_between": sg.p_between}
    overall.update(_stats(sg.overall))
    rows.append(overall)
    return rows


def _stats(result) -> dict:
    return {
        "k": int(result.k), "estimate": _display(result, result.estimate), "ci_low": _display(result, result.ci_low),
        "ci_high": _display(result, result.ci_high), "p_value": float(result.p_value), "Q": float(result.Q),
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


# ---------------------------------------------------------------------------
# Sensitivity analyses
# ---------------------------------------------------------------------------

SENSITIVITY_COLUMNS = (
    "group", "analysis", "measure", "model", "zero_cell", "k", "studies_in_table", "studies", "estimate", "ci_low",
    "ci_high", "p_value", "Q_p", "I2", "tau2", "note",
)


def _sens_row(group: str, analysis: str, data: pd.DataFrame, result, options: Mapping, note: str = "") -> dict:
    pooled = []
    if result is not None:
        s = result.studies
        pooled = list(s.loc[s["estimable"].astype(bool), "study"].astype(str))
    row = {
        "group": group, "analysis": analysis, "measure": options["measure"], "model": options["model"],
        "zero_cell": options["zero_cell"], "studies_in_table": int(len(data)), "studies": "; ".join(pooled),
        "note": note,
    }
    if result is None:
        row.update(k=0, estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, Q_p=np.nan, I2=np.nan, tau2=np.nan)
        row["note"] = note or ("no studies" if len(data) == 0 else "not estimable: no study with an estimable effect")
        return row
    row.update(
        k=int(result.k), estimate=_display(result, result.estimate), ci_low=_display(result, result.ci_low),
        ci_high=_display(result, result.ci_high), p_value=float(result.p_value),
        Q_p=float(result.Q_p) if result.k >= 2 else np.nan, I2=float(result.I2) if result.k >= 2 else np.nan,
        tau2=float(result.tau2) if result.model == "random" else np.nan,
    )
    if result.k == 1 and not row["note"]:
        row["note"] = "one pooled study: its own estimate"
    return row


def sensitivity_analyses(
    data: pd.DataFrame,
    options: Mapping,
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
    options : mapping
        Engine options of the primary analysis (:func:`main_specs` ``[0].options``).
    scenario_data : mapping, optional
        Scenario name → its analysis rows (the other inclusion scenarios).
    high_risk : iterable of str, optional
        study_ids at high risk of bias; ``None`` = assessments not available (row noted).
    """
    from mscmeta.engine.sensitivity import leave_one_out
    from mscmeta.engine.validation import DataError

    opts = dict(options)
    lab = labels_of(data)
    primary = try_pool(data, source=source, **opts)
    rows = [_sens_row("primary", "primary analysis", data, primary, opts)]

    if primary is not None:
        try:
            loo = leave_one_out(primary)
        except DataError as exc:
            rows.append(_sens_row("leave-one-out", "leave-one-out", data, None, opts, note=f"not computed: {exc}"))
        else:
            ratio = primary.is_ratio()
            pooled = set(primary.studies.loc[primary.studies["estimable"].astype(bool), "study"].astype(str))
            for r in loo.itertuples(index=False):
                subset = data[data[COLUMNS["study"]].astype(str) != str(r.study)]
                row = _sens_row("leave-one-out", f"without {lab.get(str(r.study), r.study)}", subset, None, opts,
                                note=str(r.note or ""))
                row.update(
                    k=int(r.k), studies="; ".join(sorted(pooled - {str(r.study)})),
                    estimate=r.exp_estimate if ratio else r.estimate, ci_low=r.exp_ci_low if ratio else r.ci_low,
                    ci_high=r.exp_ci_high if ratio else r.ci_high, p_value=r.p_value, Q_p=r.Q_p, I2=r.I2,
                    tau2=r.tau2 if opts["model"] == "random" else np.nan,
                )
                rows.append(row)

    def subset_row(group: str, name: str, mask, why_empty: str) -> None:
        subset = data[mask]
        note = why_empty if subset.empty else ""
        rows.append(_sens_row(group, name, subset, try_pool(subset, source=source, **opts) if len(subset) else None, opts, note=note))

    subset_row("design", "randomised trials only", data["randomised"].astype(bool).to_numpy(), "no randomised trial in this set")
    if high_risk is None:
        rows.append(_sens_row("risk of bias", "excluding high risk of bias", data.iloc[0:0], None, opts,
                              note="not computed: risk-of-bias assessments not available"))
    else:
        high = set(map(str, high_risk))
        dropped = [lab[s] for s in data[COLUMNS["study"]].astype(str) if s in high]
        subset_row("risk of bias", f"excluding high/serious risk of bias ({len(dropped)} studies excluded)",
                   ~data[COLUMNS["study"]].astype(str).isin(high).to_numpy(), "every study is at high/serious risk of bias")
    subset_row("severity", "excluding mixed-severity populations", (data["severity"].astype(str) != "mixed").to_numpy(),
               "every study enrolled a mixed-severity population")
    for name, sdata in (scenario_data or {}).items():
        rows.append(_sens_row("scenario", f"'{name}' inclusion set", sdata, try_pool(sdata, source=source, **opts) if len(sdata) else None, opts))
    other_zero = "none" if opts["zero_cell"] == "revman" else "revman"
    zopts = {**opts, "zero_cell": other_zero}
    rows.append(_sens_row("zero cells", "exact MH (no continuity correction)" if other_zero == "none" else "RevMan 0.5 correction",
                          data, try_pool(data, source=source, **zopts), zopts))
    for m in MEASURES:
        if m == opts["measure"]:
            continue
        mopts = {**opts, "measure": m}
        rows.append(_sens_row("measure", f"{m} instead of {opts['measure']}", data, try_pool(data, source=source, **mopts), mopts))
    return pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))


def sensitivity_plot(table: pd.DataFrame, width: float = style.PAGE_WIDTH):
    """Summary plot of the sensitivity analyses: one row each, estimate with CI.

    The primary analysis is drawn as a vertical dashed line with its CI shaded; rows on a
    different scale (e.g. RD when the primary is a ratio) are listed but not drawn.
    """
    import matplotlib.pyplot as plt

    primary = table[table["group"] == "primary"].iloc[0]
    ratio = primary["measure"] in ("OR", "RR")
    same_scale = table["measure"].isin(["OR", "RR"]) if ratio else table["measure"] == primary["measure"]
    from matplotlib.transforms import blended_transform_factory

    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.55 + 0.16 * n))
    ys = np.arange(n)
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    for y, r, ok in zip(ys, table.itertuples(index=False), same_scale, strict=True):
        if ok and np.isfinite(r.estimate):
            colour = style.POOLED_COLOUR if r.group == "primary" else style.MSC_COLOUR
            marker = "D" if r.group == "primary" else ("o" if r.measure == primary["measure"] else "s")
            lo, hi = r.ci_low, r.ci_high
            ax.plot([lo, hi], [y, y], color=colour, lw=0.8)
            ax.plot([r.estimate], [y], marker=marker, color=colour, ms=3.5)
        else:
            why = "other scale" if not ok else "not estimable"
            ax.text(0.5, y, why, fontsize=5.5, color=style.GREY, va="center", ha="center", transform=text_at)
    if np.isfinite(primary["estimate"]):
        ax.axvspan(primary["ci_low"], primary["ci_high"], color=style.GREY, alpha=0.15, lw=0)
        ax.axvline(primary["estimate"], color=style.POOLED_COLOUR, lw=0.6, ls="--")
    ax.axvline(1.0 if ratio else 0.0, color="black", lw=0.6)
    if ratio:
        ax.set_xscale("log")
        from matplotlib.ticker import FixedLocator, NullLocator

        finite = table.loc[same_scale, ["ci_low", "ci_high"]].to_numpy(float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        lo = min(0.5, float(finite.min())) if finite.size else 0.1
        hi = max(2.0, float(finite.max())) if finite.size else 10.0
        lo, hi = max(lo, 1e-3), min(hi, 1e3)
        ticks = [t for t in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 100, 1000) if lo * 0.999 <= t <= hi * 1.001]
        ax.set_xlim(lo * 0.9, hi * 1.1)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_xlabel(f"{primary['measure']} (log scale; primary {primary['measure']} dashed, its CI shaded)")
    else:
        vals = table.loc[same_scale, ["ci_low", "ci_high"]].to_numpy(float)
        vals = np.append(vals[np.isfinite(vals)], 0.0)
        pad = 0.08 * max(float(vals.max() - vals.min()), 1e-3)
        ax.set_xlim(float(vals.min()) - pad, float(vals.max()) + pad)
        ax.set_xlabel(f"{primary['measure']} (primary dashed, its CI shaded)")
    for y, r in enumerate(table.itertuples(index=False)):
        txt = f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.estimate) else "not estimable"
        ax.text(1.02, y, f"{txt}  k = {int(r.k)}", transform=text_at, fontsize=5.5, va="center", ha="left")
    ylabels = [f"{r.group}: {r.analysis}" if r.group != "primary" else "PRIMARY ANALYSIS" for r in table.itertuples(index=False)]
    ax.set_yticks(ys)
    ax.set_yticklabels(ylabels, fontsize=6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Influence and cumulative meta-analysis
# ---------------------------------------------------------------------------


def influence_table(data: pd.DataFrame, options: Mapping, source: str | None = None) -> pd.DataFrame:
    """Influence diagnostics (metafor ``influence.rma.uni``) of the primary analysis' IV counterpart.

    metafor offers ``influence()`` only for inverse-variance models; for a Mantel-Haenszel
    analysis the same studies are refitted by inverse variance with the same model,
    τ² estimator and zero-cell convention. Returns ``study_id, label`` plus the columns of
    :func:`mscmeta.engine.sensitivity.influence`; an empty table with a ``note`` when there are
    too few studies.
    """
    from mscmeta.engine.sensitivity import influence
    from mscmeta.engine.validation import DataError

    opts = {**options, "method": "IV"}
    res = try_pool(data, source=source, **opts)
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
    from mscmeta.engine.sensitivity import cumulative
    from mscmeta.engine.validation import DataError

    if result is None:
        return pd.DataFrame(columns=["step", "study_id", "label", "pub_date", "k", "estimate", "ci_low", "ci_high", "note"])
    order = pd.Series(data["pub_date"].astype(str).to_numpy(), index=data[COLUMNS["study"]].astype(str))
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


def cumulative_plot(table: pd.DataFrame, measure: str, width: float = style.PAGE_WIDTH * 0.8):
    """Cumulative estimates with CIs, one row per added study (top = earliest)."""
    import matplotlib.pyplot as plt

    ratio = measure in ("OR", "RR")
    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.6 + 0.17 * max(n, 1)))
    for y, r in enumerate(table.itertuples(index=False)):
        if np.isfinite(r.estimate):
            ax.plot([r.ci_low, r.ci_high], [y, y], color=style.MSC_COLOUR, lw=0.8)
            ax.plot([r.estimate], [y], "o", color=style.MSC_COLOUR, ms=3)
    ax.axvline(1.0 if ratio else 0.0, color="black", lw=0.6)
    if ratio:
        ax.set_xscale("log")
        from matplotlib.ticker import FixedLocator, NullLocator

        vals = table[["ci_low", "ci_high"]].to_numpy(float)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        lo = max(min(0.5, float(vals.min())) if vals.size else 0.1, 1e-3)
        hi = min(max(2.0, float(vals.max())) if vals.size else 10.0, 1e3)
        ticks = [t for t in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 100, 1000) if lo * 0.999 <= t <= hi * 1.001]
        ax.set_xlim(lo * 0.9, hi * 1.1)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_xlabel(f"Cumulative {measure} (log scale)")
    else:
        ax.set_xlabel(f"Cumulative {measure}")
    from matplotlib.transforms import blended_transform_factory

    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    for y, r in enumerate(table.itertuples(index=False)):
        txt = f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  k = {int(r.k)}" if np.isfinite(r.estimate) else "not estimable"
        ax.text(1.02, y, txt, transform=text_at, fontsize=5.5, va="center", ha="left")
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"+ {r.label} ({r.pub_date})" for r in table.itertuples(index=False)], fontsize=6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Stage inputs and generated narrative (notebooks 03 and 04)
# ---------------------------------------------------------------------------


@dataclass
class StageInputs:
    """What notebooks 03 and 04 read: the validated raw sheets, the analysis rows of the
    chosen scenario and of the others, the risk-of-bias assessments (if any) and the
    published values."""

    raw: object
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

    The analysis rows come from the raw sheets (:func:`mscmeta.review.data.analysis_mortality`,
    the same function stage 01 uses to write ``analysis_mortality.csv``), so every
    scenario is available for the sensitivity analyses. Risk of bias is read from
    ``<tables_in>/risk_of_bias.csv`` (stage 02) or, failing that, ``<data_dir>/risk_of_bias.csv``.

    Raises
    ------
    mscmeta.review.data.DataError
        Invalid raw data (all problems listed) or an unknown scenario.
    """
    from pathlib import Path

    from mscmeta.review.data import analysis_mortality, load_raw, scenarios
    from mscmeta.review.quality import high_risk_studies, load_risk_of_bias
    from mscmeta.review.scorecard import read_published

    raw = load_raw(data_dir, optional_sheets=())  # risk of bias comes from stage 02's table
    data = analysis_mortality(raw, scenario)
    others = {s: analysis_mortality(raw, s) for s in scenarios(raw) if s != scenario}
    rob, rob_source, high = None, "not available", None
    for candidate in (Path(tables_in) / "risk_of_bias.csv", Path(data_dir) / "risk_of_bias.csv"):
        if candidate.exists():
            rob = load_risk_of_bias(candidate)
            rob_source = str(candidate)
            high = high_risk_studies(rob, outcome="mortality" if "mortality" in set(rob["outcome"]) else None)
            break
    pub_path = Path(data_dir) / "published_results.csv"
    published = read_published(pub_path) if pub_path.exists() else None
    return StageInputs(raw, scenario, data, others, rob, rob_source, high, published, f"analysis_mortality (scenario '{scenario}')")


def _ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    if not np.isfinite(est):
        return "not estimable"
    return f"{est:.{digits}f} (95% CI {lo:.{digits}f} to {hi:.{digits}f})"


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "P not defined"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


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
        f"**Primary analysis** ({prim['description']}): {m} {_ci(prim['estimate'], prim['ci_low'], prim['ci_high'])}, "
        f"{_p(prim['p_value'])}; k = {int(prim['k'])} of {int(prim['studies_in_table'])} studies pooled; "
        f"{int(prim['events_msc'])}/{int(prim['n_msc'])} deaths with MSCs vs {int(prim['events_control'])}/{int(prim['n_control'])} with control.",
        "",
    ]
    for r in table.iloc[1:].itertuples(index=False):
        extra = ""
        if r.model == "random":
            extra = f"; τ² = {r.tau2:.3f}"
            if np.isfinite(r.pi_low):
                extra += f"; 95% prediction interval {r.pi_low:.2f} to {r.pi_high:.2f}"
        lines.append(f"- {r.analysis} ({r.description}): {_ci(r.estimate, r.ci_low, r.ci_high)}{extra}.")
    lines.append("")
    if int(prim["k"]) >= 2:
        q, df, qp, i2 = prim["Q"], int(prim["Q_df"]), prim["Q_p"], prim["I2"]
        i2_rows = table[np.isfinite(table["I2_ci_high"].astype(float))]
        i2_ci = ""
        if len(i2_rows):
            r = i2_rows.iloc[-1]
            i2_ci = f" (Q-profile 95% CI {r['I2_ci_low']:.0f}% to {r['I2_ci_high']:.0f}% in the {r['analysis']} fit)"
        lines.append(
            f"**Heterogeneity.** Cochran's Q = {q:.2f} on {df} df ({_p(qp)}); I² = {i2:.0f}%{i2_ci}. "
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
                lines.append(f"- {r.analysis}: {r.measure} {_ci(r.estimate, r.ci_low, r.ci_high)}, k = {int(r.k)}.")
            else:
                lines.append(f"- {r.analysis}: {r.note or 'not estimable'}.")
    return "\n".join(lines) + "\n"


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
                parts.append(f"{r.subgroup} {r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] (k = {int(r.k)})")
            else:
                parts.append(f"{r.subgroup} not estimable")
        qb, dfb, pb = rows.iloc[0]["Q_between"], rows.iloc[0]["df_between"], rows.iloc[0]["p_between"]
        test = (f"test for subgroup differences Chi² = {qb:.2f}, df = {int(dfb)}, {_p(pb)}" if np.isfinite(qb)
                else "no test for subgroup differences (fewer than two estimable subgroups)")
        lines.append(f"- **{factor}**: " + "; ".join(parts) + f"; {test}.")
    lines.append("")
    lines.append("Subgroup comparisons are observational (they compare studies, not randomised groups), rest on few "
                 "studies per subgroup and have little power: a non-significant test for subgroup differences is not "
                 "evidence that the effect is the same across subgroups.")
    return "\n".join(lines) + "\n"


def message_figure(text: str, width: float = style.COLUMN_WIDTH):
    """A small figure carrying only *text* (when a plot cannot be drawn, e.g. nothing estimable)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


def rob_for_forest(rob: pd.DataFrame | None, data: pd.DataFrame) -> pd.DataFrame | None:
    """Overall risk-of-bias judgement per study (RoB 2 for randomised trials, ROBINS-I otherwise)
    as a one-column table for :func:`mscmeta.plots.forest.forest_plot`; ``None`` without assessments."""
    if rob is None:
        return None
    from mscmeta.review.quality import overall_judgements

    outcome = "mortality" if "mortality" in set(rob["outcome"]) else None
    overall = overall_judgements(rob, outcome)
    overall = overall[overall["study_id"].isin(data[COLUMNS["study"]].astype(str))]
    name = "Overall risk of bias (RoB 2 / ROBINS-I)"
    return pd.DataFrame({name: overall["overall"].to_numpy()}, index=overall["study_id"].astype(str).to_numpy())


def forest_figure(result, inputs: StageInputs, title: str | None = None):
    """The RevMan-style forest plot of *result* with study labels and the overall risk of
    bias beside it; a message figure when nothing could be pooled."""
    from mscmeta.plots.forest import forest_plot

    if result is None:
        return message_figure("Not estimable: no study has an estimable effect in this scenario")
    return forest_plot(result, labels=labels_of(inputs.data), rob=rob_for_forest(inputs.rob, inputs.data), title=title)


def funnel_figure(result, data: pd.DataFrame):
    """Contour-enhanced funnel plot of *result* (message figure when nothing was pooled)."""
    from mscmeta.plots.funnel import funnel_plot

    if result is None:
        return message_figure("Not estimable: no funnel plot")
    return funnel_plot(result, labels=labels_of(data))


def subgroup_figure(data: pd.DataFrame, factor: SubgroupFactor, sg):
    """Subgroup forest plot of one factor (message figure when there is nothing to compare)."""
    from mscmeta.plots.forest import subgroup_forest

    if sg is None:
        return message_figure(f"{factor.title}: fewer than two subgroups with data, nothing to compare")
    return subgroup_forest(sg, labels=labels_of(data), data=grouped(data, factor), study_column=COLUMNS["study"],
                           title=factor.title)
