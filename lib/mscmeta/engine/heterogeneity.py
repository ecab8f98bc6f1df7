"""Heterogeneity statistics: Cochran's Q, I^2, H^2 and Q-profile confidence intervals.

Definitions follow metafor (``R/rma.uni.r``, ``R/rma.mh.r``, ``R/confint.rma.uni.r``):

* ``Q = sum w_i (y_i - theta)^2`` with ``w_i = 1/v_i`` around the inverse-variance
  estimate, or -- for Mantel-Haenszel -- around the MH estimate (as metafor ``rma.mh`` and
  RevMan); ``df = k - 1``; p-value from the chi-square distribution.
* Fixed/common-effect models (also MH and Peto): ``I^2 = max(0, 100 (Q - df)/Q)``,
  ``H^2 = Q/df`` (Higgins & Thompson 2002).
* Random-effects models: ``I^2 = 100 tau^2/(tau^2 + s^2)`` and ``H^2 = 1 + tau^2/s^2`` with the
  "typical" within-study variance ``s^2 = (k-1)/(sum w - sum w^2/sum w)`` (Higgins &
  Thompson 2002, eq. 9), so I^2 depends on the tau^2 estimator. For DL this equals
  ``(Q - df)/Q``; RevMan 5 always reports ``(Q - df)/Q``.
* Q-profile interval for tau^2 (Viechtbauer 2007): the set of ``tau2`` with
  ``chi2_{df, a/2} <= Q_gen(tau2) <= chi2_{df, 1-a/2}``; bounds truncated at 0, search bound
  ``max(100, 10 tau2_hat)``, roots found as metafor does (R ``uniroot``, tolerance
  ``.Machine$double.eps^0.25``). The I^2 and H^2 intervals are the tau^2 bounds mapped
  through the formulas above with the fixed-effect typical variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from mscmeta.engine.options import UNIROOT_TOL
from mscmeta.engine.tau2 import q_generalised, r_uniroot


def chi2_sf(x: float, df: float) -> float:
    """Upper tail of the chi-square distribution (``scipy.special.chdtrc``; R ``pchisq(lower=FALSE)``)."""
    return float(special.chdtrc(df, x))


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q with df and p-value, I^2 (percent) and H^2."""

    Q: float
    df: int
    p: float
    I2: float
    H2: float


def cochran_q(yi: np.ndarray, vi: np.ndarray, estimate: float | None = None) -> tuple[float, int, float]:
    """Cochran's Q around *estimate* (default: the inverse-variance estimate).

    Returns ``(Q, df, p)``; for a single study ``(0.0, 0, nan)``.
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = y.size
    if k < 2:
        return 0.0, 0, float("nan")
    w = 1.0 / v
    theta = (w @ y) / w.sum() if estimate is None else estimate
    r = y - theta
    q = max(0.0, float(w @ (r * r)))
    return q, k - 1, chi2_sf(q, k - 1)


def i2_h2_fixed(q: float, df: int) -> tuple[float, float]:
    """``I^2 = max(0, 100 (Q-df)/Q)`` and ``H^2 = Q/df`` (metafor for EE/MH/Peto models)."""
    if df < 1:
        return float("nan"), float("nan")
    i2 = 0.0 if q <= 0 else max(0.0, 100.0 * (q - df) / q)
    return i2, q / df


def typical_variance(vi: np.ndarray) -> float:
    """Higgins-Thompson typical within-study variance ``(k-1)/(sum w - sum w^2/sum w)``."""
    w = 1.0 / np.asarray(vi, dtype=float)
    sw = w.sum()
    return float((w.size - 1) / (sw - (w @ w) / sw))


def i2_h2_random(tau2: float, vi: np.ndarray) -> tuple[float, float]:
    """``I^2 = 100 tau2/(vt + tau2)``, ``H^2 = 1 + tau2/vt`` (metafor for RE models)."""
    if np.size(vi) < 2:
        return float("nan"), float("nan")
    vt = typical_variance(vi)
    return 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0


@dataclass(frozen=True)
class QProfile:
    """Q-profile confidence intervals for tau^2, I^2 (percent) and H^2.

    ``lower_sign``/``upper_sign`` are ``"<"``/``">"`` when a bound lies outside the search
    interval (as metafor prints), ``null_set`` when even ``tau2 = 0`` gives a Q below the
    lower critical value (the interval is then reported as ``[0, 0]``).
    """

    tau2: tuple[float, float]
    I2: tuple[float, float]
    H2: tuple[float, float]
    lower_sign: str = ""
    upper_sign: str = ""
    null_set: bool = False


def q_profile_ci(
    yi: np.ndarray, vi: np.ndarray, tau2_hat: float, level: float = 0.95, tol: float = UNIROOT_TOL
) -> QProfile:
    """Q-profile confidence interval for tau^2 (metafor ``confint.rma.uni``, ``type="qp"``).

    Parameters
    ----------
    yi, vi : array_like
        Study estimates and sampling variances (k >= 2).
    tau2_hat : float
        The point estimate (sets the search bound ``max(100, 10 tau2_hat)``).
    level : float
        Confidence level as a fraction.
    tol : float
        Tolerance of the root search; the default is metafor's (``uniroot`` with
        ``.Machine$double.eps^0.25``, reproduced by :func:`mscmeta.engine.tau2.r_uniroot`), so the
        bounds equal metafor's printed values; use e.g. ``1e-10`` for the exact bounds.
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = y.size
    if k < 2:
        raise ValueError("Q-profile interval needs at least 2 studies")
    alpha = 1 - level
    crit_u = float(special.chdtri(k - 1, alpha / 2))
    crit_l = float(special.chdtri(k - 1, 1 - alpha / 2))
    tau2_min, tau2_max = 0.0, max(100.0, tau2_hat * 10)
    q_min = q_generalised(tau2_min, y, v)
    q_max = q_generalised(tau2_max, y, v)

    def solve(target: float) -> float:
        root, _ = r_uniroot(
            lambda t: q_generalised(t, y, v) - target, tau2_min, tau2_max, tol=tol, maxiter=1000,
            f_lower=q_min - target, f_upper=q_max - target,
        )
        return float(root)

    lb_sign = ub_sign = ""
    null_set = False
    if q_min < crit_l:
        lb, ub, lb_sign, ub_sign, null_set = tau2_min, tau2_min, "<", "<", True
    else:
        if q_max > crit_l:
            ub, ub_sign = tau2_max, ">"
        else:
            ub = solve(crit_l)
        if q_max > crit_u:
            lb = ub = tau2_max
            lb_sign = ub_sign = ">"
        elif q_min < crit_u:
            lb = tau2_min
        else:
            lb = solve(crit_u)
    vt = typical_variance(v)
    i2 = (100 * lb / (vt + lb), 100 * ub / (vt + ub))
    h2 = (lb / vt + 1, ub / vt + 1)
    return QProfile(tau2=(lb, ub), I2=i2, H2=h2, lower_sign=lb_sign, upper_sign=ub_sign, null_set=null_set)
