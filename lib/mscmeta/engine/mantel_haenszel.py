"""Mantel-Haenszel and Peto pooling of 2x2 tables (fixed/common effect).

All functions take the cell counts *as they enter the estimator*: the caller applies the
zero-cell convention first (RevMan adds 0.5 to every cell of zero-cell studies, metafor's
``rma.mh``/``rma.peto`` add nothing; see :mod:`mscmeta.engine.effects`) and removes excluded
studies. Formulas follow metafor ``R/rma.mh.r`` and ``R/rma.peto.r`` line by line:

* MH odds ratio ``sum(ai di/Ni) / sum(bi ci/Ni)`` with the Robins, Breslow & Greenland
  (1986) variance of its logarithm;
* MH risk ratio ``sum(ai n2i/Ni) / sum(ci n1i/Ni)`` with the Greenland & Robins (1985)
  variance of its logarithm;
* MH risk difference ``sum((ai n2i - ci n1i)/Ni) / sum(n1i n2i/Ni)`` with either the
  Sato, Greenland & Robins (1989) variance (metafor ``rma.mh``; consistent in both the
  sparse-data and the large-strata limit) or the Greenland & Robins (1985) variance
  (RevMan 5, Stata ``metan``, R ``meta``);
* Peto's one-step odds ratio ``exp(sum(Oi - Ei) / sum(Vi))`` with variance ``1/sum(Vi)``
  (Yusuf et al. 1985) and Peto's heterogeneity statistic
  ``sum((Oi-Ei)^2/Vi) - (sum(Oi-Ei))^2/sum(Vi)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mscmeta.engine.effects import NO_CORRECTION, ContinuityCorrection
from mscmeta.engine.options import RD_VARIANCES
from mscmeta.engine.validation import NotEstimableError



@dataclass(frozen=True)
class PooledEstimate:
    """A fixed-effect pooled estimate from MH or Peto.

    Attributes
    ----------
    estimate : float
        Analysis scale (log OR, log RR, RD or Peto log OR).
    se : float
        Standard error on the analysis scale.
    weights : ndarray
        Study weights of the estimator (MH: ``bi ci/Ni`` for OR, ``ci n1i/Ni`` for RR,
        ``n1i n2i/Ni`` for RD as in metafor ``weights.rma.mh`` and RevMan; Peto: ``Vi``).
    Q : float or None
        Peto's heterogeneity statistic (``None`` for MH, whose Q is computed from the
        study-level estimates around the MH estimate).
    """

    estimate: float
    se: float
    weights: np.ndarray
    Q: float | None = None


def _cells(ai, bi, ci, di):
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    return a, b, c, d, a + b, c + d, a + b + c + d


def mh_odds_ratio(ai, bi, ci, di) -> PooledEstimate:
    """Mantel-Haenszel log odds ratio, Robins-Breslow-Greenland (1986) variance.

    ``se = sqrt(1/2 [sum(P R)/R^2 + sum(P S + Q R)/(R S) + sum(Q S)/S^2])`` with
    ``Pi = (ai+di)/Ni``, ``Qi = (bi+ci)/Ni``, ``Ri = ai di/Ni``, ``Si = bi ci/Ni``
    (metafor ``rma.mh``, measure "OR").
    """
    a, b, c, d, _, _, n = _cells(ai, bi, ci, di)
    p = a / n + d / n
    q = b / n + c / n
    r_i = (a / n) * d
    s_i = (b / n) * c
    r, s = r_i.sum(), s_i.sum()
    if r == 0 or s == 0:
        arm = "treatment" if r == 0 else "control"
        raise NotEstimableError(
            "Mantel-Haenszel odds ratio not estimable: "
            + ("no events in the treatment arm or no non-events in the control arm of any study"
               if arm == "treatment" else
               "no events in the control arm or no non-events in the treatment arm of any study")
            + " (the pooled OR would be 0 or infinite); use the risk difference or zero_cell='revman'"
        )
    est = float(np.log(r / s))
    var = 0.5 * ((p * r_i).sum() / r**2 + (p * s_i + q * r_i).sum() / (r * s) + (q * s_i).sum() / s**2)
    return PooledEstimate(estimate=est, se=float(np.sqrt(var)), weights=s_i)


def mh_risk_ratio(ai, bi, ci, di) -> PooledEstimate:
    """Mantel-Haenszel log risk ratio, Greenland & Robins (1985) variance.

    ``se = sqrt(sum(n1i n2i (ai+ci)/Ni^2 - ai ci/Ni) / (R S))`` with ``R = sum(ai n2i/Ni)``,
    ``S = sum(ci n1i/Ni)`` (metafor ``rma.mh``, measure "RR").
    """
    a, b, c, d, n1, n2, n = _cells(ai, bi, ci, di)
    r_i = a * (n2 / n)
    s_i = c * (n1 / n)
    r, s = r_i.sum(), s_i.sum()
    if a.sum() == 0 or c.sum() == 0:
        arm = "treatment" if a.sum() == 0 else "control"
        raise NotEstimableError(
            f"Mantel-Haenszel risk ratio not estimable: no events in the {arm} arm of any study "
            "(the pooled RR would be 0 or infinite); use the risk difference or zero_cell='revman'"
        )
    est = float(np.log(r / s))
    var = ((n1 / n) * (n2 / n) * (a + c) - (a / n) * c).sum() / (r * s)
    if not var > 0:
        raise NotEstimableError(
            "Mantel-Haenszel risk ratio has zero variance (every study has events in every patient of both arms); "
            "no confidence interval can be computed"
        )
    return PooledEstimate(estimate=est, se=float(np.sqrt(var)), weights=s_i)


def mh_risk_difference(ai, bi, ci, di, variance: str = "sato",
                       variance_correction: ContinuityCorrection = NO_CORRECTION) -> PooledEstimate:
    """Mantel-Haenszel risk difference.

    Parameters
    ----------
    variance : {"sato", "greenland-robins"}
        ``"sato"``: Sato, Greenland & Robins (1989), as metafor ``rma.mh``.
        ``"greenland-robins"``: Greenland & Robins (1985),
        ``var = sum((ai bi n2i^3 + ci di n1i^3)/(n1i n2i Ni^2)) / sum(n1i n2i/Ni)^2``,
        as RevMan 5, Stata ``metan`` and R ``meta``.
    variance_correction : ContinuityCorrection
        RevMan 5 convention (R ``meta`` ``metabin`` with ``MH.exact=FALSE``): the estimate and
        its weights ``n1i n2i/Ni`` use the raw counts, while the variance uses the counts
        corrected as given (RevMan: 0.5 added to every cell of zero-cell studies). The
        default uses the raw counts throughout.
    """
    a, b, c, d, n1, n2, n = _cells(ai, bi, ci, di)
    w = n1 * (n2 / n)
    sw = w.sum()
    est = float((a * (n2 / n) - c * (n1 / n)).sum() / sw)
    if variance_correction.active:
        a, b, c, d = variance_correction.apply(a, b, c, d)
        n1, n2, n = a + b, c + d, a + b + c + d
    if variance == "sato":
        num = est * (c * (n1 / n) ** 2 - a * (n2 / n) ** 2 + (n1 / n) * (n2 / n) * (n2 - n1) / 2).sum() + (
            a * (n2 - c) / n + c * (n1 - a) / n
        ).sum() / 2
        var = num / sw**2
    elif variance == "greenland-robins":
        var = ((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * n**2)).sum() / sw**2
    else:  # pragma: no cover - normalised upstream
        raise ValueError(f"unknown RD variance {variance!r}; valid: {', '.join(RD_VARIANCES)}")
    if not var > 0:
        raise NotEstimableError(
            "Mantel-Haenszel risk difference has zero variance (every study has no events, or only events, "
            "in both arms); no confidence interval can be computed"
        )
    return PooledEstimate(estimate=est, se=float(np.sqrt(var)), weights=w)


def mantel_haenszel(ai, bi, ci, di, measure: str, rd_variance: str = "sato",
                    correction: ContinuityCorrection = NO_CORRECTION) -> PooledEstimate:
    """MH estimate with a continuity correction inside the estimator (RevMan 5: 0.5 added to
    every cell of zero-cell studies; metafor ``rma.mh``: none, the default here).

    For OR and RR the corrected cells enter the estimate and its variance (RevMan 5, Stata
    ``metan``, R ``meta`` ``MH.exact=FALSE``; metafor ``rma.mh(add=c(., a), to=c(., t))``);
    for RD only the variance (see :func:`mh_risk_difference`).
    """
    if measure == "RD":
        return mh_risk_difference(ai, bi, ci, di, variance=rd_variance, variance_correction=correction)
    if correction.active:
        ai, bi, ci, di = correction.apply(ai, bi, ci, di)
    if measure == "OR":
        return mh_odds_ratio(ai, bi, ci, di)
    if measure == "RR":
        return mh_risk_ratio(ai, bi, ci, di)
    raise ValueError(f"Mantel-Haenszel pooling is defined for OR, RR and RD, not {measure!r}")


def peto_odds_ratio(ai, bi, ci, di) -> PooledEstimate:
    """Peto's one-step log odds ratio and Peto's heterogeneity statistic.

    ``Oi - Ei = ai - (ai+ci) n1i/Ni``, ``Vi = (ai+ci)(bi+di) n1i n2i / (Ni^2 (Ni-1))``;
    ``log OR = sum(Oi-Ei)/sum(Vi)``, ``se = 1/sqrt(sum(Vi))``;
    ``Q = sum((Oi-Ei)^2/Vi) - (sum(Oi-Ei))^2/sum(Vi)`` over tables with ``Vi > 0``,
    truncated at 0 (metafor ``rma.peto``; Yusuf et al. 1985).
    """
    a, b, c, d, n1, n2, n = _cells(ai, bi, ci, di)
    xt, yt = a + c, b + d
    e = xt * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(n > 1, xt * yt * (n1 / n) * (n2 / n) / (n - 1), 0.0)
    sv = v.sum()
    if not sv > 0:
        raise NotEstimableError(
            "Peto odds ratio not estimable: one of the two outcomes never occurred in any study"
        )
    o_e = a - e
    pos = v > 0
    q = max(0.0, float((o_e[pos] ** 2 / v[pos]).sum() - o_e.sum() ** 2 / sv))
    return PooledEstimate(estimate=float(o_e.sum() / sv), se=float(1 / np.sqrt(sv)), weights=v, Q=q)
