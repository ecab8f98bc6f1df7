"""Meta-regression (mixed-effects model with moderators), as metafor ``rma.uni(mods=...)``.

The engine behind the regression tests of :mod:`mscmeta.engine.bias` (Egger's test, the
side of trim-and-fill) and the subgroup test with a common tau^2 of
:mod:`mscmeta.engine.subgroups` (metafor ``rma(yi, vi, mods = ~ factor(group))``): the
seven tau^2 estimators with moderators, fitted with metafor's own stopping rules
(:func:`metareg_tau2`), weighted least squares for the coefficients, and the omnibus
Wald test of a set of coefficients (:func:`metareg_qm`, metafor's ``QM``; an F test with
the Knapp-Hartung adjustment, ``test="knha"``).

References
----------
Viechtbauer W (2010). J Stat Softw 36(3): metafor ``rma.uni`` (tau^2 estimators with
moderators, ``QM``, ``test="knha"``).
Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a
single covariate. Stat Med 22:2693-2710.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from mscmeta.engine.options import TAU2_METHODS, UNIROOT_TOL
from mscmeta.engine.tau2 import LL_TOL, MAXITER, THRESHOLD, r_uniroot, tau2_max_default
from mscmeta.engine.validation import DataError


def _projection(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X'WX)⁻¹`` and ``P = W - W X (X'WX)⁻¹ X'W`` (metafor's P matrix)."""
    W = np.diag(w)
    inv = np.linalg.inv(X.T @ W @ X)
    return inv, W - W @ X @ inv @ X.T @ W


def _qe(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    _, P = _projection(X, 1.0 / (v + tau2))
    return float(y @ P @ y)


def metareg_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str) -> float:
    """tau² of a mixed-effects meta-regression, as metafor ``rma.uni(mods=X, method=...)``.

    DL, HE and SJ are the closed forms of ``rma.uni`` (SJ starts from the ML variance of
    ``yi``); PM is the root of the generalised Q equation ``y'Py = k - p`` found with R's
    ``uniroot`` (:func:`mscmeta.engine.tau2.r_uniroot`, same tolerance and upper bound as
    metafor); ML, REML and EB use metafor's Fisher-scoring updates started at max(0, HE),
    stopping when the change is at most 1e-5 (metafor ``threshold``), with step halving
    and, for ML/REML, metafor's check that the likelihood at tau² = 0 is not larger.
    Using metafor's stopping rules reproduces its numbers, not just its estimator.
    Estimates are truncated at 0; with no residual degrees of freedom (k <= p) tau² is 0.
    """
    k, p = X.shape
    if method == "FE" or k <= p:
        # no residual degrees of freedom (e.g. a trim-and-fill step that keeps a single
        # study): tau² is not estimable and taken as 0, as metafor rma.uni does for k = 1
        return 0.0
    inv_ols = np.linalg.inv(X.T @ X)
    P_ols = np.eye(k) - X @ inv_ols @ X.T
    he = float((y @ P_ols @ y - np.trace(P_ols @ np.diag(v))) / (k - p))
    if method == "HE":
        return max(0.0, he)
    if method == "DL":
        _, P = _projection(X, 1.0 / v)
        return max(0.0, float((y @ P @ y - (k - p)) / np.trace(P)))
    if method == "SJ":
        tau2_0 = float(np.var(y))  # metafor: var(yi) * (k-1)/k
        _, P = _projection(X, 1.0 / (v + tau2_0))
        return max(0.0, tau2_0 * float(y @ P @ y) / (k - p))
    if method == "PM":
        target = k - p
        f_low = _qe(0.0, y, v, X) - target
        if f_low < 0:
            return 0.0
        upper = tau2_max_default(y)
        f_up = _qe(upper, y, v, X) - target
        if f_up > 0:
            raise DataError(f"Paule-Mandel tau^2 of the regression test above the search bound {upper:g}; use another tau2_method")
        root, _ = r_uniroot(lambda t: _qe(t, y, v, X) - target, 0.0, upper, tol=UNIROOT_TOL, maxiter=MAXITER,
                            f_lower=f_low, f_upper=f_up)
        return max(0.0, float(root))
    if method in ("ML", "REML", "EB"):
        tau2 = max(0.0, he)
        change, it = THRESHOLD + 1.0, 0
        while change > THRESHOLD:
            it += 1
            if it > MAXITER:
                raise DataError(f"{method} estimation of tau^2 in the regression test did not converge "
                                "(as metafor: 'Fisher scoring algorithm did not converge'); use another tau2_method")
            old = tau2
            w = 1.0 / (v + tau2)
            _, P = _projection(X, w)
            if method == "ML":
                adj = (float(y @ P @ P @ y) - w.sum()) / float(np.sum(w**2))
            elif method == "REML":
                PP = P @ P
                adj = (float(y @ PP @ y) - np.trace(P)) / np.trace(PP)
            else:
                adj = (float(y @ P @ y) * k / (k - p) - k) / w.sum()
            while tau2 + adj < 0.0:
                adj /= 2.0
            tau2 += adj
            change = abs(old - tau2)
        if method in ("ML", "REML") and metareg_loglik(y, v, X, 0.0, method) - metareg_loglik(y, v, X, tau2, method) > LL_TOL \
                and tau2 > THRESHOLD:
            tau2 = 0.0
        return max(0.0, tau2)
    raise DataError(f"unknown tau2_method {method!r}; valid values: {', '.join(TAU2_METHODS)}")


def metareg_loglik(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, method: str) -> float:
    """(Restricted) log-likelihood of the meta-regression, as in metafor's ``ll0check``."""
    k, p = X.shape
    w = 1.0 / (v + tau2)
    inv, _ = _projection(X, w)
    beta = inv @ (X.T @ (w * y))
    rss = float(np.sum(w * (y - X @ beta) ** 2))
    if method == "ML":
        return float(-0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss)
    logdet = float(np.linalg.slogdet(X.T @ (w[:, None] * X))[1])
    return float(-0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * logdet - 0.5 * rss)


def metareg_fit(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str, hksj: bool = False) -> dict:
    """Fit a fixed/mixed-effects meta-regression; return beta, vb, tau2, dof (None for z tests)."""
    tau2 = metareg_tau2(y, v, X, method)
    w = 1.0 / (v + tau2)
    inv, _ = _projection(X, w)
    beta = inv @ (X.T @ (w * y))
    vb = inv
    dof = None
    if hksj:
        k, p = X.shape
        s2w = float(np.sum(w * (y - X @ beta) ** 2) / (k - p))
        vb = s2w * inv
        dof = k - p
    return {"beta": beta, "vb": vb, "tau2": tau2, "dof": dof}


def metareg_qm(fit: dict, coefs: list[int]) -> tuple[float, int, float, str]:
    """Omnibus test of the coefficients *coefs* of a :func:`metareg_fit` result (metafor ``QM``).

    Returns ``(QM, df, p, distribution)``: a chi-square test on ``m = len(coefs)`` df, or,
    when the fit used the Knapp-Hartung adjustment, ``QM/m`` with an F(m, k - p) p-value.
    """
    b = np.asarray(fit["beta"], dtype=float)[coefs]
    vb = np.asarray(fit["vb"], dtype=float)[np.ix_(coefs, coefs)]
    m = len(coefs)
    qm = float(b @ np.linalg.solve(vb, b))
    if fit["dof"] is None:
        return qm, m, float(special.chdtrc(m, qm)), "chi2"
    qm /= m
    return qm, m, float(special.fdtrc(m, fit["dof"], qm)), f"F({m}, {fit['dof']})"
