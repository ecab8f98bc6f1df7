"""Continuous outcomes: mean differences, Hedges' g, and means/SDs from medians.

Three jobs, each reproducing the R package metafor exactly:

* study-level effect sizes — :func:`mean_difference` (metafor ``escalc(measure="MD")``)
  and :func:`standardised_mean_difference` (``escalc(measure="SMD")``, Hedges' g with
  the exact small-sample correction);
* :func:`fivenum_to_mean_sd` — estimate a mean and SD from a median with the
  interquartile range and/or the range, with metafor ``conv.fivenum``'s default
  methods (Luo et al. 2018 for the mean; Wan et al. 2014 or Shi et al. 2020 for the
  SD; Shi et al. 2023 skewness test), recording the method used for every row;
* :func:`meta_continuous` — validate a table of arm-level means/SDs, compute MD or
  SMD and pool them with :mod:`mscmeta.engine.pooling` (inverse-variance fixed effect or
  random effects with any of its tau² estimators).

References
----------
Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related
estimators. J Educ Stat 6:107-128.
Luo D, Wan X, Liu J, Tong T (2018). Optimally estimating the sample mean from the sample
size, median, mid-range, and/or mid-quartile range. Stat Methods Med Res 27:1785-1805
(online 2016; cited by metafor as "Luo et al. (2016)").
Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard deviation
from the sample size, median, range and/or interquartile range. BMC Med Res Methodol
14:135.
Shi J, Luo D, Weng H, et al. (2020). Optimally estimating the sample standard deviation
from the five-number summary. Res Synth Methods 11:641-654.
Shi J, Tong T, Wang Y, Genton MG (2020b). Estimating the mean and variance from the
five-number summary of a log-normal distribution. Stat Interface 13:519-531.
Shi J, Luo D, Wan X, et al. (2023). Detecting the skewness of data from the five-number
summary and its application in meta-analysis. Stat Methods Med Res 32:1338-1360.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat
Softw 36(3). Functions ``escalc`` and ``conv.fivenum`` (R/conv.fivenum.r).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import gammaln
from scipy.stats import norm

from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import DataError, _check_study_ids, _join, _numeric, check_level, resolve_columns

__all__ = [
    "CONTINUOUS_COLUMNS",
    "validate_continuous",
    "hedges_correction",
    "mean_difference",
    "standardised_mean_difference",
    "fivenum_to_mean_sd",
    "meta_continuous",
]

#: Default input columns of :func:`meta_continuous` (t = intervention arm, c = control).
CONTINUOUS_COLUMNS: tuple[str, ...] = ("study", "mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")

#: Human-readable names of the three cases (what is reported) of :func:`fivenum_to_mean_sd`.
FIVENUM_CASES: dict[str, str] = {
    "S1": "median, range",
    "S2": "median, IQR",
    "S3": "median, IQR, range",
}


# ---------------------------------------------------------------------------
# Study-level effect sizes
# ---------------------------------------------------------------------------


def _as_float_arrays(*values: ArrayLike) -> list[np.ndarray]:
    arrays = [np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"arm-level inputs must have the same length, got shapes {sorted(shapes)}")
    return arrays


def mean_difference(
    m_t: ArrayLike, sd_t: ArrayLike, n_t: ArrayLike, m_c: ArrayLike, sd_c: ArrayLike, n_c: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean difference and its sampling variance (metafor ``escalc(measure="MD")``).

    ``yi = m_t - m_c`` and ``vi = sd_t²/n_t + sd_c²/n_c`` — the heteroscedastic variance
    that is metafor's default (``vtype="LS"``) and RevMan's for mean differences.

    Parameters
    ----------
    m_t, sd_t, n_t, m_c, sd_c, n_c : array_like
        Mean, standard deviation and sample size of the intervention (t) and control
        (c) arms.

    Returns
    -------
    yi, vi : numpy.ndarray
        Mean differences and their sampling variances.
    """
    m_t, sd_t, n_t, m_c, sd_c, n_c = _as_float_arrays(m_t, sd_t, n_t, m_c, sd_c, n_c)
    yi = m_t - m_c
    vi = sd_t**2 / n_t + sd_c**2 / n_c
    return yi, vi


def hedges_correction(df: ArrayLike) -> np.ndarray:
    """Exact small-sample bias correction factor J(m) of Hedges (1981).

    ``J(m) = Γ(m/2) / (√(m/2) · Γ((m-1)/2))`` with ``m = n_t + n_c - 2`` (Hedges 1981,
    eq. 6e; metafor's internal ``.cmicalc``), computed on the log scale with
    :func:`scipy.special.gammaln` so that large ``m`` does not overflow.
    ``J`` is close to the familiar approximation ``1 - 3/(4m - 1)``.
    """
    m = np.asarray(df, dtype=float)
    return np.exp(gammaln(m / 2.0) - 0.5 * np.log(m / 2.0) - gammaln((m - 1.0) / 2.0))


def standardised_mean_difference(
    m_t: ArrayLike, sd_t: ArrayLike, n_t: ArrayLike, m_c: ArrayLike, sd_c: ArrayLike, n_c: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g with the exact small-sample correction (metafor ``escalc(measure="SMD")``).

    ``g = J(n_t + n_c - 2) · (m_t - m_c) / s_pooled`` where
    ``s_pooled = √(((n_t-1) sd_t² + (n_c-1) sd_c²) / (n_t + n_c - 2))`` and ``J`` is
    :func:`hedges_correction` (Hedges 1981). The sampling variance is metafor's default
    large-sample estimate (``vtype="LS"``; Hedges 1981, eq. 8 with g plugged in):
    ``vi = 1/n_t + 1/n_c + g² / (2 (n_t + n_c))``.

    Note that RevMan 5 also reports Hedges' g ("Std. Mean Difference") but uses the
    approximation ``J ≈ 1 - 3/(4N - 9)`` and ``vi = N/(n_t n_c) + g²/(2(N - 3.94))``;
    its values therefore differ slightly (third decimal) from these.

    Returns
    -------
    yi, vi : numpy.ndarray
        Hedges' g and its sampling variance.
    """
    m_t, sd_t, n_t, m_c, sd_c, n_c = _as_float_arrays(m_t, sd_t, n_t, m_c, sd_c, n_c)
    df = n_t + n_c - 2.0
    sd_pooled = np.sqrt(((n_t - 1.0) * sd_t**2 + (n_c - 1.0) * sd_c**2) / df)
    yi = hedges_correction(df) * (m_t - m_c) / sd_pooled
    vi = 1.0 / n_t + 1.0 / n_c + yi**2 / (2.0 * (n_t + n_c))
    return yi, vi


# ---------------------------------------------------------------------------
# Median / IQR / range -> mean / SD (metafor conv.fivenum, default methods)
# ---------------------------------------------------------------------------


def _wan_xi(n: float) -> float:
    """Expected range of n standard normal draws, Wan et al. (2014) eq. (9): 2 Φ⁻¹((n-0.375)/(n+0.25))."""
    return 2.0 * float(norm.ppf((n - 0.375) / (n + 0.25)))


def _wan_eta(n: float) -> float:
    """Expected IQR of n standard normal draws, Wan et al. (2014) eq. (16): 2 Φ⁻¹((0.75n-0.125)/(n+0.25))."""
    return 2.0 * float(norm.ppf((0.75 * n - 0.125) / (n + 0.25)))


def _back_transform(mean: float, sd: float, n: float, s4: float, a: float, b: float, c: float, d: float, e: float) -> tuple[float, float]:
    """Bias-corrected back-transformation from the log scale (Shi et al. 2020b), as in conv.fivenum."""
    phi = 1.0 + a * sd**2 / n + b * s4 / n
    bt_mean = np.exp(mean + sd**2 / 2.0) / phi
    phi1 = 1.0 + c * sd**2 / n + d * s4 / n
    phi2 = 1.0 + c * sd**2 / n + e * s4 / n
    bt_sd = np.sqrt(np.exp(2.0 * mean + 2.0 * sd**2) / phi1 - np.exp(2.0 * mean + sd**2) / phi2)
    return float(bt_mean), float(bt_sd)


def _convert_row(
    mn: float, q1: float, md: float, q3: float, mx: float, n: float, dist: str, transf: bool
) -> tuple[str, float, float, float, float]:
    """Return (scenario, mean, sd, skew_statistic, skew_critical) for one row (no checks here)."""
    has = {name: np.isfinite(v) for name, v in (("min", mn), ("q1", q1), ("median", md), ("q3", q3), ("max", mx))}
    lognormal = dist == "lnorm"
    if lognormal:
        mn, q1, md, q3, mx = (np.log(v) if np.isfinite(v) else np.nan for v in (mn, q1, md, q3, mx))
    nan = float("nan")
    if has["min"] and has["max"] and has["q1"] and has["q3"]:
        # S3: Luo et al. eq. (15) mean, Shi et al. (2020a) eq. (10) SD; Shi et al. (2023) skewness test.
        stat = max(
            2.65 * np.log(0.6 * n) / np.sqrt(n) * abs((mn + mx - 2.0 * md) / (mx - mn)),
            abs((q1 + q3 - 2.0 * md) / (q3 - q1)),
        )
        crit = 3.0 / np.sqrt(n) - 40.0 / n**3
        w1 = 2.2 / (2.2 + n**0.75)
        w2 = 0.7 - 0.72 / n**0.55
        mean = w1 * (mn + mx) / 2.0 + w2 * (q1 + q3) / 2.0 + (1.0 - w1 - w2) * md
        w = 1.0 / (1.0 + 0.07 * n**0.6)
        sd_raw = w * (mx - mn) / _wan_xi(n) + (1.0 - w) * (q3 - q1) / _wan_eta(n)
        z3 = 1.0 + 0.28 / np.log(n) ** 2 if lognormal else 1.0
        sd = sd_raw / np.sqrt(z3)
        if lognormal and transf:
            s4 = sd_raw**4 / (1.0 + 3.93 / n)
            mean, sd = _back_transform(mean, sd, n, s4, 0.405, 0.315, 1.62, 5.04, 1.26)
        return "S3", float(mean), float(sd), float(stat), float(crit)
    if has["min"] and has["max"] and not has["q1"] and not has["q3"]:
        # S1: Luo et al. eq. (7) mean, Wan et al. (2014) eq. (9) SD.
        stat = abs((mn + mx - 2.0 * md) / (mx - mn))
        crit = 1.0 / np.log(n + 9.0) + 2.5 / (n + 1.0)
        w = 4.0 / (4.0 + n**0.75)
        mean = w * (mn + mx) / 2.0 + (1.0 - w) * md
        z1 = 1.01 + 0.25 / np.log(n) ** 2 if lognormal else 1.0
        sd_raw = (mx - mn) / _wan_xi(n)
        sd = sd_raw / np.sqrt(z1)
        if lognormal and transf:
            s4 = sd_raw**4 / (1.0 + 2.23 / np.log(n) ** 2)
            mean, sd = _back_transform(mean, sd, n, s4, 0.565, 0.37, 2.26, 5.92, 1.48)
        return "S1", float(mean), float(sd), float(stat), float(crit)
    if has["q1"] and has["q3"] and not has["min"] and not has["max"]:
        # S2: Luo et al. eq. (11) mean, Wan et al. (2014) eq. (16) SD.
        stat = abs((q1 + q3 - 2.0 * md) / (q3 - q1))
        crit = 2.65 / np.sqrt(n) - 6.0 / n**2
        w = 0.7 + 0.39 / n
        mean = w * (q1 + q3) / 2.0 + (1.0 - w) * md
        z2 = 1.0 + 1.58 / n if lognormal else 1.0
        sd_raw = (q3 - q1) / _wan_eta(n)
        sd = sd_raw / np.sqrt(z2)
        if lognormal and transf:
            s4 = sd_raw**4 / (1.0 + 19.2 / n**1.2)
            mean, sd = _back_transform(mean, sd, n, s4, 0.57, 0.75, 2.28, 12.0, 3.0)
        return "S2", float(mean), float(sd), float(stat), float(crit)
    return "", nan, nan, nan, nan


def _method_label(scenario: str, has_median: bool, dist: str) -> str:
    if not scenario:
        return ""
    sd_method = "Shi 2020" if scenario == "S3" else "Wan 2014"
    label = f"Luo 2018 / {sd_method} ({FIVENUM_CASES[scenario]})" if has_median else f"{sd_method} SD only ({FIVENUM_CASES[scenario].replace('median, ', '')})"
    if dist == "lnorm":
        label += ", log-normal (Shi 2020b)"
    return label


def fivenum_to_mean_sd(
    n: ArrayLike,
    median: ArrayLike | None = None,
    q1: ArrayLike | None = None,
    q3: ArrayLike | None = None,
    minimum: ArrayLike | None = None,
    maximum: ArrayLike | None = None,
    *,
    dist: str = "norm",
    transf: bool = True,
    test: bool = True,
    study: Sequence[str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Estimate means and SDs from a median with the IQR and/or range (metafor ``conv.fivenum``).

    Reproduces metafor's default (``method="luo/wan/shi"``), row by row, choosing the
    scenario from which values are present (missing values are NaN):

    ===========  =========================  ===============================  =====================================
    scenario     reported                   mean                             SD
    ===========  =========================  ===============================  =====================================
    S1           median, min, max           Luo et al. 2018, eq. (7)         Wan et al. 2014, eq. (9)
    S2           median, q1, q3             Luo et al. 2018, eq. (11)        Wan et al. 2014, eq. (16)
    S3           median, q1, q3, min, max   Luo et al. 2018, eq. (15)        Shi et al. 2020, eq. (10)
    ===========  =========================  ===============================  =====================================

    The SD methods do not need the median: without it the SD is still estimated and the
    mean is NaN (as in metafor). Before converting, the skewness test of Shi et al.
    (2023) is applied (statistic and critical value exactly as in metafor); with
    ``test=True`` (metafor's default) a row whose test is significant is not converted
    (mean and SD NaN, with a note), because the methods assume normal data. Rows with
    ``n < 5`` are not converted (metafor excludes them too).

    With ``dist="lnorm"`` the values are log-transformed first, the log-normal
    adjustments of Shi et al. (2020b) are applied and, with ``transf=True`` (metafor
    ≥ 4.6 default), the estimates are back-transformed to the raw scale with their
    bias-corrected formulas.

    Parameters
    ----------
    n : array_like
        Sample size of each group.
    median, q1, q3, minimum, maximum : array_like, optional
        Reported summary values (NaN where not reported).
    dist : {"norm", "lnorm"}
        Assumed distribution of the raw data.
    transf : bool
        Back-transform log-normal estimates to the raw scale.
    test : bool
        Skip rows whose skewness test is significant.
    study : sequence of str, optional
        Labels used in error messages and returned in a ``study`` column.
    source : str, optional
        Name of the file the values come from, used in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per input row with columns ``study`` (if given), ``n``, ``mean``, ``sd``,
        ``scenario`` ("S1"/"S2"/"S3" or ""), ``method`` (e.g.
        "Luo 2018 / Wan 2014 (median, IQR)"), ``skew_statistic``, ``skew_critical``,
        ``skewed``, ``converted`` (bool) and ``note``.

    Raises
    ------
    DataError
        If ``min <= q1 <= median <= q3 <= max`` is violated, a value is not numeric, a
        log-normal input is not positive, or ``dist`` is unknown.

    Notes
    -----
    metafor's help page warns that means and SDs estimated this way are less precise
    than reported ones, so variances computed from them understate the uncertainty;
    treat such studies in a sensitivity analysis.
    """
    if dist not in ("norm", "lnorm"):
        raise DataError(f"unknown dist {dist!r}; valid values: norm, lnorm")
    n_arr = np.atleast_1d(np.asarray(n, dtype=float))
    k = n_arr.shape[0]
    given = {"min": minimum, "q1": q1, "median": median, "q3": q3, "max": maximum}
    values = {name: _summary_column(v, name, k, source) for name, v in given.items()}
    labels = [str(s) for s in study] if study is not None else [f"row {i + 1}" for i in range(k)]
    where = f"{source}: " if source else ""
    rows = []
    for i in range(k):
        row = {name: float(arr[i]) for name, arr in values.items()}
        _check_order(row, dist, f"{where}study '{labels[i]}'")
        rows.append(_fivenum_row(row, float(n_arr[i]), dist, transf, test))
    frame = pd.DataFrame(rows)
    if study is not None:
        frame.insert(0, "study", labels)
    return frame


def _summary_column(values: ArrayLike | None, name: str, k: int, source: str | None) -> np.ndarray:
    """One summary statistic as k floats (NaN where not reported)."""
    if values is None:
        return np.full(k, np.nan)
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source or 'input'}: column '{name}' has a non-numeric value") from exc
    if arr.shape != (k,):
        raise DataError(f"{source or 'input'}: '{name}' has {arr.shape[0]} values but n has {k}")
    return arr


def _check_order(row: Mapping[str, float], dist: str, where: str) -> None:
    """min <= q1 <= median <= q3 <= max over the values present; positive values for log-normal."""
    present = [(name, v) for name, v in row.items() if np.isfinite(v)]
    ordered = [v for _, v in present]
    if any(b < a for a, b in zip(ordered, ordered[1:])):
        names = " <= ".join(name for name, _ in present)
        raise DataError(f"{where}: {names} is not true ({', '.join(f'{nm}={v:g}' for nm, v in present)})")
    if dist == "lnorm" and any(v <= 0 for v in ordered):
        raise DataError(f"{where}: log-normal conversion needs positive summary values")


def _fivenum_row(row: Mapping[str, float], n_i: float, dist: str, transf: bool, test: bool) -> dict:
    """The conversion of one row, with the skewness test and the note saying what was done."""
    out = {"n": n_i, "mean": np.nan, "sd": np.nan, "scenario": "", "method": "",
           "skew_statistic": np.nan, "skew_critical": np.nan, "skewed": False,
           "converted": False, "note": ""}
    if not np.isfinite(n_i) or n_i < 5:
        out["note"] = "n < 5 or missing: conversion methods not applicable (metafor conv.fivenum excludes n < 5)"
        return out
    scenario, mean, sd, stat, crit = _convert_row(
        row["min"], row["q1"], row["median"], row["q3"], row["max"], n_i, dist, transf
    )
    if not scenario:
        out["note"] = "needs the range (min, max) and/or the IQR (q1, q3)"
        return out
    has_median = bool(np.isfinite(row["median"]))
    skewed = bool(np.isfinite(stat) and stat >= crit)
    out.update(scenario=scenario, method=_method_label(scenario, has_median, dist),
               skew_statistic=stat, skew_critical=crit, skewed=skewed)
    if test and skewed:
        out["note"] = (f"skewness test significant (Shi et al. 2023: {stat:.3f} >= {crit:.3f}); "
                       "not converted — consider dist='lnorm' or report as median")
        return out
    out.update(mean=mean if has_median else np.nan, sd=sd, converted=True)
    if not has_median:
        out["note"] = "median missing: SD estimated, mean not"
    elif skewed:
        out["note"] = f"skewness test significant ({stat:.3f} >= {crit:.3f}) but converted (test=False)"
    return out


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def validate_continuous(
    data: pd.DataFrame, columns: Mapping[str, str] | None = None, source: str | None = None
) -> pd.DataFrame:
    """Check a table of arm-level means, SDs and sizes and return it in canonical form.

    Returns
    -------
    pandas.DataFrame
        Columns ``study`` (str), ``mean_t``, ``sd_t``, ``n_t``, ``mean_c``, ``sd_c``,
        ``n_c`` (float), in input order.

    Raises
    ------
    DataError
        Listing all problems (source, study, row and column in each): missing columns,
        no rows, missing or duplicate study ids, missing/non-numeric/non-finite cells,
        SDs that are not > 0, sizes that are not integers >= 2.
    """
    names = resolve_columns(data, CONTINUOUS_COLUMNS, columns, source)
    prefix = f"{source}: " if source else ""
    if len(data) == 0:
        raise DataError(f"{prefix}the table has no studies (no data rows)")
    problems: list[str] = []
    labels = _check_study_ids(data[names["study"]], names["study"], source, problems)
    values: dict[str, np.ndarray] = {}
    for name in CONTINUOUS_COLUMNS[1:]:
        col = names[name]
        arr = _numeric(data[col], col, labels, source, problems, integer=name.startswith("n_"))
        for row in np.flatnonzero(np.isfinite(arr)):
            if name.startswith("sd") and not arr[row] > 0:
                problems.append(f"{prefix}study '{labels[row]}' (row {row + 1}), column '{col}': "
                                f"standard deviation must be > 0, got {arr[row]:g}")
            if name.startswith("n_") and arr[row] < 2:
                problems.append(f"{prefix}study '{labels[row]}' (row {row + 1}), column '{col}': "
                                f"group size must be an integer >= 2, got {arr[row]:g}")
        values[name] = arr
    if problems:
        raise DataError(_join(problems))
    out = pd.DataFrame({"study": pd.Series(labels, dtype=object)})
    for name in CONTINUOUS_COLUMNS[1:]:
        out[name] = values[name].astype(float)
    return out


def meta_continuous(
    data: pd.DataFrame,
    measure: str = "MD",
    model: str = "random",
    tau2_method: str = "REML",
    hksj: bool = False,
    level: float = 0.95,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
) -> MetaResult:
    """Meta-analysis of a continuous outcome from arm-level means, SDs and sizes.

    Study effects are :func:`mean_difference` (``measure="MD"``) or
    :func:`standardised_mean_difference` (``"SMD"``, Hedges' g), pooled with inverse
    variance weights by :func:`mscmeta.engine.pooling.fixed_effect` (``model="fixed"``) or
    :func:`mscmeta.engine.pooling.random_effects` (``model="random"``, any of its tau²
    estimators, optional Hartung-Knapp-Sidik-Jonkman). This is metafor's
    ``rma(measure=..., m1i, sd1i, n1i, m2i, sd2i, n2i, method=...)``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study with columns ``study, mean_t, sd_t, n_t, mean_c, sd_c, n_c``
        (rename with *columns*).
    measure : {"MD", "SMD"}
    model : {"random", "fixed"}
    tau2_method : str
        tau² estimator for the random-effects model (see :mod:`mscmeta.engine.tau2`).
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman confidence interval (random effects only).
    level : float
        Confidence level.
    columns : mapping, optional
        Map from the standard names above to the names used in *data*.
    source : str, optional
        File name for error messages.

    Returns
    -------
    mscmeta.engine.results.MetaResult
        With ``measure`` "MD" or "SMD"; ``studies`` holds each study's ``yi``/``vi``
        (the arm-level inputs are not part of :attr:`MetaResult.studies`); ``refit``
        works on ``study, yi, vi`` rows, so the sensitivity analyses apply.

    Raises
    ------
    DataError
        Missing columns, non-numeric cells, ``sd <= 0``, ``n`` not an integer >= 2,
        duplicate study ids (the message names the source, study and column).
    """
    if not isinstance(measure, str) or measure.strip().upper() not in ("MD", "SMD"):
        raise DataError(f"unknown measure {measure!r}; valid values: MD, SMD")
    measure = measure.strip().upper()
    if not isinstance(model, str) or model.strip().lower() not in ("fixed", "random"):
        raise DataError(f"unknown model {model!r}; valid values: fixed, random")
    model = model.strip().lower()
    if hksj and model != "random":
        raise DataError("the Hartung-Knapp-Sidik-Jonkman adjustment applies to random-effects models; use model='random'")
    level = check_level(level)
    frame = validate_continuous(data, columns, source)
    effect = mean_difference if measure == "MD" else standardised_mean_difference
    yi, vi = effect(frame["mean_t"], frame["sd_t"], frame["n_t"], frame["mean_c"], frame["sd_c"], frame["n_c"])
    studies = frame["study"].tolist()
    if model == "fixed":
        result = fixed_effect(yi, vi, studies=studies, level=level, measure=measure)
    else:
        result = random_effects(yi, vi, studies=studies, tau2_method=tau2_method, hksj=hksj,
                                level=level, measure=measure)
    return result
