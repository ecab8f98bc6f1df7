"""Meta-analysis of binary outcomes (2x2 counts per study): :func:`meta_binary`.

Methods
-------
``method="MH"`` (default, RevMan's default)
    Mantel-Haenszel OR, RR or RD (:mod:`mscmeta.engine.mantel_haenszel`). Cochran's Q is computed
    around the MH estimate with inverse-variance weights of the study estimates (metafor
    ``rma.mh``, RevMan 5); I^2 = (Q - df)/Q.
    With ``model="random"`` and ``tau2_method="DL"`` this is **RevMan 5's random-effects
    variant**: DerSimonian-Laird tau^2 from that MH-based Q, then inverse-variance weights
    ``1/(v_i + tau^2)`` on the (zero-cell corrected) study estimates (R ``meta``:
    ``Q.Cochrane=TRUE``); the result is labelled ``tau2_method="DL (RevMan MH)"``. With any
    other estimator the random-effects model is fitted to the study estimates as in
    metafor ``rma`` (Q then around the inverse-variance estimate).
``method="IV"``
    Study estimates (:func:`mscmeta.engine.effects.study_effects`) pooled by
    :func:`mscmeta.engine.pooling.fixed_core` / :func:`mscmeta.engine.pooling.random_core`.
``method="Peto"``
    Peto's one-step odds ratio (measure reported as ``"PETO"``); never a continuity
    correction in the estimator. ``model="random"`` fits the random-effects model to
    the study-level Peto log odds ratios (R ``meta``).

Zero cells (``zero_cell``, see :mod:`mscmeta.engine.effects`)
-------------------------------------------------------
``"revman"`` (default)
    0.5 added to every cell of a study with a zero cell, for the study estimates and
    inside the MH estimator; studies with no events (or only events) in both arms are
    "not estimable" and excluded for OR/RR, kept for RD (Cochrane Handbook 5.1, 9.4.4 and
    16.9.3). The MH risk difference uses the Greenland-Robins (1985) variance as RevMan;
    for RD the correction enters only variances, never the estimates (R ``meta``'s RevMan 5
    emulation, ``MH.exact=FALSE``).
``"none"``
    metafor ``rma.mh``/``rma.peto`` defaults: no correction inside MH/Peto; study estimates
    (display, Q) from ``escalc(add=1/2, to="only0", drop00=TRUE)``; double-zero studies
    dropped from the study estimates (for RD they still enter the MH weights, as in
    metafor); MH RD with the Sato-Greenland-Robins (1989) variance. For ``method="IV"``
    this is the same 0.5 correction (a log OR of a zero-cell study is not finite).
``keep_double_zero=True``
    Double-zero studies kept with the 0.5 correction (metafor ``escalc`` default
    ``drop00=FALSE``, which ``rma`` uses); with ``zero_cell="none"`` the result is labelled
    ``zero_cell="escalc"``.

Counting studies
----------------
``k`` counts the studies that enter the pooled estimate. Without a correction inside the
estimator (``zero_cell="none"``), a study without events in both arms adds nothing to a
Mantel-Haenszel or Peto OR or MH RR, and a study with only events in both arms adds nothing
to an OR; these are reported as not estimable, while metafor's ``rma.mh``/``rma.peto``
print ``k`` including such tables (e.g. 18 vs our 17 for dat.nielweise2007), with the same
estimate and the same Q and df. A study with events in every patient of both arms does
carry weight for the MH risk ratio (``ai n2i/Ni`` and ``ci n1i/Ni`` are not 0) and is kept,
as in ``rma.mh``; it has no study-level estimate (``escalc(drop00=TRUE)``), so it is not in Q.
Under the RevMan convention both kinds are "not estimable" and excluded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.engine.effects import (
    ContinuityCorrection,
    StudyEffects,
    ZeroCellRule,
    correction_note,
    double_zero_mask,
    study_effects,
)
from mscmeta.engine.heterogeneity import chi2_sf, cochran_q, i2_h2_fixed
from mscmeta.engine.mantel_haenszel import PooledEstimate, mantel_haenszel, peto_odds_ratio
from mscmeta.engine.options import BinaryOptions, resolve_tol
from mscmeta.engine.pooling import (
    PooledIV,
    fixed_core,
    make_result,
    random_core,
    revman_dl_from_q,
    study_ci,
    weights_percent,
    z_test,
)
from mscmeta.engine.results import MetaResult
from mscmeta.engine.tau2 import estimate_tau2
from mscmeta.engine.validation import DataError, NotEstimableError, check_binary


def meta_binary(
    data: pd.DataFrame,
    measure: str = "OR",
    method: str = "MH",
    model: str = "fixed",
    tau2_method: str = "DL",
    hksj: bool = False,
    zero_cell: str = "revman",
    keep_double_zero: bool = False,
    level: float = 0.95,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    *,
    rd_variance: str | None = None,
    prediction: bool = True,
    pi_df: str | None = None,
    control: Mapping[str, float] | None = None,
    add: float | None = None,
    to: str | None = None,
    correction: str = "constant",
    options: BinaryOptions | None = None,
) -> MetaResult:
    """Meta-analysis of 2x2 counts: MH, Peto or inverse variance; fixed or random effects.

    Parameters
    ----------
    data : DataFrame
        One row per study with columns ``study, events_t, n_t, events_c, n_c`` (or other
        names mapped through *columns*).
    measure : {"OR", "RR", "RD", "PETO", "AS"}
        Effect measure (case-insensitive). ``"PETO"`` implies ``method="Peto"``, ``"AS"``
        (arcsine difference) ``method="IV"``.
    method : {"MH", "IV", "Peto"}
        Pooling method (see the module docstring).
    model : {"fixed", "random"}
        ``"FE"``, ``"EE"``, ``"common"`` are accepted for fixed, ``"RE"`` for random.
    tau2_method : {"DL", "REML", "PM", "SJ", "HE", "ML", "EB"}
        tau^2 estimator for ``model="random"`` (default DL as RevMan 5; metafor's default
        is REML).
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman adjustment (random effects, k >= 2).
    zero_cell : {"revman", "none", "escalc"}
        Zero-cell convention (module docstring).
    keep_double_zero : bool
        Keep studies without events (or with only events) in both arms, with 0.5 added.
    level : float
        Confidence level (0.95 or 95).
    columns : mapping, optional
        ``{canonical: caller_name}``, e.g. ``{"study": "study_id", "events_t": "events_msc",
        "n_t": "n_msc", "events_c": "events_control", "n_c": "n_control"}``.
    source : str, optional
        Name of the data source for error messages.
    rd_variance : {"sato", "greenland-robins"}, optional
        Variance of the MH risk difference; default Greenland-Robins under
        ``zero_cell="revman"`` (RevMan, metan, meta) and Sato under the metafor conventions.
    prediction : bool
        Compute the prediction interval (random effects).
    pi_df : {None, "k-1", "k-2"}
        Prediction-interval convention (see :func:`mscmeta.engine.pooling.random_effects`).
    control : mapping, optional
        ``{"tol": ...}`` root-search tolerance for PM and the Q-profile interval
        (default metafor's ``.Machine$double.eps^0.25``).
    add, to : float, {"only0", "if0all", "all", "none"}, optional
        Continuity correction as metafor's ``add``/``to`` (default: the zero-cell
        convention's own, 0.5 to ``"only0"``); under ``zero_cell="revman"`` it also enters
        the MH/Peto estimator, under ``"none"`` only the study estimates
        (:mod:`mscmeta.engine.effects`).
    correction : {"constant", "treatment-arm"}
        ``"treatment-arm"``: Sweeting, Sutton & Lambert (2004), ``2 add`` split between the
        arms in proportion to their sizes (R ``meta`` ``incr="TACC"``).
    options : BinaryOptions, optional
        All of the options above as one validated object
        (:class:`mscmeta.engine.options.BinaryOptions`); when given, it is used as it is and
        the individual option arguments are ignored.

    Returns
    -------
    MetaResult

    Raises
    ------
    DataError
        Bad data or options (message names the file, study and column), too few studies
        for the model, or no study carrying information (:class:`NotEstimableError`).
    """
    if options is None:
        options = BinaryOptions(
            measure=measure, method=method, model=model, tau2_method=tau2_method, hksj=hksj, zero_cell=zero_cell,
            keep_double_zero=keep_double_zero, level=level, rd_variance=rd_variance, prediction=prediction,
            pi_df=pi_df if pi_df is not None else "metafor", tol=resolve_tol(control), add=add, to=to,
            correction=correction,
        )
    elif not isinstance(options, BinaryOptions):
        raise DataError(f"options must be a BinaryOptions, got {type(options).__name__}")
    labels, counts = check_binary(data, columns=columns, source=source)
    return _analyse(labels, counts, options, source)


def _refit_binary(opts: BinaryOptions):
    def refit(frame: pd.DataFrame) -> MetaResult:
        # only the canonical columns (study, events_t, n_t, events_c, n_c) are read
        labels, counts = check_binary(frame)
        return _analyse(labels, counts, opts, None)

    return refit


def _correction_part(cc: ContinuityCorrection, incs, i: int, what: str) -> str:
    return f"{correction_note(cc, incs[0][i], incs[1][i])}{what}"


def _notes_for_studies(
    effects, rule: ZeroCellRule, method: str, measure: str, pooled: np.ndarray, corrected_in_pool: np.ndarray,
    dz: np.ndarray, a: np.ndarray, c: np.ndarray, pool_incs=None,
) -> list[str]:
    notes = []
    study_cc = rule.peto_study if measure == "PETO" else rule.study
    pool_cc = rule.pool if method == "MH" else rule.peto_pool
    for i in range(len(pooled)):
        parts = []
        what = "no events in either arm" if (a[i] == 0 and c[i] == 0) else "all participants had the event in both arms"
        if not pooled[i]:
            parts.append(f"not estimable: {what}" if dz[i] else "not estimable")
        else:
            if dz[i]:
                parts.append(what)
            if corrected_in_pool[i]:
                parts.append(_correction_part(pool_cc, pool_incs, i, " for the study variance and the MH variance"
                                              if measure == "RD" else f" (study estimate and {method} estimator)"))
            elif effects.corrected[i]:
                if measure == "RD" and rule.rd_raw_estimate:
                    tail = " for the study variance"
                elif method in ("MH", "Peto"):
                    tail = f" for the study estimate only (not in the {method} estimator)"
                else:
                    tail = ""
                parts.append(_correction_part(study_cc, effects.increments, i, tail))
            if not effects.estimable[i]:
                parts.append("no study-level estimate (dropped as in metafor escalc drop00); in the MH weights")
        notes.append("; ".join(parts))
    return notes


@dataclass(frozen=True)
class _Pooled:
    """What a pooling branch hands back to :func:`_analyse`."""

    core: PooledIV
    pooled: np.ndarray  # studies entering the pooled estimate
    weights: np.ndarray  # weights of those studies
    tau2_method: str | None
    notes: tuple[str, ...] = ()
    corrected_in_pool: np.ndarray | None = None
    pool_increments: tuple[np.ndarray, np.ndarray] | None = None


def _too_few(prefix: str, measure: str, k: int) -> DataError:
    return DataError(f"{prefix}random-effects model needs at least 2 studies with an estimable {measure}, got {k}")


def _random_core(y: np.ndarray, v: np.ndarray, opts: BinaryOptions, tau2, q_stats=None) -> PooledIV:
    return random_core(y, v, opts.level, tau2, opts.hksj, opts.prediction, opts.pi_df, q_stats=q_stats,
                       tol=opts.tol)


def _pool_inverse_variance(effects, opts: BinaryOptions, prefix: str) -> _Pooled:
    """Inverse-variance pooling of the study estimates (metafor ``rma``)."""
    measure = opts.measure
    pooled = effects.estimable.copy()
    if not pooled.any():
        raise NotEstimableError(f"{prefix}no study has an estimable {measure} (every study has no events, or only events, in both arms)")
    y, v = effects.yi[pooled], effects.vi[pooled]
    if opts.model == "fixed":
        core = fixed_core(y, v, opts.level)
        return _Pooled(core, pooled, core.weights, None)
    if y.size < 2:
        raise _too_few(prefix, measure, y.size)
    core = _random_core(y, v, opts, estimate_tau2(y, v, opts.tau2_method, tol=opts.tol))
    return _Pooled(core, pooled, core.weights, opts.tau2_method)


@dataclass(frozen=True)
class _FixedMH:
    """The Mantel-Haenszel or Peto fixed-effect estimate with its Q statistic."""

    fixed: PooledEstimate
    q_stats: tuple[float, int, float]
    pooled: np.ndarray
    corrected_in_pool: np.ndarray
    notes: tuple[str, ...]
    pool_increments: tuple[np.ndarray, np.ndarray]


def _rd_variance_note(opts: BinaryOptions) -> str:
    if opts.rd_variance_used == "greenland-robins":
        return "MH risk difference variance: Greenland & Robins (1985), as RevMan 5/metan/meta"
    return "MH risk difference variance: Sato, Greenland & Robins (1989), as metafor rma.mh"


def _fixed_mh_or_peto(cells, dz: np.ndarray, effects: StudyEffects, rule: ZeroCellRule, opts: BinaryOptions,
                      prefix: str) -> _FixedMH:
    """Mantel-Haenszel (Q around the MH estimate, as rma.mh/RevMan) or Peto (Peto's Q)."""
    measure = opts.measure
    a, b, c, d = cells
    pooled = np.ones(a.size, dtype=bool)
    if rule.pool_drop00 and measure in ("OR", "RR", "PETO"):
        # RevMan: both kinds of double-zero study are "not estimable". Without a correction
        # inside the estimator (metafor rma.mh/rma.peto, drop00[2] = FALSE) nothing is
        # dropped; a study contributes nothing only where every term of the estimator is 0:
        # no events in either arm, or (OR, Peto) only events in both arms. A study with
        # events in every patient of both arms carries weight for the MH risk ratio.
        pooled &= ~(dz if rule.pool.active or measure != "RR" else (a == 0) & (c == 0))
    if not pooled.any():
        raise NotEstimableError(
            f"{prefix}no study has an estimable {measure if measure != 'PETO' else 'Peto OR'} "
            "(all studies have no events, or only events, in both arms)"
        )
    pa, pb, pc, pd_ = a[pooled], b[pooled], c[pooled], d[pooled]
    corrected_in_pool = np.zeros(a.size, dtype=bool)
    incs = (np.zeros(a.size), np.zeros(a.size))
    cc = rule.pool if opts.method == "MH" else rule.peto_pool
    for full, part in zip(incs, cc.increments(pa, pb, pc, pd_)):
        full[pooled] = part
    corrected_in_pool[pooled] = cc.selected(pa, pb, pc, pd_)
    in_q = effects.estimable
    try:
        if opts.method == "MH":
            fixed = mantel_haenszel(pa, pb, pc, pd_, measure, rd_variance=opts.rd_variance_used, correction=cc)
            q_stats = cochran_q(effects.yi[in_q], effects.vi[in_q], estimate=fixed.estimate)
            notes = (_rd_variance_note(opts),) if measure == "RD" else ()
        else:
            fixed = peto_odds_ratio(*cc.apply(pa, pb, pc, pd_))
            q_df = max(int(in_q.sum()) - 1, 0)
            q_stats = (fixed.Q, q_df, chi2_sf(fixed.Q, q_df) if q_df >= 1 else float("nan"))
            notes = ()
    except NotEstimableError as err:
        raise NotEstimableError(f"{prefix}{err}") from None
    return _FixedMH(fixed, q_stats, pooled, corrected_in_pool, notes, incs)


def _fixed_core(fit: _FixedMH, level: float) -> PooledIV:
    fixed, (q, q_df, q_p) = fit.fixed, fit.q_stats
    z, p, lo, hi = z_test(fixed.estimate, fixed.se, level)
    i2, h2 = i2_h2_fixed(q, q_df)
    return PooledIV(
        k=int(fit.pooled.sum()), estimate=fixed.estimate, se=fixed.se, ci_low=lo, ci_high=hi, statistic=z, p_value=p,
        df=None, Q=q, Q_df=q_df, Q_p=q_p, I2=i2, H2=h2, tau2=0.0, tau2_se=None, tau2_ci=None, I2_ci=None,
        H2_ci=None, pi_low=None, pi_high=None, pi_dist=None, weights=fixed.weights,
    )


def _pool_mh_or_peto(cells, dz: np.ndarray, effects: StudyEffects, rule: ZeroCellRule, opts: BinaryOptions,
                     prefix: str) -> _Pooled:
    """Mantel-Haenszel or Peto fixed effect; random effects on the study estimates (RevMan/meta)."""
    fit = _fixed_mh_or_peto(cells, dz, effects, rule, opts, prefix)
    if opts.model == "fixed":
        return _Pooled(_fixed_core(fit, opts.level), fit.pooled, fit.fixed.weights, None, fit.notes,
                       fit.corrected_in_pool, fit.pool_increments)
    in_q = effects.estimable
    y, v = effects.yi[in_q], effects.vi[in_q]
    if y.size < 2:
        raise _too_few(prefix, opts.measure, y.size)
    if opts.method == "MH" and opts.tau2_method == "DL":
        tau2 = revman_dl_from_q(v, fit.q_stats[0])
        core = _random_core(y, v, opts, tau2, q_stats=fit.q_stats)
        note = ("random effects as RevMan 5 for MH analyses: DerSimonian-Laird tau2 from Q around the MH estimate, "
                "inverse-variance weights 1/(v + tau2) on the study estimates")
        label = tau2.method
    else:
        core = _random_core(y, v, opts, estimate_tau2(y, v, opts.tau2_method, tol=opts.tol))
        note = (f"random effects fitted to the study-level estimates with inverse-variance weights ({opts.method} "
                "applies to the fixed-effect estimate only)")
        label = opts.tau2_method
    return _Pooled(core, in_q.copy(), core.weights, label, (*fit.notes, note), fit.corrected_in_pool,
                   fit.pool_increments)


def _analyse(labels: list[str], counts: dict[str, np.ndarray], opts: BinaryOptions, source: str | None) -> MetaResult:
    """Run the analysis described by normalised *opts* on validated counts."""
    measure, method, level = opts.measure, opts.method, opts.level
    rule = ZeroCellRule.from_options(opts.zero_cell, opts.keep_double_zero, opts.add, opts.to, opts.correction)
    ev_t, n_t, ev_c, n_c = counts["events_t"], counts["n_t"], counts["events_c"], counts["n_c"]
    cells = (ev_t, n_t - ev_t, ev_c, n_c - ev_c)
    n = ev_t.size
    dz = double_zero_mask(*cells)
    effects = study_effects(measure, ev_t, n_t, ev_c, n_c, rule)
    prefix = f"{source}: " if source else ""
    if method == "IV":
        res = _pool_inverse_variance(effects, opts, prefix)
    else:
        res = _pool_mh_or_peto(cells, dz, effects, rule, opts, prefix)
    convention = ("arcsine difference: no continuity correction, studies without events in both arms kept "
                  "(metafor escalc measure AS)" if measure == "AS" else rule.describe())
    notes = [convention, *res.notes]
    k = int(res.pooled.sum())
    if n > k:
        notes.append(f"{n - k} of {n} studies not estimable and not pooled")
    lo, hi = study_ci(effects.yi, effects.vi, level)
    corrected_in_pool = res.corrected_in_pool if res.corrected_in_pool is not None else np.zeros(n, dtype=bool)
    table = {
        "study": labels,
        "events_t": ev_t.astype(np.int64), "n_t": n_t.astype(np.int64),
        "events_c": ev_c.astype(np.int64), "n_c": n_c.astype(np.int64),
        "yi": effects.yi, "vi": effects.vi, "ci_low": lo, "ci_high": hi,
        "weight": weights_percent(res.weights, res.pooled, n),
        "estimable": res.pooled,
        "note": _notes_for_studies(effects, rule, method, measure, res.pooled, corrected_in_pool, dz, cells[0], cells[2],
                                   res.pool_increments),
    }
    return make_result(
        res.core, table, measure=measure, method=method, model=opts.model,
        tau2_method=res.tau2_method, hksj=opts.hksj, zero_cell=rule.label,
        level=level, notes=notes, refit_function=_refit_binary(opts), options=opts,
    )
