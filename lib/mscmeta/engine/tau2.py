"""Estimators of the between-study variance tau^2 (random-effects model, no moderators).

Seven estimators, each a line-by-line port of the intercept-only case of metafor's
``rma.uni`` (``R/rma.uni.r``), including its defaults and convergence rules, so that the
numbers equal metafor's:

``DL``   DerSimonian & Laird (1986): ``(Q - (k-1)) / (sum w - sum w^2/sum w)``, ``w = 1/v``.
``HE``   Hedges (1983) / Cochran's ANOVA: ``(sum (y - ybar)^2 - (k-1)/k sum v) / (k-1)``.
``SJ``   Sidik & Jonkman (2005): ``t0 = mean((y - ybar)^2)``, ``t0 * Q_w(t0) / (k-1)``
         with ``Q_w`` the weighted residual sum of squares using ``w = 1/(v + t0)``.
``PM``   Paule & Mandel (1982): root of ``Q_gen(tau2) = k - 1`` (``Q_gen`` below) on
         ``[0, max(100, 10 mad(y)^2)]``, found like metafor with R's ``uniroot`` (Brent's
         ``zeroin``, ported in :func:`r_uniroot`) at metafor's tolerance
         ``.Machine$double.eps^0.25``; pass ``tol`` for a tighter root (statsmodels'
         reference values were produced with ``control=list(tol=1e-9)``).
``EB``   Morris (1983) empirical Bayes: Fisher-scoring-type iteration
         ``tau2 += (Q_gen(tau2) k/(k-1) - k) / sum w`` (same fixed point as PM, but stopped by
         metafor's rule below, so it can differ from PM in the 5th-6th digit, as in metafor).
``ML``   maximum likelihood, Fisher scoring ``tau2 += (y'PPy - sum w)/sum w^2``.
``REML`` restricted maximum likelihood (metafor's default), Fisher scoring
         ``tau2 += (y'PPy - tr P)/tr(PP)``.

Iterative rules as in metafor: start at ``max(0, HE)``; stop when the change in ``tau2``
is at most ``threshold = 1e-5``; at most ``maxiter = 100`` iterations; step halving keeps
``tau2 >= 0``; for ML/REML, if the (restricted) log-likelihood at ``tau2 = 0`` exceeds that
at the solution by more than ``.Machine$double.eps^0.25``, ``tau2`` is set to 0 (metafor's
``ll0check``). Every estimate is truncated at 0.

``P = W - w w'/sum(w)`` is the intercept-only projection with ``W = diag(w)``.
Standard errors of ``tau2`` follow the same metafor code (Fisher information for ML/REML,
the moment formulas for DL/HE/SJ, ``sqrt(2 k^2/(k-1)) / sum(w)`` for PM/EB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mscmeta.engine.options import TAU2_METHODS, UNIROOT_TOL
from mscmeta.engine.validation import DataError

#: metafor ``rma.uni`` control defaults.
THRESHOLD = 1e-5
MAXITER = 100
LL_TOL = np.finfo(float).eps ** 0.25
_DBL_EPSILON = float(np.finfo(float).eps)


class ConvergenceError(DataError):
    """An iterative tau^2 estimator did not converge (metafor stops with an error too)."""


@dataclass(frozen=True)
class Tau2Estimate:
    """Result of a tau^2 estimator.

    Attributes
    ----------
    tau2 : float
        Estimate, truncated at 0.
    se : float
        Standard error (as metafor's ``se.tau2``).
    method : str
        Estimator name.
    iterations : int
        Fisher-scoring iterations (0 for closed forms, Brent evaluations for PM).
    """

    tau2: float
    se: float
    method: str
    iterations: int = 0


def q_generalised(tau2: float, yi: np.ndarray, vi: np.ndarray) -> float:
    """Generalised Cochran statistic ``sum w (y - mu_w)^2`` with ``w = 1/(v + tau2)``.

    Decreasing in ``tau2``; ``q_generalised(0, ...)`` is Cochran's Q. Used by PM and the
    Q-profile interval (Viechtbauer 2007).
    """
    w = 1.0 / (vi + tau2)
    sw = w.sum()
    mu = (w @ yi) / sw
    r = yi - mu
    return float(w @ (r * r))


def r_uniroot(f, lower: float, upper: float, tol: float = UNIROOT_TOL, maxiter: int = 1000,
              f_lower: float | None = None, f_upper: float | None = None) -> tuple[float, int]:
    """Root of *f* in ``[lower, upper]`` exactly as R's ``uniroot`` finds it.

    A line-by-line port of ``R_zeroin2`` (R ``src/library/stats/src/zeroin.c``; Brent 1973,
    netlib ``zeroin``): at each step the tolerance is ``2 eps |b| + tol/2``. Porting it,
    rather than calling another Brent implementation, reproduces metafor's numbers, which
    depend on where ``uniroot`` stops at metafor's default ``tol``.

    Returns
    -------
    root, iterations : float, int
    """
    fa = f(lower) if f_lower is None else f_lower
    fb = f(upper) if f_upper is None else f_upper
    if fa * fb > 0:
        raise ValueError("f() values at end points not of opposite sign")
    a, b = float(lower), float(upper)
    c, fc = a, fa
    if fa == 0.0:
        return a, 0
    if fb == 0.0:
        return b, 0
    it = 0
    for it in range(1, maxiter + 2):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, it
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ConvergenceError(f"root search did not converge in {maxiter} iterations")


def _projection(w: np.ndarray) -> np.ndarray:
    return np.diag(w) - np.outer(w, w) / w.sum()


def _mad(x: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 times the median absolute deviation from the median."""
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def tau2_max_default(yi: np.ndarray) -> float:
    """metafor's upper search bound for PM: ``max(100, 10 * mad(yi)^2)``."""
    return max(100.0, 10.0 * _mad(yi) ** 2)


def _check(yi: np.ndarray, vi: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, int]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = y.size
    if k < 2:
        raise DataError(f"tau^2 estimator {method} needs at least 2 studies, got {k}")
    if v.shape != y.shape or not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise DataError(f"tau^2 estimator {method}: effect sizes must be finite and sampling variances > 0")
    return y, v, k


def tau2_dl(yi, vi) -> Tau2Estimate:
    """DerSimonian-Laird estimator (metafor ``method="DL"``)."""
    y, v, k = _check(yi, vi, "DL")
    w = 1.0 / v
    sw = w.sum()
    tr_p = sw - (w @ w) / sw
    q = q_generalised(0.0, y, v)
    tau2 = max(0.0, (q - (k - 1)) / tr_p)
    p = _projection(w)
    se = np.sqrt((2 * (k - 1) + 4 * tau2 * tr_p + 2 * tau2**2 * np.sum(p * p)) / tr_p**2)
    return Tau2Estimate(tau2=tau2, se=float(se), method="DL")


def _he_raw(y: np.ndarray, v: np.ndarray, k: int) -> float:
    r = y - y.mean()
    return float((r @ r - v.sum() * (k - 1) / k) / (k - 1))


def tau2_he(yi, vi) -> Tau2Estimate:
    """Hedges (HE, "Cochran ANOVA", "CA") estimator (metafor ``method="HE"``)."""
    y, v, k = _check(yi, vi, "HE")
    tau2 = max(0.0, _he_raw(y, v, k))
    p = np.eye(k) - 1.0 / k
    pv = p * v  # P %*% diag(v)
    tr_pv = float(np.trace(pv))
    se = np.sqrt((2 * np.sum(pv * pv.T) + 4 * tau2 * tr_pv + 2 * tau2**2 * (k - 1)) / (k - 1) ** 2)
    return Tau2Estimate(tau2=tau2, se=float(se), method="HE")


def tau2_sj(yi, vi, tau2_init: float | None = None) -> Tau2Estimate:
    """Sidik-Jonkman estimator (metafor ``method="SJ"``; optional ``tau2.init``)."""
    y, v, k = _check(yi, vi, "SJ")
    r = y - y.mean()
    t0 = float(r @ r / k) if tau2_init is None else float(tau2_init)
    w = 1.0 / (v + t0)
    rss = q_generalised(t0, y, v)
    tau2 = max(0.0, t0 * rss / (k - 1))
    p = _projection(w)
    pv = p * v
    se = np.sqrt(t0**2 / (k - 1) ** 2 * (2 * np.sum(pv * pv.T) + 4 * tau2 * np.sum(pv * p) + 2 * tau2**2 * np.sum(p * p)))
    return Tau2Estimate(tau2=tau2, se=float(se), method="SJ")


def _se_pm_eb(v: np.ndarray, tau2: float, k: int) -> float:
    w = 1.0 / (v + tau2)
    return float(np.sqrt(2 * k**2 / (k - 1)) / w.sum())


def tau2_pm(yi, vi, tau2_max: float | None = None, tol: float = UNIROOT_TOL) -> Tau2Estimate:
    """Paule-Mandel estimator: root of ``Q_gen(tau2) = k-1`` (metafor ``method="PM"``).

    *tol* is the ``uniroot`` tolerance (metafor's default ``.Machine$double.eps^0.25``).
    """
    y, v, k = _check(yi, vi, "PM")
    target = k - 1
    upper = tau2_max_default(y) if tau2_max is None else float(tau2_max)
    f_lower = q_generalised(0.0, y, v) - target
    if f_lower < 0:
        return Tau2Estimate(tau2=0.0, se=_se_pm_eb(v, 0.0, k), method="PM")
    f_upper = q_generalised(upper, y, v) - target
    if f_upper > 0:
        raise ConvergenceError(
            f"Paule-Mandel tau^2 above the search bound {upper:g} (metafor: 'Value of tau2.max too low'); "
            "use another estimator"
        )
    root, it = r_uniroot(lambda t: q_generalised(t, y, v) - target, 0.0, upper, tol=tol, maxiter=MAXITER,
                         f_lower=f_lower, f_upper=f_upper)
    tau2 = max(0.0, float(root))
    return Tau2Estimate(tau2=tau2, se=_se_pm_eb(v, tau2, k), method="PM", iterations=it)


def _loglik(y: np.ndarray, v: np.ndarray, tau2: float, reml: bool) -> float:
    w = 1.0 / (v + tau2)
    k = y.size
    rss = q_generalised(tau2, y, v)
    if reml:
        return float(-0.5 * (k - 1) * np.log(2 * np.pi) - 0.5 * np.log(v + tau2).sum() - 0.5 * np.log(w.sum()) - 0.5 * rss)
    return float(-0.5 * k * np.log(2 * np.pi) - 0.5 * np.log(v + tau2).sum() - 0.5 * rss)


def _fisher_scoring(
    y: np.ndarray, v: np.ndarray, method: str, tau2_init: float | None, threshold: float, maxiter: int
) -> tuple[float, int]:
    k = y.size
    tau2 = max(0.0, _he_raw(y, v, k)) if tau2_init is None else float(tau2_init)
    change = threshold + 1
    it = 0
    while change > threshold:
        it += 1
        old = tau2
        w = 1.0 / (v + tau2)
        sw = w.sum()
        r = y - (w @ y) / sw
        wr = w * r
        if method == "ML":
            w2 = w @ w
            adj = (wr @ wr - sw) / w2
        elif method == "REML":
            w2 = w @ w
            tr_p = sw - w2 / sw
            tr_pp = w2 - 2 * (w @ (w * w)) / sw + w2**2 / sw**2
            adj = (wr @ wr - tr_p) / tr_pp
        else:  # EB
            adj = ((wr @ r) * k / (k - 1) - k) / sw
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old - tau2)
        if it > maxiter:
            raise ConvergenceError(
                f"{method} tau^2: Fisher scoring did not converge in {maxiter} iterations "
                "(as metafor: 'Fisher scoring algorithm did not converge'); use another estimator"
            )
    return float(tau2), it


def _likelihood_estimate(yi, vi, method: str, tau2_init, threshold, maxiter) -> Tau2Estimate:
    y, v, k = _check(yi, vi, method)
    tau2, it = _fisher_scoring(y, v, method, tau2_init, threshold, maxiter)
    if method in ("ML", "REML"):
        reml = method == "REML"
        if _loglik(y, v, 0.0, reml) - _loglik(y, v, tau2, reml) > LL_TOL and tau2 > threshold:
            tau2 = 0.0  # metafor's ll0check: stuck at a local maximum
    tau2 = max(0.0, tau2)
    w = 1.0 / (v + tau2)
    if method == "ML":
        se = np.sqrt(2 / (w @ w))
    elif method == "REML":
        sw = w.sum()
        w2 = w @ w
        se = np.sqrt(2 / (w2 - 2 * (w @ (w * w)) / sw + w2**2 / sw**2))
    else:
        se = _se_pm_eb(v, tau2, k)
    return Tau2Estimate(tau2=tau2, se=float(se), method=method, iterations=it)


def tau2_ml(yi, vi, tau2_init=None, threshold=THRESHOLD, maxiter=MAXITER) -> Tau2Estimate:
    """Maximum-likelihood estimator by Fisher scoring (metafor ``method="ML"``)."""
    return _likelihood_estimate(yi, vi, "ML", tau2_init, threshold, maxiter)


def tau2_reml(yi, vi, tau2_init=None, threshold=THRESHOLD, maxiter=MAXITER) -> Tau2Estimate:
    """Restricted maximum-likelihood estimator by Fisher scoring (metafor ``method="REML"``)."""
    return _likelihood_estimate(yi, vi, "REML", tau2_init, threshold, maxiter)


def tau2_eb(yi, vi, tau2_init=None, threshold=THRESHOLD, maxiter=MAXITER) -> Tau2Estimate:
    """Empirical Bayes (Morris) estimator (metafor ``method="EB"``)."""
    return _likelihood_estimate(yi, vi, "EB", tau2_init, threshold, maxiter)


_ESTIMATORS = {
    "DL": tau2_dl,
    "HE": tau2_he,
    "SJ": tau2_sj,
    "PM": tau2_pm,
    "EB": tau2_eb,
    "ML": tau2_ml,
    "REML": tau2_reml,
}


def estimate_tau2(yi, vi, method: str = "REML", tol: float = UNIROOT_TOL) -> Tau2Estimate:
    """Estimate tau^2 with one of :data:`TAU2_METHODS` (canonical upper-case name).

    *tol* is the root-finding tolerance of PM (metafor ``control=list(tol=...)``).

    Raises
    ------
    DataError
        For fewer than 2 studies, non-positive variances or an unknown method;
        :class:`ConvergenceError` if an iterative estimator fails.
    """
    try:
        func = _ESTIMATORS[method]
    except KeyError:
        raise DataError(f"unknown tau2 method {method!r}; valid values: {', '.join(TAU2_METHODS)}") from None
    if method == "PM":
        return tau2_pm(yi, vi, tol=tol)
    return func(yi, vi)
