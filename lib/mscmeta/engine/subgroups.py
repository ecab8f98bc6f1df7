"""Subgroup analyses: pooled estimate per subgroup and the test for subgroup differences.

Each subgroup is analysed separately with the same settings as the overall analysis (for
random effects, tau^2 is estimated within each subgroup: RevMan 5, R ``meta`` with
``tau.common=FALSE``). The test for subgroup differences is the one RevMan 5 reports
(Deeks, Altman & Bradburn 2001; Borenstein et al. 2009, ch. 19): with subgroup estimates
``theta_g`` and standard errors ``se_g`` (fixed-effect/MH/Peto or random-effects, as
analysed),

    Q_between = sum_g w_g (theta_g - theta_bar)^2,  w_g = 1/se_g^2,
    theta_bar = sum_g w_g theta_g / sum_g w_g,  df = G - 1,

with a chi-square p-value. For inverse-variance fixed-effect analyses this equals
``Q_total - sum_g Q_within,g`` and metafor's ``QM`` of the model with a subgroup factor.

With ``tau2_common=True`` the between-study variance is instead common to all subgroups
and estimated from the mixed-effects model with the subgroup factor as moderator, and the
test for subgroup differences is that model's omnibus test of the factor: metafor
``rma(yi, vi, mods = ~ factor(group), method=...)``, its ``QM`` (chi-square on G - 1 df;
with HKSJ metafor's ``test="knha"`` F test), fitted to the study-level estimates; each
subgroup is then pooled with the weights ``1/(v_i + tau^2_common)`` (R ``meta``
``tau.common=TRUE``). The two tests can differ a lot with few studies per subgroup (the
RevMan test lets a subgroup's own tau^2 absorb its spread); both are named in
:meth:`SubgroupResult.summary_frame` (column ``between_test``). A common tau^2 applies to
random-effects models only.

Subgroups keep their order of first appearance in the data. A subgroup whose studies carry
no information (e.g. no events in either arm of every study, for OR/RR) is reported as
``None`` ("not estimable") and left out of the test. A subgroup with a single estimable
study reports that study's estimate (k = 1, heterogeneity undefined); under random effects
its estimate is the study's own (tau^2 = 0), as in RevMan and metafor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.heterogeneity import chi2_sf
from mscmeta.engine.metareg import metareg_fit, metareg_qm
from mscmeta.engine.options import SUBGROUP_TESTS, BinaryOptions, normalise_tau2_method
from mscmeta.engine.pooling import fixed_core, fixed_effect, random_core, random_effects, weights_percent
from mscmeta.engine.results import MetaResult, PooledFit
from mscmeta.engine.tau2 import Tau2Estimate
from mscmeta.engine.validation import DataError, NotEstimableError, resolve_columns, validate_generic

#: How :meth:`SubgroupResult.summary_frame` names the two tests for subgroup differences.
BETWEEN_TEST_NAMES: dict[str, str] = {
    SUBGROUP_TESTS[0]: "separate tau2 per subgroup (RevMan)",
    SUBGROUP_TESTS[1]: "common tau2 (metafor mods = ~ factor)",
}

KINDS = ("binary", "generic")


@dataclass(frozen=True)
class SubgroupResult:
    """Subgroup analysis.

    Attributes
    ----------
    overall : MetaResult
        Analysis of all studies.
    subgroups : dict
        ``{subgroup label: MetaResult or None}`` in order of first appearance; ``None`` means
        not estimable.
    Q_between, df_between, p_between : float, int, float
        Test for subgroup differences (NaN/0/NaN with fewer than two estimable subgroups).
    by : str
        The grouping column.
    notes : dict
        ``{subgroup label: note}`` ("single study", "not estimable: ...", or "").
    totals : dict
        ``{subgroup label: {"events_t", "n_t", "events_c", "n_c", "studies"}}``.
    kind : str
        ``"binary"`` or ``"generic"``.
    between_test : str
        ``"separate-tau2"`` (RevMan) or ``"common-tau2"`` (metafor ``mods``), see the module docstring.
    tau2_common : float or None
        The common tau^2 (``between_test="common-tau2"``).
    between_dist : str
        Distribution of ``Q_between``: ``"chi2"``, or ``"F(m, k-p)"`` for the Knapp-Hartung test.
    """

    overall: MetaResult
    subgroups: dict[str, MetaResult | None]
    Q_between: float
    df_between: int
    p_between: float
    by: str
    notes: dict[str, str] = field(default_factory=dict)
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    kind: str = "binary"
    between_test: str = SUBGROUP_TESTS[0]
    tau2_common: float | None = None
    between_dist: str = "chi2"

    def summary_frame(self) -> pd.DataFrame:
        """One row per subgroup, then the overall analysis.

        Columns: ``subgroup``, ``k``, ``studies`` (number of input rows), ``events_t``,
        ``n_t``, ``events_c``, ``n_c`` (sums; NaN for generic data), ``estimate``,
        ``ci_low``, ``ci_high`` (ratio scale for OR/RR/Peto OR, else analysis scale),
        ``log_estimate`` (analysis scale for ratio measures), ``se``, ``p_value``, ``Q``,
        ``Q_df``, ``Q_p``, ``I2``, ``tau2``, ``Q_between``, ``df_between``, ``p_between``
        (repeated on every row), ``between_test`` (which test: separate or common tau^2,
        see :data:`BETWEEN_TEST_NAMES`) and ``note``.
        """
        rows = []
        items = [(name, res, self.totals[name], self.notes.get(name, "")) for name, res in self.subgroups.items()]
        items.append(("overall", self.overall, self.totals["__overall__"], ""))
        for name, res, tot, note in items:
            row: dict[str, Any] = {"subgroup": name, "studies": tot["studies"]}
            row.update({c: tot[c] for c in ("events_t", "n_t", "events_c", "n_c")})
            if res is None:
                row.update(k=0)
            else:
                lo, hi = res.conf_int()
                row.update(
                    k=res.k, estimate=res.to_dict()["estimate"], ci_low=lo, ci_high=hi,
                    log_estimate=res.estimate if res.is_ratio() else np.nan, se=res.se, p_value=res.p_value,
                    Q=res.Q, Q_df=res.Q_df, Q_p=res.Q_p, I2=res.I2, tau2=res.tau2,
                )
            row.update(Q_between=self.Q_between, df_between=self.df_between, p_between=self.p_between,
                       between_test=self.test_name(), note=note)
            rows.append(row)
        columns = [
            "subgroup", "k", "studies", "events_t", "n_t", "events_c", "n_c", "estimate", "ci_low", "ci_high",
            "log_estimate", "se", "p_value", "Q", "Q_df", "Q_p", "I2", "tau2", "Q_between", "df_between", "p_between",
            "between_test", "note",
        ]
        frame = pd.DataFrame(rows)
        for c in columns:
            if c not in frame.columns:
                frame[c] = np.nan
        frame["note"] = frame["note"].fillna("")
        return frame.loc[:, columns]


    def test_name(self) -> str:
        """The name of the test for subgroup differences (with its distribution if not chi-square)."""
        name = BETWEEN_TEST_NAMES[self.between_test]
        return name if self.between_dist == "chi2" else f"{name}, {self.between_dist} test"


def test_subgroup_differences(estimates: list[float], ses: list[float]) -> tuple[float, int, float]:
    """RevMan's test for subgroup differences from subgroup estimates and standard errors.

    Returns ``(Q_between, df, p)``; ``(nan, 0, nan)`` with fewer than two subgroups.
    """
    if len(estimates) < 2:
        return float("nan"), 0, float("nan")
    theta = np.asarray(estimates, dtype=float)
    w = 1.0 / np.asarray(ses, dtype=float) ** 2
    bar = (w @ theta) / w.sum()
    q = float(w @ (theta - bar) ** 2)
    df = len(estimates) - 1
    return q, df, chi2_sf(q, df)


test_subgroup_differences.__test__ = False  # not a pytest test


def _single_study_random(fixed: MetaResult, tau2_method: str | None) -> MetaResult:
    """Relabel a one-study fit as the random-effects result of that study (tau^2 = 0)."""
    return dataclasses.replace(
        fixed,
        model="random",
        tau2=0.0,
        tau2_method=tau2_method or "DL",
        notes=(*fixed.notes, "single study: random-effects estimate equals the study's estimate (tau2 = 0)"),
    )


def _group_labels(data: pd.DataFrame, by: str, source: str | None) -> list[str]:
    if by not in data.columns:
        raise DataError(f"{source + ': ' if source else ''}missing subgroup column '{by}'; columns present: "
                        f"{', '.join(map(str, data.columns))}")
    labels = []
    problems = []
    for row, value in enumerate(data[by].tolist(), start=1):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            problems.append(f"{source + ': ' if source else ''}row {row}, column '{by}': missing subgroup")
        labels.append(str(value).strip())
    if problems:
        raise DataError("; ".join(problems))
    return labels


_COUNTS = ("events_t", "n_t", "events_c", "n_c")


@dataclass(frozen=True)
class _Fitter:
    """How to pool one subgroup's rows: the overall fit, a per-subgroup fit and its totals."""

    overall: MetaResult
    fit: Callable[[np.ndarray], MetaResult]
    totals: Callable[[np.ndarray], dict[str, Any]]


def _binary_fitter(data: pd.DataFrame, columns: Mapping[str, str] | None, source: str | None,
                   options: BinaryOptions) -> _Fitter:
    overall = meta_binary(data, columns=columns, source=source, options=options)
    names = resolve_columns(data, ("study", *_COUNTS), columns, source)
    single = options.replace(model="fixed", method="IV", hksj=False, tau2_method=None,
                             measure="PETO" if overall.method == "Peto" else options.measure)

    def fit(mask: np.ndarray) -> MetaResult:
        rows = data.loc[mask]
        k_g = int(np.asarray(overall.study_table["estimable"], dtype=bool)[mask].sum())
        if options.model == "random" and k_g == 1:
            one = meta_binary(rows, columns=columns, source=source, options=single)
            return dataclasses.replace(_single_study_random(one, options.tau2_method), method=overall.method)
        return meta_binary(rows, columns=columns, source=source, options=options)

    def totals(mask: np.ndarray) -> dict[str, Any]:
        return {c: int(data.loc[mask, names[c]].sum()) for c in _COUNTS}

    return _Fitter(overall, fit, totals)


def _generic_model(options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    generic_opts = dict(options)
    model = str(generic_opts.pop("model", "fixed")).lower()
    model = {"fe": "fixed", "ee": "fixed", "ce": "fixed", "common": "fixed", "re": "random"}.get(model, model)
    if model not in ("fixed", "random"):
        raise DataError(f"unknown model {model!r}; valid values: fixed, random")
    return model, generic_opts


def _generic_fitter(data: pd.DataFrame, columns: Mapping[str, str] | None, source: str | None,
                    options: Mapping[str, Any]) -> _Fitter:
    model, generic_opts = _generic_model(options)
    clean = validate_generic(data, columns=columns, source=source)

    def fit_frame(frame: pd.DataFrame, mod: str) -> MetaResult:
        if mod == "fixed":
            keep = {k: v for k, v in generic_opts.items() if k in ("level", "measure")}
            return fixed_effect(frame["yi"], frame["vi"], frame["study"].tolist(), **keep)
        return random_effects(frame["yi"], frame["vi"], frame["study"].tolist(), **generic_opts)

    def fit(mask: np.ndarray) -> MetaResult:
        sub = clean.loc[mask]
        if model == "random" and len(sub) == 1:
            return _single_study_random(fit_frame(sub, "fixed"), generic_opts.get("tau2_method"))
        return fit_frame(sub, model)

    def totals(mask: np.ndarray) -> dict[str, Any]:
        return {c: np.nan for c in _COUNTS}

    return _Fitter(fit_frame(clean, model), fit, totals)


def _fit_subgroups(fitter: _Fitter, groups: np.ndarray, order: list[str]):
    """Pool every subgroup; ``None`` (with a note) where nothing is estimable."""
    estimable = np.asarray(fitter.overall.study_table["estimable"], dtype=bool)
    subgroups: dict[str, MetaResult | None] = {}
    notes: dict[str, str] = {}
    totals: dict[str, dict[str, Any]] = {}
    for name in order:
        mask = groups == name
        totals[name] = {**fitter.totals(mask), "studies": int(mask.sum())}
        if not estimable[mask].any():
            subgroups[name], notes[name] = None, "not estimable: no study in this subgroup has an estimable effect"
            continue
        try:
            fit = fitter.fit(mask)
        except NotEstimableError as err:
            subgroups[name], notes[name] = None, f"not estimable: {err}"
            continue
        subgroups[name], notes[name] = fit, "single study" if fit.k == 1 else ""
    totals["__overall__"] = {**fitter.totals(np.ones(groups.size, dtype=bool)), "studies": int(groups.size)}
    return subgroups, notes, totals


def _common_tau2_fit(res: MetaResult, tau2: float, method: str, level: float) -> MetaResult:
    """*res* re-pooled with the common tau^2 (weights ``1/(v + tau2)``), as R meta ``tau.common=TRUE``."""
    table = res.study_table
    ok = np.asarray(table["estimable"], dtype=bool) & np.isfinite(np.asarray(table["vi"], dtype=float))
    y, v = np.asarray(table["yi"], dtype=float)[ok], np.asarray(table["vi"], dtype=float)[ok]
    if y.size == 1:
        core = dataclasses.replace(fixed_core(y, v + tau2, level), tau2=tau2, weights=1.0 / (v + tau2))
    else:
        core = random_core(y, v, level, Tau2Estimate(tau2=tau2, se=float("nan"), method=method), res.hksj,
                           res.pi_low is not None, "metafor")
        core = dataclasses.replace(core, tau2_se=None, tau2_ci=None, I2_ci=None, H2_ci=None, Q=res.Q, Q_df=res.Q_df,
                                   Q_p=res.Q_p)
    numbers = {f.name: getattr(core, f.name) for f in dataclasses.fields(PooledFit)}
    new_table = dict(table, weight=weights_percent(core.weights, ok, ok.size))
    return dataclasses.replace(
        res, **numbers, model="random", tau2_method=f"{method} (common to all subgroups)", study_table=new_table,
        notes=(*res.notes, "tau2 common to all subgroups, from the model with the subgroup factor as moderator"),
    )


def _common_tau2_test(fitter: _Fitter, groups: np.ndarray, subgroups: dict[str, MetaResult | None],
                      method: str, hksj: bool) -> tuple[float, int, float, str, float]:
    """metafor ``rma(yi, vi, mods = ~ factor(group))``: QM of the factor, its df, p, distribution, tau^2."""
    table = fitter.overall.study_table
    ok = np.asarray(table["estimable"], dtype=bool) & np.isfinite(np.asarray(table["vi"], dtype=float))
    levels = [name for name, res in subgroups.items() if res is not None]
    ok &= np.isin(groups, levels)
    y, v, g = np.asarray(table["yi"], dtype=float)[ok], np.asarray(table["vi"], dtype=float)[ok], groups[ok]
    X = np.column_stack([np.ones(y.size)] + [(g == name).astype(float) for name in levels[1:]])
    if hksj and y.size <= X.shape[1]:
        raise DataError("the Knapp-Hartung test with a common tau2 needs more studies than subgroups (no residual df)")
    fit = metareg_fit(y, v, X, method, hksj=hksj)
    q, df, p, dist = metareg_qm(fit, list(range(1, X.shape[1])))
    return q, df, p, dist, float(fit["tau2"])


def _random_settings(fitter: _Fitter, options: BinaryOptions | None, kwargs: Mapping[str, Any]) -> tuple[str, bool]:
    """tau^2 estimator and HKSJ of a random-effects analysis (refused for fixed effect)."""
    overall = fitter.overall
    if overall.model != "random":
        raise DataError("tau2_common=True (one tau2 for all subgroups, metafor mods = ~ factor) applies to "
                        "random-effects models; this is a fixed-effect analysis (use model='random')")
    method = options.tau2_method if options is not None else kwargs.get("tau2_method", "REML")
    return normalise_tau2_method(method), bool(overall.hksj)


def subgroup_analysis(
    data: pd.DataFrame,
    by: str,
    kind: str = "binary",
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    *,
    options: BinaryOptions | None = None,
    tau2_common: bool = False,
    **kwargs: Any,
) -> SubgroupResult:
    """Pool each subgroup and test for subgroup differences.

    Parameters
    ----------
    data : DataFrame
        Binary data (columns as for :func:`mscmeta.engine.binary.meta_binary`) or, with
        ``kind="generic"``, effect sizes with columns ``study, yi, vi`` (continuous
        outcomes: MD/SMD from :mod:`mscmeta.engine.continuous`), plus the grouping column.
    by : str
        Name of the grouping column (values are compared as strings).
    kind : {"binary", "generic"}
        Type of data.
    columns : mapping, optional
        Column-name mapping as in :func:`mscmeta.engine.binary.meta_binary`.
    source : str, optional
        Data source for error messages.
    options : BinaryOptions, optional
        Binary data: the options of every fit, as one object (instead of keywords).
    tau2_common : bool
        ``False`` (default): separate tau^2 per subgroup and RevMan's test. ``True``: one
        tau^2 from the model with the subgroup factor as moderator and that model's test
        (metafor ``mods``; random-effects models only). See the module docstring.
    **kwargs
        Binary: any option of :func:`mscmeta.engine.binary.meta_binary` (measure, method, model,
        tau2_method, hksj, zero_cell, keep_double_zero, level, ...). Generic: ``model``
        ("fixed"/"random"), and the options of :func:`mscmeta.engine.pooling.random_effects` /
        :func:`mscmeta.engine.pooling.fixed_effect` (tau2_method, hksj, level, measure, ...).

    Returns
    -------
    SubgroupResult
    """
    if kind not in KINDS:
        raise DataError(f"unknown kind {kind!r}; valid values: {', '.join(KINDS)}")
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
    groups = _group_labels(data, by, source)
    order = list(dict.fromkeys(groups))
    if kind == "binary":
        fitter = _binary_fitter(data, columns, source, options if options is not None else BinaryOptions(**kwargs))
    else:
        fitter = _generic_fitter(data, columns, source, kwargs)
    groups_arr = np.asarray(groups, dtype=object)
    subgroups, notes, totals = _fit_subgroups(fitter, groups_arr, order)
    if tau2_common:
        return _with_common_tau2(fitter, groups_arr, subgroups, notes, totals, by, kind,
                                 _random_settings(fitter, options, kwargs))
    fitted = [r for r in subgroups.values() if r is not None]
    q, df, p = test_subgroup_differences([r.estimate for r in fitted], [r.se for r in fitted])
    return SubgroupResult(
        overall=fitter.overall, subgroups=subgroups, Q_between=q, df_between=df, p_between=p, by=by, notes=notes,
        totals=totals, kind=kind,
    )


def _with_common_tau2(fitter: _Fitter, groups: np.ndarray, subgroups: dict[str, MetaResult | None], notes, totals,
                      by: str, kind: str, settings: tuple[str, bool]) -> SubgroupResult:
    method, hksj = settings
    if sum(r is not None for r in subgroups.values()) < 2:
        q, df, p, dist, tau2 = float("nan"), 0, float("nan"), "chi2", float("nan")
    else:
        q, df, p, dist, tau2 = _common_tau2_test(fitter, groups, subgroups, method, hksj)
    if np.isfinite(tau2):
        level = fitter.overall.level
        subgroups = {name: None if res is None else _common_tau2_fit(res, tau2, method, level)
                     for name, res in subgroups.items()}
    return SubgroupResult(
        overall=fitter.overall, subgroups=subgroups, Q_between=q, df_between=df, p_between=p, by=by, notes=notes,
        totals=totals, kind=kind, between_test=SUBGROUP_TESTS[1], tau2_common=tau2 if np.isfinite(tau2) else None,
        between_dist=dist,
    )
