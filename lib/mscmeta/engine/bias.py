"""Small-study effects: funnel-plot asymmetry tests, trim-and-fill and funnel contours.

Every function reproduces a named reference implementation:

=========================  ==========================================================
:func:`egger_test`         metafor ``regtest``: ``model="lm"`` (classic Egger test,
                           weighted regression with multiplicative dispersion, t test)
                           or ``model="rma"`` (metafor's *default*: mixed-effects
                           meta-regression on the standard error, z test)
:func:`begg_test`          metafor ``ranktest`` (Begg & Mazumdar 1994; Kendall's tau-b
                           with R's exact p-value when there are no ties)
:func:`peters_test`        R meta ``metabias(method.bias="Peters")`` (Peters et al. 2006)
:func:`harbord_test`       R meta ``metabias(method.bias="Harbord")`` (Harbord et al.
                           2006; Stata ``metabias, harbord``)
:func:`trim_and_fill`      metafor ``trimfill`` (Duval & Tweedie 2000; L0, R0, Q0)
:func:`funnel_contours`    lines of metafor ``funnel(level=c(90, 95, 99), refline=0)``
=========================  ==========================================================

All tests need at least 3 studies and refuse fewer with a :class:`DataError` that says
why. With fewer than 10 studies each result carries a ``caveat``: the Cochrane Handbook
(version 6, section 13.3.5.4) advises that tests for funnel plot asymmetry be used only
when at least 10 studies are included, because with fewer the power to distinguish
chance from real asymmetry is too low.

References
----------
Begg CB, Mazumdar M (1994). Biometrics 50:1088-1101.
Egger M, Davey Smith G, Schneider M, Minder C (1997). BMJ 315:629-634.
Sterne JAC, Egger M (2005). In: Publication bias in meta-analysis. Wiley, pp. 99-110.
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2006). JAMA 295:676-680.
Harbord RM, Egger M, Sterne JAC (2006). Stat Med 25:3443-3457.
Duval S, Tweedie R (2000). Biometrics 56:455-463; JASA 95:89-98.
Peters JL, et al. (2008). Contour-enhanced meta-analysis funnel plots. J Clin Epidemiol
61:991-996.
Viechtbauer W (2010). J Stat Softw 36(3): metafor ``regtest``, ``ranktest``,
``trimfill``, ``funnel``, ``rma.uni`` (tau² estimators with moderators).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from mscmeta.engine.metareg import metareg_fit
from mscmeta.engine.options import normalise_tau2_method
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.validation import DataError, check_level, validate_effects

__all__ = [
    "MIN_STUDIES",
    "RECOMMENDED_MIN_STUDIES",
    "BiasTest",
    "TrimFillResult",
    "FunnelContours",
    "small_study_caveat",
    "egger_test",
    "begg_test",
    "peters_test",
    "harbord_test",
    "trim_and_fill",
    "funnel_contours",
    "pooled_effects",
    "asymmetry_tests",
]

#: Fewest studies any test here accepts.
MIN_STUDIES = 3
#: Cochrane Handbook v6 section 13.3.5.4: use asymmetry tests only with at least 10 studies.
RECOMMENDED_MIN_STUDIES = 10

def _canonical_tau2(value: object) -> str:
    """Canonical tau² estimator name (aliases as :func:`mscmeta.engine.pooling.normalise_tau2_method`); "FE" for none."""
    if isinstance(value, str) and value.strip().upper() in ("FE", "EE", "FIXED"):
        return "FE"
    return normalise_tau2_method(value)


def small_study_caveat(k: int) -> str | None:
    """Return the Cochrane Handbook caveat for fewer than 10 studies, else ``None``."""
    if k >= RECOMMENDED_MIN_STUDIES:
        return None
    return (
        f"Only k = {k} studies: the Cochrane Handbook (v6, section 13.3.5.4) advises using tests for "
        f"funnel plot asymmetry only when at least {RECOMMENDED_MIN_STUDIES} studies are included, "
        "because with fewer the test is too weak to distinguish chance from real asymmetry; "
        "interpret this result with great caution."
    )


@dataclass(frozen=True)
class BiasTest:
    """Result of a test for funnel-plot asymmetry (small-study effects).

    Attributes
    ----------
    test : str
        Short name ("Egger", "Begg", "Peters", "Harbord").
    method : str
        What was computed and which reference it reproduces.
    k : int
        Number of studies used.
    statistic : float
        Test statistic (t, z or Kendall's tau-based, see ``statistic_name``).
    statistic_name : str
        "t" or "z".
    df : float or None
        Degrees of freedom of a t statistic.
    p_value : float
        Two-sided p-value.
    coefficient, se : float
        Asymmetry coefficient (slope on the predictor; Kendall's tau for Begg) and its
        standard error (NaN for Begg).
    limit_estimate, limit_ci_low, limit_ci_high : float
        Intercept of the regression = "limit estimate" as precision goes to infinity
        (metafor ``regtest``), with its confidence interval; NaN where not defined.
    caveat : str or None
        Warning when k < 10 (Cochrane Handbook 13.3.5.4).
    """

    test: str
    method: str
    k: int
    statistic: float
    statistic_name: str
    df: float | None
    p_value: float
    coefficient: float
    se: float
    limit_estimate: float = float("nan")
    limit_ci_low: float = float("nan")
    limit_ci_high: float = float("nan")
    caveat: str | None = None

    def to_dict(self) -> dict:
        """Return the fields as a plain dict (JSON-friendly)."""
        return asdict(self)


# ---------------------------------------------------------------------------
# Regression engines
# ---------------------------------------------------------------------------


def _wls(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Weighted least squares with multiplicative dispersion (R ``lm(y ~ 0 + X, weights=w)``).

    Returns coefficients, their covariance matrix ``s² (X'WX)⁻¹`` with
    ``s² = Σ w e² / (k - p)``, and the residual degrees of freedom ``k - p``.
    """
    xtwx = X.T @ (w[:, None] * X)
    inv = np.linalg.inv(xtwx)
    beta = inv @ (X.T @ (w * y))
    resid = y - X @ beta
    dof = X.shape[0] - X.shape[1]
    s2 = float(np.sum(w * resid**2) / dof)
    return beta, s2 * inv, dof


# ---------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------


def _effects(yi: ArrayLike, vi: ArrayLike, studies: Sequence[object] | None, test: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    y, v, labels = validate_effects(np.atleast_1d(yi).tolist(), np.atleast_1d(vi).tolist(), studies)
    if len(y) < MIN_STUDIES:
        raise DataError(
            f"{test} needs at least {MIN_STUDIES} studies (a regression or rank test on fewer has no "
            f"degrees of freedom left to judge asymmetry); got k = {len(y)}"
        )
    return y, v, labels


def _counts(events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike, test: str) -> tuple[np.ndarray, ...]:
    arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in (events_t, n_t, events_c, n_c)]
    if len({a.shape for a in arrays}) != 1:
        raise DataError(f"{test}: events_t, n_t, events_c and n_c must have the same length")
    a, n1, c, n2 = arrays
    names = ("events_t", "n_t", "events_c", "n_c")
    for name, arr in zip(names, arrays):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
        if bad.any():
            raise DataError(f"{test}: column '{name}' needs non-negative integer counts (row {int(np.flatnonzero(bad)[0]) + 1})")
    if np.any(a > n1) or np.any(c > n2):
        row = int(np.flatnonzero((a > n1) | (c > n2))[0]) + 1
        raise DataError(f"{test}: events greater than the arm total in row {row}")
    if np.any(n1 < 1) or np.any(n2 < 1):
        raise DataError(f"{test}: every arm needs at least one participant")
    return a, n1, c, n2


# ---------------------------------------------------------------------------
# Regression tests
# ---------------------------------------------------------------------------

_PREDICTORS = {
    "sei": "standard error",
    "vi": "sampling variance",
    "ni": "sample size",
    "ninv": "inverse of the sample size",
    "sqrtni": "square root of the sample size",
    "sqrtninv": "inverse square root of the sample size",
}


def egger_test(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    model: str = "lm",
    predictor: str = "sei",
    ni: ArrayLike | None = None,
    tau2_method: str = "REML",
    hksj: bool = False,
    level: float = 0.95,
    studies: Sequence[object] | None = None,
) -> BiasTest:
    """Regression test for funnel-plot asymmetry (Egger et al. 1997), as metafor ``regtest``.

    ``model="lm"`` (default here) is the **classic Egger test**: weighted least squares
    of ``yi`` on the predictor with weights ``1/vi`` and a multiplicative dispersion
    parameter, t test on the slope with ``k - 2`` df — metafor
    ``regtest(x, model="lm", predictor="sei")``, identical to R meta
    ``metabias(method.bias="Egger")`` and Stata ``metabias, egger``. (This is the same
    as regressing the standard normal deviate ``yi/sei`` on the precision ``1/sei`` and
    testing the intercept.)

    ``model="rma"`` is **metafor's default** ``regtest``: a meta-regression of ``yi`` on
    the predictor with additive between-study variance estimated by *tau2_method*
    (``"FE"`` for a fixed-effects meta-regression), z test on the slope (t with
    ``k - 2`` df when ``hksj=True``, metafor ``test="knha"``). Sterne & Egger (2005)
    describe both.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes (analysis scale, e.g. log OR) and sampling variances.
    model : {"lm", "rma"}
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
        As metafor: standard error (default), variance, sample size or transformations.
    ni : array_like, optional
        Total sample sizes, needed for the sample-size predictors.
    tau2_method : {"REML", "DL", "PM", "SJ", "HE", "ML", "EB", "FE"}
        tau² estimator of the ``"rma"`` model (metafor's default REML).
    hksj : bool
        Knapp-Hartung adjustment of the ``"rma"`` model.
    level : float
        Confidence level of the limit estimate.
    studies : sequence, optional
        Study labels (error messages).

    Returns
    -------
    BiasTest
        ``coefficient`` is the slope on the predictor; ``limit_estimate`` the intercept
        (estimate as precision goes to infinity; only for predictors sei, vi, ninv,
        sqrtninv, as metafor).
    """
    level = check_level(level)
    if model not in ("lm", "rma"):
        raise DataError(f"unknown model {model!r}; valid values: lm, rma")
    if predictor not in _PREDICTORS:
        raise DataError(f"unknown predictor {predictor!r}; valid values: {', '.join(_PREDICTORS)}")
    method = _canonical_tau2(tau2_method) if model == "rma" else "FE"
    y, v, _ = _effects(yi, vi, studies, "The regression (Egger) test")
    x = _egger_predictor(predictor, v, ni, y.shape)
    X = np.column_stack([np.ones(len(y)), x])
    if model == "lm":
        fit = _egger_lm(y, v, X, level)
        description = ("Egger regression test: weighted regression with multiplicative dispersion, predictor "
                       f"{_PREDICTORS[predictor]} (metafor regtest model='lm')")
    else:
        fit = _egger_rma(y, v, X, method, hksj, level)
        kind = "fixed-effects" if method == "FE" else f"mixed-effects (tau2 {method}{', Knapp-Hartung' if hksj else ''})"
        description = (f"Egger-type regression test: {kind} meta-regression, predictor {_PREDICTORS[predictor]} "
                       "(metafor regtest model='rma')")
    beta, se, crit = fit["beta"], fit["se"], fit["crit"]
    has_limit = predictor in ("sei", "vi", "ninv", "sqrtninv")
    limit = (float(beta[0]), float(beta[0] - crit * se[0]), float(beta[0] + crit * se[0])) if has_limit else (np.nan,) * 3
    return BiasTest(
        test="Egger", method=description, k=len(y), statistic=fit["stat"], statistic_name=fit["name"], df=fit["df"],
        p_value=fit["p"], coefficient=float(beta[1]), se=float(se[1]),
        limit_estimate=limit[0], limit_ci_low=limit[1], limit_ci_high=limit[2],
        caveat=small_study_caveat(len(y)),
    )


def _egger_predictor(predictor: str, v: np.ndarray, ni: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray:
    """The regressor of the Egger test (metafor ``regtest`` ``predictor``)."""
    if predictor in ("sei", "vi"):
        x = np.sqrt(v) if predictor == "sei" else v
    else:
        if ni is None:
            raise DataError(f"predictor {predictor!r} needs the sample sizes 'ni'")
        n = np.atleast_1d(np.asarray(ni, dtype=float))
        if n.shape != shape or not np.all(np.isfinite(n)) or np.any(n <= 0):
            raise DataError("'ni' must hold one positive sample size per study")
        x = {"ni": n, "ninv": 1.0 / n, "sqrtni": np.sqrt(n), "sqrtninv": 1.0 / np.sqrt(n)}[predictor]
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        raise DataError(f"the regression test is not defined: all studies have the same {_PREDICTORS[predictor]}")
    return x


def _egger_lm(y: np.ndarray, v: np.ndarray, X: np.ndarray, level: float) -> dict:
    """Weighted least squares with multiplicative dispersion; t test on the slope (k - 2 df)."""
    beta, vb, dof = _wls(y, X, 1.0 / v)
    se = np.sqrt(np.diag(vb))
    stat = float(beta[1] / se[1])
    return {"beta": beta, "se": se, "stat": stat, "p": float(2.0 * stats.t.sf(abs(stat), dof)),
            "crit": float(stats.t.ppf(0.5 + level / 2.0, dof)), "name": "t", "df": float(dof)}


def _egger_rma(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str, hksj: bool, level: float) -> dict:
    """Meta-regression with additive tau^2; z test on the slope (t with Knapp-Hartung)."""
    fit = metareg_fit(y, v, X, method, hksj=hksj)
    beta = fit["beta"]
    se = np.sqrt(np.diag(fit["vb"]))
    stat = float(beta[1] / se[1])
    if hksj:
        dof = fit["dof"]
        return {"beta": beta, "se": se, "stat": stat, "p": float(2.0 * stats.t.sf(abs(stat), dof)),
                "crit": float(stats.t.ppf(0.5 + level / 2.0, dof)), "name": "t", "df": float(dof)}
    return {"beta": beta, "se": se, "stat": stat, "p": float(2.0 * stats.norm.sf(abs(stat))),
            "crit": float(stats.norm.ppf(0.5 + level / 2.0)), "name": "z", "df": None}


def begg_test(yi: ArrayLike, vi: ArrayLike, *, studies: Sequence[object] | None = None) -> BiasTest:
    """Rank correlation test of Begg & Mazumdar (1994), as metafor ``ranktest``.

    Kendall's tau-b between the standardised deviates
    ``(yi - θ_FE) / √(vi - 1/Σwᵢ)`` and the variances ``vi`` (θ_FE the inverse-variance
    fixed-effect estimate). As metafor (``cor.test(..., method="kendall", exact=TRUE)``,
    whatever the number of studies): the p-value is R's exact permutation p-value when
    there are no ties, otherwise the normal approximation with the tie-corrected variance
    and no continuity correction (R falls back to it with a warning).

    Returns
    -------
    BiasTest
        ``coefficient`` is Kendall's tau, ``statistic`` the standard normal deviate of
        the asymptotic test (reported for information also when the p-value is exact),
        ``se`` NaN.
    """
    y, v, _ = _effects(yi, vi, studies, "The rank correlation (Begg) test")
    k = len(y)
    if np.ptp(v) == 0:
        raise DataError("the rank correlation test is not defined: all studies have the same sampling variance")
    w = 1.0 / v
    theta = float(np.sum(w * y) / np.sum(w))
    v_star = v - 1.0 / np.sum(w)
    y_star = (y - theta) / np.sqrt(v_star)
    ties = len(np.unique(y_star)) < k or len(np.unique(v)) < k
    exact = not ties
    res = stats.kendalltau(y_star, v, variant="b", method="exact" if exact else "asymptotic")
    asym = stats.kendalltau(y_star, v, variant="b", method="asymptotic")
    z = float(stats.norm.isf(asym.pvalue / 2.0) * np.sign(asym.statistic)) if asym.pvalue > 0 else float("inf")
    how = "exact p-value" if exact else "normal approximation (ties)"
    return BiasTest(
        test="Begg", method=f"Begg and Mazumdar rank correlation test: Kendall's tau-b, {how} (metafor ranktest)",
        k=k, statistic=z, statistic_name="z", df=None, p_value=float(res.pvalue),
        coefficient=float(res.statistic), se=float("nan"), caveat=small_study_caveat(k),
    )


def _log_or_only0(a, n1, c, n2):
    """Log odds ratio with 0.5 added to all cells of zero-cell studies (escalc/meta 'only0')."""
    b, d = n1 - a, n2 - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, 0.5, 0.0)
    return np.log((a + add) * (d + add) / ((b + add) * (c + add))), zero


def peters_test(
    events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike, *, level: float = 0.95
) -> BiasTest:
    """Peters' regression test (Peters et al. 2006), as R meta ``metabias(method.bias="Peters")``.

    Weighted least squares (multiplicative dispersion) of the log odds ratio on the
    inverse total sample size ``1/N``, with weights ``S·F/N`` (``S`` events and ``F``
    non-events in both arms together, i.e. ``1/(1/S + 1/F)``), t test on the slope with
    ``k - 2`` df. The log odds ratio adds 0.5 to every cell of a study with a zero cell
    (R meta ``incr=0.5, method.incr="only0"``, the metafor/RevMan study-level
    convention); studies without any event or without any non-event in both arms are
    excluded (their log OR is not estimable and their weight is 0), as in meta.

    This differs from metafor ``regtest(predictor="ninv", model="lm")``, which uses
    weights ``1/vi``; that variant is :func:`egger_test` with ``predictor="ninv"``.

    Returns
    -------
    BiasTest
        ``coefficient`` is the slope on 1/N; ``limit_estimate`` the intercept (log OR as
        N goes to infinity) with a t-based confidence interval.
    """
    level = check_level(level)
    a, n1, c, n2 = _counts(events_t, n_t, events_c, n_c, "Peters' test")
    events = a + c
    nonevents = (n1 - a) + (n2 - c)
    keep = (events > 0) & (nonevents > 0)
    a, n1, c, n2, events, nonevents = (x[keep] for x in (a, n1, c, n2, events, nonevents))
    k = int(keep.sum())
    if k < MIN_STUDIES:
        raise DataError(
            f"Peters' test needs at least {MIN_STUDIES} studies with events and non-events "
            f"(a regression on fewer has no residual degrees of freedom); got k = {k}"
        )
    total = n1 + n2
    if np.ptp(total) == 0:
        raise DataError("Peters' test is not defined: all studies have the same total sample size")
    y, _ = _log_or_only0(a, n1, c, n2)
    X = np.column_stack([np.ones(k), 1.0 / total])
    beta, vb, dof = _wls(y, X, events * nonevents / total)
    se = np.sqrt(np.diag(vb))
    stat = float(beta[1] / se[1])
    crit = float(stats.t.ppf(0.5 + level / 2.0, dof))
    return BiasTest(
        test="Peters", method="Peters regression test: log OR on 1/N, weights S*F/N, multiplicative dispersion (R meta metabias 'Peters')",
        k=k, statistic=stat, statistic_name="t", df=float(dof), p_value=float(2.0 * stats.t.sf(abs(stat), dof)),
        coefficient=float(beta[1]), se=float(se[1]),
        limit_estimate=float(beta[0]), limit_ci_low=float(beta[0] - crit * se[0]), limit_ci_high=float(beta[0] + crit * se[0]),
        caveat=small_study_caveat(k),
    )


def harbord_test(
    events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike, *, level: float = 0.95
) -> BiasTest:
    """Harbord's modified test for the odds ratio (Harbord et al. 2006), as R meta ``metabias(method.bias="Harbord")``.

    With the efficient score ``Z = a - (a + c) n_t / N`` and its null variance (Fisher
    information) ``V = n_t n_c (a + c)(N - a - c) / (N² (N - 1))`` of each 2×2 table
    (raw counts, no continuity correction), regress ``Z/√V`` on ``√V`` by ordinary least
    squares and test the intercept with a t test on ``k - 2`` df — equivalently, weighted
    regression of ``Z/V`` on ``1/√V`` with weights ``V``, testing the slope (R meta's
    form; Stata ``metabias, harbord``). Tables without events or without non-events in
    both arms (``V = 0``) carry no information and are excluded.

    Returns
    -------
    BiasTest
        ``coefficient`` is the intercept of the ``Z/√V`` on ``√V`` regression (R meta's
        "bias"), ``limit_estimate`` the slope (a log OR, the estimate as precision goes
        to infinity) with a t-based confidence interval.
    """
    level = check_level(level)
    a, n1, c, n2 = _counts(events_t, n_t, events_c, n_c, "Harbord's test")
    N = n1 + n2
    events = a + c
    V = n1 * n2 * events * (N - events) / (N**2 * (N - 1.0))
    keep = V > 0
    k = int(keep.sum())
    if k < MIN_STUDIES:
        raise DataError(
            f"Harbord's test needs at least {MIN_STUDIES} studies with events and non-events "
            f"(a regression on fewer has no residual degrees of freedom); got k = {k}"
        )
    Z = (a - events * n1 / N)[keep]
    V = V[keep]
    if np.ptp(V) <= 1e-12 * float(np.max(V)):
        raise DataError("Harbord's test is not defined: all studies have the same score variance")
    X = np.column_stack([np.ones(k), np.sqrt(V)])
    beta, vb, dof = _wls(Z / np.sqrt(V), X, np.ones(k))
    se = np.sqrt(np.diag(vb))
    stat = float(beta[0] / se[0])
    crit = float(stats.t.ppf(0.5 + level / 2.0, dof))
    return BiasTest(
        test="Harbord", method="Harbord modified test: Z/sqrt(V) on sqrt(V), efficient score of the log OR (R meta metabias 'Harbord')",
        k=k, statistic=stat, statistic_name="t", df=float(dof), p_value=float(2.0 * stats.t.sf(abs(stat), dof)),
        coefficient=float(beta[0]), se=float(se[0]),
        limit_estimate=float(beta[1]), limit_ci_low=float(beta[1] - crit * se[1]), limit_ci_high=float(beta[1] + crit * se[1]),
        caveat=small_study_caveat(k),
    )


# ---------------------------------------------------------------------------
# Trim and fill
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrimFillResult:
    """Result of :func:`trim_and_fill`.

    Attributes
    ----------
    k0 : int
        Estimated number of missing studies.
    se_k0 : float
        Standard error of the k0 estimator (metafor ``se.k0``).
    side : str
        Side of the funnel on which studies were imputed ("left" or "right").
    estimator : str
        "L0", "R0" or "Q0".
    p_k0 : float
        For R0: p-value of the test of no missing studies on that side; NaN otherwise.
    k : int
        Number of observed studies.
    filled : pandas.DataFrame
        Observed and imputed studies: ``study``, ``yi``, ``vi``, ``filled`` (bool).
    fit : MetaResult
        The meta-analysis of the filled data set (same model as requested).
    model, tau2_method : str
    caveat : str or None
    """

    k0: int
    se_k0: float
    side: str
    estimator: str
    p_k0: float
    k: int
    filled: pd.DataFrame = field(repr=False)
    fit: object = field(repr=False)
    model: str = "fixed"
    tau2_method: str | None = None
    caveat: str | None = None

    @property
    def estimate(self) -> float:
        """Adjusted pooled estimate (analysis scale)."""
        return float(self.fit.estimate)

    @property
    def ci_low(self) -> float:
        return float(self.fit.ci_low)

    @property
    def ci_high(self) -> float:
        return float(self.fit.ci_high)

    def summary_frame(self) -> pd.DataFrame:
        """One-row table: k, k0, side, estimator, adjusted estimate, SE, CI, p, tau², Q, I²."""
        f = self.fit
        return pd.DataFrame([{
            "k": self.k, "k0": self.k0, "se_k0": self.se_k0, "side": self.side, "estimator": self.estimator,
            "p_k0": self.p_k0, "k_filled": self.k + self.k0, "estimate": f.estimate, "se": f.se,
            "ci_low": f.ci_low, "ci_high": f.ci_high, "p_value": f.p_value,
            "tau2": f.tau2, "Q": f.Q, "Q_df": f.Q_df, "I2": f.I2, "model": self.model,
        }])


def trim_and_fill(
    yi: ArrayLike,
    vi: ArrayLike,
    estimator: str = "L0",
    side: str | None = None,
    model: str = "fixed",
    *,
    tau2_method: str = "REML",
    level: float = 0.95,
    measure: str = "GEN",
    studies: Sequence[object] | None = None,
    maxiter: int = 100,
) -> TrimFillResult:
    """Trim-and-fill method of Duval & Tweedie (2000), as metafor ``trimfill``.

    Algorithm of metafor ``trimfill.rma.uni``: if *side* is not given, it is the side
    opposite to the sign of the slope of the regression of ``yi`` on ``√vi`` fitted with
    the same model (``"right"`` if the slope is negative). The data are then flipped so
    that missing studies are on the left, sorted, and iterated: fit the model to the
    ``k - k0`` least extreme studies, centre all studies on that estimate, rank the
    absolute centred values (ties in input order) and update

    * L0: ``k0 = (4 S_r - k(k+1)) / (2k - 1)`` with ``S_r`` the sum of positive signed ranks,
    * R0: ``k0 = γ* - 1`` with ``γ*`` the length of the rightmost run of positive ranks,
    * Q0: ``k0 = k - 1/2 - √(2k² - 4 S_r + 1/4)``,

    rounded and truncated at 0, until ``k0`` no longer changes. The ``k0`` most extreme
    studies are mirrored around the last truncated estimate (``2 θ - yᵢ``, same
    variance) and the model is refitted to the ``k + k0`` studies.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes (analysis scale) and sampling variances.
    estimator : {"L0", "R0", "Q0"}
    side : {"left", "right"}, optional
    model : {"fixed", "random"}
        Model used in every step (metafor uses the model of the fit passed in).
    tau2_method : str
        tau² estimator when ``model="random"``.
    level : float
        Confidence level of the final fit.
    measure : str
        Effect measure label passed to the final fit (e.g. "OR" to report ratios).
    studies : sequence, optional
        Study labels; imputed studies are labelled "Filled 1", "Filled 2", ...
    maxiter : int
        Maximum number of iterations.

    Returns
    -------
    TrimFillResult
    """
    level = check_level(level)
    estimator = str(estimator).upper()
    if estimator not in ("L0", "R0", "Q0"):
        raise DataError(f"unknown estimator {estimator!r}; valid values: L0, R0, Q0")
    if model not in ("fixed", "random"):
        raise DataError(f"unknown model {model!r}; valid values: fixed, random")
    if side is not None and side not in ("left", "right"):
        raise DataError(f"unknown side {side!r}; valid values: left, right (or None to estimate it)")
    method = "FE" if model == "fixed" else _canonical_tau2(tau2_method)
    y_obs, v_obs, labels = _effects(yi, vi, studies, "Trim and fill")
    k = len(y_obs)
    side = side if side is not None else _trim_fill_side(y_obs, v_obs, method)
    y = -y_obs if side == "right" else y_obs.copy()
    order = np.argsort(y, kind="stable")
    y, v = y[order], v_obs[order]
    k0, se_k0, beta = _trim_iterations(y, v, method, estimator, maxiter)
    imputed_y = 2.0 * beta - y[k - k0:]
    if side == "right":
        imputed_y = -imputed_y
    filled = pd.DataFrame({
        "study": list(labels) + [f"Filled {i + 1}" for i in range(k0)],
        "yi": np.concatenate([y_obs, imputed_y]),
        "vi": np.concatenate([v_obs, v[k - k0:]]),
        "filled": [False] * k + [True] * k0,
    })
    if model == "fixed":
        fit = fixed_effect(filled["yi"].to_numpy(), filled["vi"].to_numpy(), studies=filled["study"].tolist(),
                           level=level, measure=measure)
    else:
        fit = random_effects(filled["yi"].to_numpy(), filled["vi"].to_numpy(), studies=filled["study"].tolist(),
                             tau2_method=method, level=level, measure=measure)
    p_k0 = float(0.5 ** (k0 + 1)) if estimator == "R0" else float("nan")
    return TrimFillResult(
        k0=k0, se_k0=se_k0, side=side, estimator=estimator, p_k0=p_k0, k=k, filled=filled, fit=fit,
        model=model, tau2_method=None if model == "fixed" else method, caveat=small_study_caveat(k),
    )


def _trim_fill_side(y: np.ndarray, v: np.ndarray, method: str) -> str:
    """The side where studies are missing: opposite to the sign of the Egger-type slope (metafor)."""
    if np.ptp(v) == 0:
        raise DataError("trim and fill cannot choose a side: all studies have the same variance; give side='left' or 'right'")
    X = np.column_stack([np.ones(len(y)), np.sqrt(v)])
    return "right" if metareg_fit(y, v, X, method)["beta"][1] < 0 else "left"


def _k0_estimate(signed: np.ndarray, k: int, estimator: str) -> tuple[float, float]:
    """Duval & Tweedie's estimate of the number of missing studies and its standard error.

    The standard error is NaN where its variance estimate is negative (e.g. L0 with a
    strongly negative raw k0), as metafor's ``se.k0`` (R's ``sqrt`` of a negative number).
    """
    if estimator == "R0":
        negative = -signed[signed < 0]
        k0_raw = (k - (negative.max() if negative.size else 0.0)) - 1.0
        return k0_raw, float(np.sqrt(2.0 * max(0.0, k0_raw) + 2.0))
    sr = float(signed[signed > 0].sum())
    if estimator == "L0":
        k0_raw = (4.0 * sr - k * (k + 1.0)) / (2.0 * k - 1.0)
    else:
        k0_raw = k - 0.5 - np.sqrt(2.0 * k**2 - 4.0 * sr + 0.25)
    var_sr = (k * (k + 1.0) * (2.0 * k + 1.0) + 10.0 * k0_raw**3 + 27.0 * k0_raw**2 + 17.0 * k0_raw
              - 18.0 * k * k0_raw**2 - 18.0 * k * k0_raw + 6.0 * k**2 * k0_raw) / 24.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_sr = np.sqrt(np.float64(var_sr))
        if estimator == "L0":
            return k0_raw, float(4.0 * sd_sr / (2.0 * k - 1.0))
        return k0_raw, float(2.0 * sd_sr / np.sqrt(np.float64((k - 0.5) ** 2 - k0_raw * (2.0 * k - k0_raw - 1.0))))


def _trim_iterations(y: np.ndarray, v: np.ndarray, method: str, estimator: str, maxiter: int) -> tuple[int, float, float]:
    """Trim the k0 most extreme studies, re-estimate, recount, until k0 is stable (metafor ``trimfill``).

    *y* is sorted with the missing side on the left. Returns ``(k0, se_k0, estimate of the trimmed set)``.
    """
    k = len(y)
    k0, k0_prev, it = 0, -1, 0
    se_k0, beta = float("nan"), float("nan")
    ones = np.ones(k)
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise DataError("trim and fill did not converge")
        m = k - k0
        beta = float(metareg_fit(y[:m], v[:m], ones[:m, None], method)["beta"][0])
        centred = y - beta
        signed = np.sign(centred) * stats.rankdata(np.abs(centred), method="ordinal")
        k0_raw, se_k0 = _k0_estimate(signed, k, estimator)
        k0 = min(int(max(0.0, float(np.round(k0_raw)))), k - 1)  # R round(): half to even
    return k0, se_k0, beta


# ---------------------------------------------------------------------------
# Contour-enhanced funnel plot data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelContours:
    """Data for a contour-enhanced funnel plot (analysis scale, SE on the y axis).

    Attributes
    ----------
    points : pandas.DataFrame
        ``study``, ``yi``, ``se`` of the observed studies.
    contours : pandas.DataFrame
        Long table ``p_level, se, low, high``: for each significance level the effect
        sizes at which a study with that SE is just significant in a two-sided z test
        of ``θ = center`` (``center ± z_{1-p/2} · se``; Peters et al. 2008).
    pseudo_ci : pandas.DataFrame
        ``se, low, high``: the pseudo confidence region ``estimate ± z_{(1+level)/2} · se``
        around the pooled estimate (metafor ``funnel`` default lines).
    center : float
        Centre of the significance contours (0 = no effect on the log/difference scale).
    estimate : float
        Pooled estimate used for the pseudo-confidence lines.
    se_max : float
        Bottom of the funnel (largest SE shown).
    """

    points: pd.DataFrame
    contours: pd.DataFrame
    pseudo_ci: pd.DataFrame
    center: float
    estimate: float
    se_max: float

    @property
    def levels(self) -> tuple[float, ...]:
        """Two-sided significance levels of the contours, ascending (e.g. 0.01, 0.05, 0.10)."""
        return tuple(sorted(float(p) for p in self.contours["p_level"].unique()))

    @property
    def z(self) -> list[float]:
        """Standard normal quantiles ``z_{1-p/2}`` matching :attr:`levels`."""
        return [float(stats.norm.isf(p / 2.0)) for p in self.levels]


def funnel_contours(
    yi: ArrayLike,
    vi: ArrayLike,
    estimate: float,
    *,
    studies: Sequence[object] | None = None,
    center: float = 0.0,
    p_levels: Sequence[float] = (0.10, 0.05, 0.01),
    level: float = 0.95,
    se_max: float | None = None,
    n_points: int = 51,
) -> FunnelContours:
    """Lines of a contour-enhanced funnel plot (Peters et al. 2008; metafor ``funnel``).

    Parameters
    ----------
    yi, vi : array_like
        Study effect sizes (analysis scale) and sampling variances.
    estimate : float
        Pooled estimate (analysis scale) for the pseudo-confidence lines.
    studies : sequence, optional
        Study labels.
    center : float
        Null value of the significance contours (metafor ``refline=0``).
    p_levels : sequence of float
        Two-sided significance levels of the contours (metafor ``level=c(90, 95, 99)``).
    level : float
        Confidence level of the pseudo-confidence lines.
    se_max : float, optional
        Largest SE of the grid (default: the largest study SE, as metafor's y axis).
    n_points : int
        Number of SE grid points from 0 to ``se_max`` (the lines are straight; more
        points only help shading).
    """
    level = check_level(level)
    y, v, labels = validate_effects(np.atleast_1d(yi).tolist(), np.atleast_1d(vi).tolist(), studies)
    se = np.sqrt(v)
    top = float(se.max()) if se_max is None else float(se_max)
    if not top > 0:
        raise DataError("se_max must be positive")
    for p in p_levels:
        if not 0 < p < 1:
            raise DataError(f"significance levels must be between 0 and 1, got {p!r}")
    grid = np.linspace(0.0, top, int(max(2, n_points)))
    contour_rows = []
    for p in sorted(p_levels, reverse=True):
        z = float(stats.norm.isf(p / 2.0))
        contour_rows.append(pd.DataFrame({"p_level": p, "se": grid, "low": center - z * grid, "high": center + z * grid}))
    z_ci = float(stats.norm.ppf(0.5 + level / 2.0))
    return FunnelContours(
        points=pd.DataFrame({"study": labels, "yi": y, "se": se}),
        contours=pd.concat(contour_rows, ignore_index=True),
        pseudo_ci=pd.DataFrame({"se": grid, "low": estimate - z_ci * grid, "high": estimate + z_ci * grid}),
        center=float(center), estimate=float(estimate), se_max=top,
    )


# ---------------------------------------------------------------------------
# Convenience: all applicable tests of a pooled result
# ---------------------------------------------------------------------------


def pooled_effects(result) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Study estimates, variances and labels of the studies that entered *result*.

    These are the ``yi``/``vi`` of ``result.studies`` (with the result's zero-cell
    convention) for the rows flagged ``estimable``, i.e. what a funnel plot shows.
    """
    studies = result.studies
    keep = studies["estimable"].to_numpy(dtype=bool)
    keep &= np.isfinite(studies["yi"].to_numpy(dtype=float)) & np.isfinite(studies["vi"].to_numpy(dtype=float))
    return (studies.loc[keep, "yi"].to_numpy(dtype=float), studies.loc[keep, "vi"].to_numpy(dtype=float),
            studies.loc[keep, "study"].astype(str).tolist())


def asymmetry_tests(result) -> pd.DataFrame:
    """Run every applicable funnel-plot asymmetry test on a pooled result.

    Egger (classic, ``model="lm"``), Egger mixed-effects (metafor's default
    ``regtest``, REML) and Begg on the study estimates of :func:`pooled_effects`; for
    binary odds-ratio analyses (OR, Peto OR) also Peters and Harbord on the 2×2 counts
    (Sterne et al. 2011, BMJ 343:d4002, recommend these for odds ratios). A test that
    cannot be run (e.g. fewer than 3 studies) gives a row with NaN values and the reason
    in ``note``.

    Returns
    -------
    pandas.DataFrame
        Columns ``test, method, k, statistic_name, statistic, df, p_value, coefficient,
        se, limit_estimate, limit_ci_low, limit_ci_high, caveat, note``.
    """
    yi, vi, labels = pooled_effects(result)
    runs = [
        ("Egger", lambda: egger_test(yi, vi, model="lm", studies=labels)),
        ("Egger (mixed-effects)", lambda: egger_test(yi, vi, model="rma", tau2_method="REML", studies=labels)),
        ("Begg", lambda: begg_test(yi, vi, studies=labels)),
    ]
    studies = result.studies
    binary = np.isfinite(pd.to_numeric(studies["events_t"], errors="coerce").to_numpy(dtype=float)).all()
    if binary and str(result.measure).upper() in ("OR", "PETO"):
        counts = [studies[c].to_numpy(dtype=float) for c in ("events_t", "n_t", "events_c", "n_c")]
        runs += [("Peters", lambda: peters_test(*counts)), ("Harbord", lambda: harbord_test(*counts))]
    columns = ["test", "method", "k", "statistic_name", "statistic", "df", "p_value", "coefficient", "se",
               "limit_estimate", "limit_ci_low", "limit_ci_high", "caveat", "note"]
    rows = []
    for name, run in runs:
        try:
            res = run()
        except DataError as err:
            rows.append({c: np.nan for c in columns} | {"test": name, "method": "", "k": len(yi), "statistic_name": "",
                                                         "caveat": small_study_caveat(len(yi)), "note": str(err)})
            continue
        row = res.to_dict()
        row["test"] = name
        row["note"] = ""
        rows.append(row)
    return pd.DataFrame(rows)[columns]
