"""Leave-one-out fits of inverse-variance models, vectorised across folds.

:func:`mscmeta.engine.sensitivity.leave_one_out` and :func:`~mscmeta.engine.sensitivity.influence`
need the model refitted without each study in turn. For inverse-variance fixed- and
random-effects models the k refits differ only in which study is left out, so all folds
are computed at once on a ``(folds, k - 1)`` array (in blocks, to bound memory): the same
formulas as :mod:`mscmeta.engine.pooling` and :mod:`mscmeta.engine.tau2`, including
metafor's iteration rules for ML, REML and EB (start at max(0, HE); stop when the change is
at most 1e-5; at most 100 iterations; step halving; the likelihood check at tau^2 = 0),
applied fold by fold. This turns O(k) refits (each with its own validation, study table and
Q-profile interval, which leave-one-out does not report) into a few array operations:
k = 1,000 takes well under a second.

:func:`fold_fits` returns ``None`` where a fold cannot use this route (Paule-Mandel, whose
root search is not vectorised, and results whose study estimates depend on the other
studies, such as a continuity correction to all studies "if any has a zero cell"); the
callers then refit fold by fold.

References
----------
Viechtbauer W (2010). J Stat Softw 36(3): metafor ``leave1out.rma.uni``, ``influence.rma.uni``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import special

from mscmeta.engine.pooling import norm_crit, t_crit
from mscmeta.engine.tau2 import LL_TOL, MAXITER, THRESHOLD
from mscmeta.engine.results import MetaResult

#: tau^2 estimators computed here (PM falls back to refits).
VECTORISED_TAU2 = frozenset({"DL", "HE", "SJ", "ML", "REML", "EB"})
_BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class FoldFit:
    """The numbers of one leave-one-out fit that leave-one-out and influence report."""

    k: int
    estimate: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    Q: float
    Q_df: int
    Q_p: float
    I2: float
    H2: float
    tau2: float


def _fold_arrays(y: np.ndarray, v: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(len(folds), k - 1)`` arrays of the studies kept in each fold, in input order."""
    k = y.size
    cols = np.tile(np.arange(k - 1), (folds.size, 1))
    cols += cols >= folds[:, None]
    return y[cols], v[cols]


def _rowsum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row sums of ``a * b`` without a temporary array."""
    return np.einsum("ij,ij->i", a, b)


def _moments(w: np.ndarray, y: np.ndarray, y2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fold: sum of weights, weighted mean and weighted residual sum of squares ``sum w (y - m)^2``."""
    sw = w.sum(axis=1)
    m = _rowsum(w, y) / sw
    return sw, m, np.maximum(_rowsum(w, y2) - m * m * sw, 0.0)


def _q_gen(tau2: np.ndarray, y: np.ndarray, v: np.ndarray, y2: np.ndarray) -> np.ndarray:
    return _moments(1.0 / (v + tau2[:, None]), y, y2)[2]


def _he(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    kf = y.shape[1]
    r = y - y.mean(axis=1)[:, None]
    return (_rowsum(r, r) - v.sum(axis=1) * (kf - 1) / kf) / (kf - 1)


def _loglik(y: np.ndarray, v: np.ndarray, y2: np.ndarray, tau2: np.ndarray, reml: bool) -> np.ndarray:
    kf = y.shape[1]
    vt = v + tau2[:, None]
    sw, _, rss = _moments(1.0 / vt, y, y2)
    logdet = np.log(vt).sum(axis=1)
    if reml:
        return -0.5 * (kf - 1) * np.log(2 * np.pi) - 0.5 * logdet - 0.5 * np.log(sw) - 0.5 * rss
    return -0.5 * kf * np.log(2 * np.pi) - 0.5 * logdet - 0.5 * rss


def _adjustment(y: np.ndarray, v: np.ndarray, y2: np.ndarray, tau2: np.ndarray, method: str) -> np.ndarray:
    """One Fisher-scoring step per fold (metafor ``rma.uni``; :func:`mscmeta.engine.tau2._fisher_scoring`).

    With ``r = y - m``: ``sum (w r)^2 = sum w^2 y^2 - 2 m sum w^2 y + m^2 sum w^2`` and
    ``sum w r^2`` the residual sum of squares, so every sum is one pass over the fold array.
    """
    kf = y.shape[1]
    w = 1.0 / (v + tau2[:, None])
    sw, m, rss = _moments(w, y, y2)
    if method == "EB":
        return (rss * kf / (kf - 1) - kf) / sw
    w2 = w * w
    sw2 = w2.sum(axis=1)
    wr2 = np.maximum(_rowsum(w2, y2) - 2 * m * _rowsum(w2, y) + m * m * sw2, 0.0)
    if method == "ML":
        return (wr2 - sw) / sw2
    tr_p = sw - sw2 / sw
    tr_pp = sw2 - 2 * _rowsum(w2, w) / sw + sw2**2 / sw**2
    return (wr2 - tr_p) / tr_pp


def _fisher(y: np.ndarray, v: np.ndarray, y2: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Fisher scoring fold by fold with metafor's rules; returns tau^2 and a 'failed' mask."""
    tau2 = np.maximum(0.0, _he(y, v))
    active = np.ones(tau2.size, dtype=bool)
    failed = np.zeros(tau2.size, dtype=bool)
    it = 0
    while active.any():
        it += 1
        rows = np.flatnonzero(active)
        old = tau2[rows]
        arrays = (y, v, y2) if rows.size == tau2.size else (y[rows], v[rows], y2[rows])
        adj = _adjustment(*arrays, old, method)
        while (neg := old + adj < 0).any():
            adj = np.where(neg, adj / 2, adj)
        tau2[rows] = old + adj
        still = np.abs(old - tau2[rows]) > THRESHOLD
        if it > MAXITER:
            failed[rows[still]] = True
            still[:] = False
        active[rows] = still
    if method in ("ML", "REML"):
        reml = method == "REML"
        back = (_loglik(y, v, y2, np.zeros_like(tau2), reml) - _loglik(y, v, y2, tau2, reml) > LL_TOL) \
            & (tau2 > THRESHOLD)
        tau2 = np.where(back, 0.0, tau2)
    return np.maximum(0.0, tau2), failed


def _tau2(y: np.ndarray, v: np.ndarray, y2: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """tau^2 of every fold by *method* (:data:`VECTORISED_TAU2`) and the folds that did not converge."""
    kf = y.shape[1]
    none_failed = np.zeros(y.shape[0], dtype=bool)
    if method == "DL":
        w = 1.0 / v
        sw = w.sum(axis=1)
        q = _q_gen(np.zeros(y.shape[0]), y, v, y2)
        return np.maximum(0.0, (q - (kf - 1)) / (sw - _rowsum(w, w) / sw)), none_failed
    if method == "HE":
        return np.maximum(0.0, _he(y, v)), none_failed
    if method == "SJ":
        r = y - y.mean(axis=1)[:, None]
        t0 = _rowsum(r, r) / kf
        return np.maximum(0.0, t0 * _q_gen(t0, y, v, y2) / (kf - 1)), none_failed
    return _fisher(y, v, y2, method)


def _heterogeneity(y: np.ndarray, v: np.ndarray, y2: np.ndarray, tau2: np.ndarray, random: bool):
    """Cochran's Q (around the inverse-variance common-effect estimate), its p-value, I^2 and H^2."""
    kf = y.shape[1]
    q = _q_gen(np.zeros(y.shape[0]), y, v, y2)
    q_df = kf - 1
    q_p = special.chdtrc(q_df, q) if q_df >= 1 else np.full(q.size, np.nan)
    if q_df < 1:
        return q, q_df, q_p, np.full(q.size, np.nan), np.full(q.size, np.nan)
    if random:
        w = 1.0 / v
        sw = w.sum(axis=1)
        vt = (kf - 1) / (sw - _rowsum(w, w) / sw)
        return q, q_df, q_p, 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = np.where(q <= 0, 0.0, np.maximum(0.0, 100.0 * (q - q_df) / q))
    return q, q_df, q_p, i2, q / q_df


def _block(y: np.ndarray, v: np.ndarray, folds: np.ndarray, result: MetaResult) -> list[FoldFit | str]:
    """Fits (or the reason a fold is not estimable) of one block of folds."""
    yb, vb = _fold_arrays(y, v, folds)
    y2 = yb * yb
    kf = yb.shape[1]
    random = result.model == "random"
    failed = np.zeros(folds.size, dtype=bool)
    tau2 = np.zeros(folds.size)
    if random:
        tau2, failed = _tau2(yb, vb, y2, str(result.tau2_method))
    w = 1.0 / (vb + tau2[:, None])
    sw, est, _ = _moments(w, yb, y2)
    se = np.sqrt(1.0 / sw)
    bad_hksj = np.zeros(folds.size, dtype=bool)
    if random and result.hksj:
        r = yb - est[:, None]
        rss = np.einsum("ij,ij,ij->i", w, r, r)  # directly, as pooling.random_core, for its zero check
        bad_hksj = rss <= np.finfo(float).eps
        se = np.sqrt(np.where(bad_hksj, np.nan, rss) / (kf - 1) / sw)
        crit = t_crit(result.level, kf - 1)
        stat = est / se
        p = 2 * special.stdtr(kf - 1, -np.abs(stat))
    else:
        crit = norm_crit(result.level)
        stat = est / se
        p = 2 * special.ndtr(-np.abs(stat))
    q, q_df, q_p, i2, h2 = _heterogeneity(yb, vb, y2, tau2, random)
    out: list[FoldFit | str] = []
    for j in range(folds.size):
        if failed[j]:
            out.append(f"{result.tau2_method} tau^2: Fisher scoring did not converge in {MAXITER} iterations "
                       "(as metafor: 'Fisher scoring algorithm did not converge'); use another estimator")
        elif bad_hksj[j]:
            out.append("Hartung-Knapp-Sidik-Jonkman adjustment undefined: all study estimates are identical "
                       "(residual sum of squares 0 gives a zero-width interval); use hksj=False")
        else:
            out.append(FoldFit(k=kf, estimate=float(est[j]), se=float(se[j]), statistic=float(stat[j]),
                               p_value=float(p[j]), ci_low=float(est[j] - crit * se[j]),
                               ci_high=float(est[j] + crit * se[j]), Q=float(q[j]), Q_df=int(q_df),
                               Q_p=float(q_p[j]), I2=float(i2[j]), H2=float(h2[j]), tau2=float(tau2[j])))
    return out


def vectorisable(result: MetaResult) -> bool:
    """True when the leave-one-out fits of *result* can be computed by :func:`fold_fits`."""
    if result.method != "IV" or result.model not in ("fixed", "random"):
        return False
    if result.model == "random" and result.tau2_method not in VECTORISED_TAU2:
        return False
    options = result.options
    return getattr(options, "to", None) != "if0all"


_LAST: list = []  # (weak reference to the last result, its fold fits): leave-one-out then influence


def fold_fits(result: MetaResult) -> list[FoldFit | str] | None:
    """Leave-one-out fits of *result*, one per pooled study (input order).

    Each entry is a :class:`FoldFit`, or the one-line reason the fold is not estimable (as
    the refit would raise it); ``None`` when *result* is not :func:`vectorisable`. The fits
    of the last result are kept, so influence after leave-one-out does not refit.
    """
    if not vectorisable(result):
        return None
    if _LAST and _LAST[0]() is result:
        return _LAST[1]
    fits = _all_folds(result)
    _LAST[:] = [weakref.ref(result), fits]
    return fits


def _all_folds(result: MetaResult) -> list[FoldFit | str]:
    studies = result.study_table
    pooled = np.asarray(studies["estimable"], dtype=bool)
    y = np.asarray(studies["yi"], dtype=float)[pooled]
    v = np.asarray(studies["vi"], dtype=float)[pooled]
    k = y.size
    size = max(1, _BLOCK_CELLS // max(k, 1))
    out: list[FoldFit | str] = []
    for start in range(0, k, size):
        out.extend(_block(y, v, np.arange(start, min(k, start + size)), result))
    return out
