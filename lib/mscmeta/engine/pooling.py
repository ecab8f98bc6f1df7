"""Inverse-variance pooling: common (fixed) effect, random effects, HKSJ, prediction interval.

Formulas as metafor ``rma.uni`` (intercept-only model):

* common effect (metafor ``method="EE"``/``"FE"``): ``mu = sum w y / sum w``,
  ``se = 1/sqrt(sum w)``, ``w = 1/v``; z test and normal CI.
* random effects: ``w = 1/(v + tau2)`` with tau^2 from :mod:`mscmeta.engine.tau2`; z test and
  normal CI, or with ``hksj=True`` the Hartung-Knapp-Sidik-Jonkman variance
  ``s^2 / sum w``, ``s^2 = sum w (y - mu)^2 / (k-1)`` and a t(k-1) distribution (metafor
  ``test="knha"``, which sets ``s^2 = 0`` when the residual sum of squares is below machine
  precision; here that case is refused because the interval would have zero width).
* prediction interval: ``mu +/- crit * sqrt(se^2 + tau2)``. Default ``pi_df=None`` is
  metafor's ``predict.rma`` convention: ``crit`` from the normal distribution, or from
  t(k-1) when HKSJ is used. ``pi_df="k-1"`` always uses t(k-1) (R meta >= 8.0);
  ``pi_df="k-2"`` uses t(k-2) (Higgins, Thompson & Spiegelhalter 2009; IntHout et al.
  2016; R meta <= 7; metafor ``pi.type="Riley"``), which needs k >= 3.
* heterogeneity: Cochran's Q around the common-effect estimate; I^2/H^2 as in
  :mod:`mscmeta.engine.heterogeneity`; Q-profile intervals for tau^2, I^2 and H^2.

Minimum numbers of studies: the common-effect model works with k = 1 (the pooled estimate
is the study's own; Q, I^2 and H^2 are undefined). Random effects need k >= 2 (a
between-study variance cannot be estimated from one study; metafor silently fits tau^2 =
0 instead), HKSJ needs k >= 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from mscmeta.engine.heterogeneity import cochran_q, i2_h2_fixed, i2_h2_random, q_profile_ci
from mscmeta.engine.options import UNIROOT_TOL, normalise_pi_df, normalise_tau2_method, resolve_tol
from mscmeta.engine.results import MetaResult, PooledFit
from mscmeta.engine.tau2 import Tau2Estimate, estimate_tau2
from mscmeta.engine.validation import DataError, check_level, validate_effects, validate_generic

@dataclass(frozen=True)
class PooledIV(PooledFit):
    """A pooled fit with the study weights of its estimator (before the study table is attached)."""

    weights: np.ndarray


def norm_crit(level: float) -> float:
    """Two-sided normal critical value (R ``qnorm(level/2, lower.tail=FALSE)``)."""
    return float(special.ndtri(1 - (1 - level) / 2))


def t_crit(level: float, df: float) -> float:
    """Two-sided t critical value (R ``qt(level/2, df, lower.tail=FALSE)``)."""
    return float(special.stdtrit(df, 1 - (1 - level) / 2))


def z_test(estimate: float, se: float, level: float) -> tuple[float, float, float, float]:
    crit = norm_crit(level)
    z = estimate / se
    return z, float(2 * special.ndtr(-abs(z))), estimate - crit * se, estimate + crit * se


def fixed_core(yi: np.ndarray, vi: np.ndarray, level: float) -> PooledIV:
    """Common-effect inverse-variance pooling of validated arrays."""
    w = 1.0 / vi
    sw = w.sum()
    est = float((w @ yi) / sw)
    se = float(np.sqrt(1.0 / sw))
    z, p, lo, hi = z_test(est, se, level)
    q, q_df, q_p = cochran_q(yi, vi)
    i2, h2 = i2_h2_fixed(q, q_df)
    return PooledIV(
        k=int(yi.size), estimate=est, se=se, ci_low=lo, ci_high=hi, statistic=z, p_value=p, df=None,
        Q=q, Q_df=q_df, Q_p=q_p, I2=i2, H2=h2, tau2=0.0, tau2_se=None, tau2_ci=None, I2_ci=None, H2_ci=None,
        pi_low=None, pi_high=None, pi_dist=None, weights=w,
    )


def random_core(
    yi: np.ndarray,
    vi: np.ndarray,
    level: float,
    tau2: Tau2Estimate,
    hksj: bool,
    prediction: bool,
    pi_df: str,
    q_stats: tuple[float, int, float] | None = None,
    tol: float = UNIROOT_TOL,
) -> PooledIV:
    """Random-effects pooling of validated arrays given a tau^2 estimate.

    ``q_stats`` overrides Cochran's Q (RevMan's MH variant reports Q around the MH estimate);
    ``tol`` is the root-search tolerance of the Q-profile interval.
    """
    k = int(yi.size)
    if k < 2:
        raise DataError(f"random-effects model needs at least 2 studies, got {k}")
    t2 = tau2.tau2
    w = 1.0 / (vi + t2)
    sw = w.sum()
    est = float((w @ yi) / sw)
    se = float(np.sqrt(1.0 / sw))
    df: float | None = None
    if hksj:
        r = yi - est
        rss = float(w @ (r * r))
        if rss <= np.finfo(float).eps:
            raise DataError(
                "Hartung-Knapp-Sidik-Jonkman adjustment undefined: all study estimates are identical "
                "(residual sum of squares 0 gives a zero-width interval); use hksj=False"
            )
        se = float(np.sqrt(rss / (k - 1) / sw))
        df = float(k - 1)
        crit = t_crit(level, df)
        stat = est / se
        p = float(2 * special.stdtr(df, -abs(stat)))
        lo, hi = est - crit * se, est + crit * se
    else:
        stat, p, lo, hi = z_test(est, se, level)
    q, q_df, q_p = cochran_q(yi, vi) if q_stats is None else q_stats
    i2, h2 = i2_h2_random(t2, vi)
    qp = q_profile_ci(yi, vi, t2, level, tol=tol)
    pi_low = pi_high = None
    pi_dist = None
    if prediction:
        if pi_df == "k-2":
            pi_t = float(k - 2) if k >= 3 else None
        elif pi_df == "k-1" or hksj:
            pi_t = float(k - 1)
        else:
            pi_t = 0.0  # normal
        if pi_t is not None:
            if pi_t == 0.0:
                crit_pi = norm_crit(level)
                pi_dist = "normal"
            else:
                crit_pi = t_crit(level, pi_t)
                pi_dist = f"t({pi_t:g})"
            half = crit_pi * np.sqrt(se**2 + t2)
            pi_low, pi_high = est - half, est + half
    return PooledIV(
        k=k, estimate=est, se=se, ci_low=lo, ci_high=hi, statistic=stat, p_value=p, df=df,
        Q=q, Q_df=q_df, Q_p=q_p, I2=i2, H2=h2, tau2=t2, tau2_se=tau2.se, tau2_ci=qp.tau2, I2_ci=qp.I2, H2_ci=qp.H2,
        pi_low=pi_low, pi_high=pi_high, pi_dist=pi_dist, weights=w,
    )


def revman_dl_from_q(vi: np.ndarray, q: float) -> Tau2Estimate:
    """DerSimonian-Laird tau^2 from a given Q (RevMan 5's random effects for MH analyses).

    ``tau2 = max(0, (Q - (k-1)) / (sum w - sum w^2/sum w))`` with ``w = 1/v`` and Q computed
    around the Mantel-Haenszel estimate (R ``meta``: ``Q.Cochrane = TRUE``).
    """
    k = vi.size
    w = 1.0 / vi
    sw = w.sum()
    tr_p = sw - (w @ w) / sw
    tau2 = max(0.0, (q - (k - 1)) / tr_p)
    p = np.diag(w) - np.outer(w, w) / sw
    se = float(np.sqrt((2 * (k - 1) + 4 * tau2 * tr_p + 2 * tau2**2 * np.sum(p * p)) / tr_p**2))
    return Tau2Estimate(tau2=tau2, se=se, method="DL (RevMan MH)")


def study_ci(yi: np.ndarray, vi: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Normal-quantile confidence limits of each study (analysis scale)."""
    crit = norm_crit(level)
    with np.errstate(invalid="ignore"):
        half = crit * np.sqrt(vi)
    return yi - half, yi + half


def weights_percent(weights: np.ndarray, pooled: np.ndarray, n: int) -> np.ndarray:
    """Spread pooled-study weights over all *n* rows as percentages (NaN for not pooled)."""
    out = np.full(n, np.nan)
    total = weights.sum()
    out[pooled] = 100.0 * weights / total if total > 0 else np.nan
    return out


def make_result(
    core: PooledIV,
    study_table: dict[str, Any],
    *,
    measure: str,
    method: str,
    model: str,
    tau2_method: str | None,
    hksj: bool,
    zero_cell: str | None,
    level: float,
    notes: Sequence[str],
    refit_function,
    options: dict[str, Any],
) -> MetaResult:
    """Assemble a :class:`~mscmeta.engine.results.MetaResult` from pooled numbers and a study table."""
    numbers = {f.name: getattr(core, f.name) for f in fields(PooledFit)}
    return MetaResult(
        **numbers, measure=measure, method=method, model=model, tau2_method=tau2_method, hksj=hksj,
        zero_cell=zero_cell, level=level, k_total=len(study_table["study"]), notes=tuple(notes),
        study_table=study_table, refit_function=refit_function, options=options,
    )


def _generic_table(labels: list[str], yi: np.ndarray, vi: np.ndarray, weights: np.ndarray, level: float) -> dict[str, Any]:
    n = len(labels)
    lo, hi = study_ci(yi, vi, level)
    nan = np.full(n, np.nan)
    return {
        "study": labels, "events_t": nan, "n_t": nan, "events_c": nan, "n_c": nan,
        "yi": yi, "vi": vi, "ci_low": lo, "ci_high": hi,
        "weight": weights_percent(weights, np.ones(n, dtype=bool), n),
        "estimable": np.ones(n, dtype=bool), "note": [""] * n,
    }


def _labels(studies) -> list[str] | None:
    if studies is None:
        return None
    if isinstance(studies, pd.DataFrame):
        return [str(s) for s in studies["study"]]
    return [str(s) for s in studies]


def _refit_generic(options: dict[str, Any]):
    """Closure re-running the same generic analysis on a frame with columns study, yi, vi."""

    def refit(frame: pd.DataFrame) -> MetaResult:
        if isinstance(frame, pd.DataFrame) and all(c in frame.columns for c in ("study", "yi", "vi")):
            frame = frame[["study", "yi", "vi"]]
        clean = validate_generic(frame)
        args = (clean["yi"], clean["vi"], clean["study"].tolist())
        kwargs = {k: v for k, v in options.items() if k != "model"}
        if options["model"] == "fixed":
            return fixed_effect(*args, **kwargs)
        return random_effects(*args, **kwargs)

    return refit


def fixed_effect(yi, vi, studies=None, level: float = 0.95, measure: str = "GEN") -> MetaResult:
    """Inverse-variance common-effect (fixed-effect) meta-analysis.

    Equals metafor ``rma(yi, vi, method="EE")`` (``"FE"`` in older versions).

    Parameters
    ----------
    yi, vi : array_like
        Study estimates (analysis scale) and sampling variances (> 0).
    studies : sequence of labels or DataFrame with a ``study`` column, optional
    level : float
        Confidence level (0.95 or 95).
    measure : str
        Label of the effect measure (``"GEN"`` by default; ``"MD"``, ``"SMD"``, ...).
    """
    level = check_level(level)
    y, v, labels = validate_effects(yi, vi, _labels(studies))
    core = fixed_core(y, v, level)
    options = {"model": "fixed", "level": level, "measure": measure}
    notes = ["single study: the pooled estimate is the study's own; heterogeneity undefined"] if y.size == 1 else []
    return make_result(
        core, _generic_table(labels, y, v, core.weights, level), measure=measure, method="IV", model="fixed",
        tau2_method=None, hksj=False, zero_cell=None, level=level, notes=notes,
        refit_function=_refit_generic(options), options=options,
    )


def random_effects(
    yi,
    vi,
    studies=None,
    tau2_method: str = "REML",
    hksj: bool = False,
    level: float = 0.95,
    measure: str = "GEN",
    prediction: bool = True,
    pi_df: str | None = None,
    control: Mapping[str, float] | None = None,
) -> MetaResult:
    """Inverse-variance random-effects meta-analysis (metafor ``rma(yi, vi, method=...)``).

    Parameters
    ----------
    yi, vi : array_like
        Study estimates (analysis scale) and sampling variances (> 0); k >= 2.
    studies : sequence of labels or DataFrame with a ``study`` column, optional
    tau2_method : {"DL", "REML", "PM", "SJ", "HE", "ML", "EB"}
        tau^2 estimator (case-insensitive), see :mod:`mscmeta.engine.tau2`.
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman CI and t(k-1) test (metafor ``test="knha"``).
    level : float
        Confidence level (0.95 or 95).
    measure : str
        Label of the effect measure.
    prediction : bool
        Compute the prediction interval.
    pi_df : {None, "k-1", "k-2"}
        Prediction-interval convention: ``None`` = metafor ``predict.rma`` (normal quantile,
        t(k-1) with HKSJ); ``"k-1"`` = t(k-1) always (R meta >= 8); ``"k-2"`` = t(k-2)
        (Higgins et al. 2009, IntHout et al. 2016; needs k >= 3, else no interval).
    control : mapping, optional
        ``{"tol": ...}``: tolerance of the root searches (PM estimator, Q-profile
        interval); default metafor's ``.Machine$double.eps^0.25`` (see
        :func:`mscmeta.engine.tau2.r_uniroot`), e.g. ``{"tol": 1e-9}`` as metafor's
        ``control=list(tol=1e-9)``.
    """
    level = check_level(level)
    tol = resolve_tol(control)
    method = normalise_tau2_method(tau2_method)
    pi_conv = normalise_pi_df(pi_df)
    y, v, labels = validate_effects(yi, vi, _labels(studies))
    if y.size < 2:
        raise DataError(f"random-effects model needs at least 2 studies, got {y.size} ('{labels[0]}'); use fixed_effect")
    core = random_core(
        y, v, level, estimate_tau2(y, v, method, tol=tol), bool(hksj), bool(prediction), pi_conv, tol=tol
    )
    options = {
        "model": "random", "tau2_method": method, "hksj": bool(hksj), "level": level, "measure": measure,
        "prediction": bool(prediction), "pi_df": pi_df, "control": dict(control or {}),
    }
    return make_result(
        core, _generic_table(labels, y, v, core.weights, level), measure=measure, method="IV", model="random",
        tau2_method=method, hksj=bool(hksj), zero_cell=None, level=level, notes=[],
        refit_function=_refit_generic(options), options=options,
    )


__all__ = ["fixed_effect", "random_effects"]
