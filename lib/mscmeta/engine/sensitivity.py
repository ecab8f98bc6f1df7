"""Sensitivity analyses of a pooled result: leave-one-out, influence, cumulative.

All three re-run the *same* analysis (same measure, method, model, tau² estimator,
zero-cell convention, HKSJ, level) on subsets of the input studies, as metafor does; for
inverse-variance models leave-one-out and influence compute all folds at once
(:mod:`mscmeta.engine.folds`), otherwise each subset is refitted through
:meth:`mscmeta.engine.results.MetaResult.refit`:

* :func:`leave_one_out` — metafor ``leave1out`` (``rma.uni``, ``rma.mh``, ``rma.peto``);
* :func:`influence` — metafor ``influence.rma.uni`` (Viechtbauer & Cheung 2010) for
  inverse-variance fixed- and random-effects results;
* :func:`cumulative` — metafor ``cumul`` (Lau et al. 1992), studies added in any order.

Ratio measures (OR, RR, Peto OR) are analysed on the log scale; the tables give the
analysis-scale columns plus ``exp_estimate``, ``exp_ci_low``, ``exp_ci_high``.

References
----------
Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
Res Synth Methods 1:112-125.
Lau J, Antman EM, Jimenez-Silva J, et al. (1992). Cumulative meta-analysis of therapeutic
trials for myocardial infarction. N Engl J Med 327:248-254.
Viechtbauer W (2010). J Stat Softw 36(3): metafor ``leave1out``, ``influence.rma.uni``,
``cumul``.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from mscmeta.engine.folds import fold_fits
from mscmeta.engine.pooling import fixed_effect
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import BINARY_COLUMNS, GENERIC_COLUMNS, DataError

__all__ = ["leave_one_out", "influence", "cumulative", "RESULT_COLUMNS"]

#: Columns of the per-fit rows of :func:`leave_one_out` and :func:`cumulative`.
RESULT_COLUMNS: tuple[str, ...] = (
    "k", "estimate", "se", "statistic", "p_value", "ci_low", "ci_high",
    "Q", "Q_df", "Q_p", "I2", "H2", "tau2",
)


def _input_frame(result: MetaResult) -> pd.DataFrame:
    """The input rows of *result* in the form :meth:`MetaResult.refit` takes."""
    studies = result.studies
    binary = np.isfinite(pd.to_numeric(studies["events_t"], errors="coerce").to_numpy(dtype=float)).all()
    cols = list(BINARY_COLUMNS) if binary else list(GENERIC_COLUMNS)
    return studies[cols].reset_index(drop=True)


def _fit_row(fit: MetaResult | None, ratio: bool, note: str = "") -> dict:
    if fit is None:
        row = {c: np.nan for c in RESULT_COLUMNS}
        row["k"] = 0
    else:
        row = {
            "k": int(fit.k), "estimate": fit.estimate, "se": fit.se, "statistic": fit.statistic,
            "p_value": fit.p_value, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
            "Q": fit.Q, "Q_df": fit.Q_df, "Q_p": fit.Q_p, "I2": fit.I2, "H2": fit.H2,
            "tau2": fit.tau2 if fit.tau2 is not None else np.nan,
        }
        if fit.k == 1:  # metafor reports Q = 0 (p = 1), I2 = 0, H2 = 1, tau2 = 0 for a single study
            row.update({"Q": 0.0, "Q_df": 0, "Q_p": 1.0, "I2": 0.0, "H2": 1.0, "tau2": 0.0})
            note = "; ".join(filter(None, [note, "one pooled study: its own estimate"]))
    if ratio:
        row["exp_estimate"] = float(np.exp(row["estimate"]))
        row["exp_ci_low"] = float(np.exp(row["ci_low"]))
        row["exp_ci_high"] = float(np.exp(row["ci_high"]))
    row["note"] = note
    return row


def _without(frame: pd.DataFrame, i: int) -> pd.DataFrame:
    """*frame* without row *i* (positional), with a fresh index."""
    return frame.take(np.delete(np.arange(len(frame)), i)).reset_index(drop=True)


def _try_refit(result: MetaResult, frame: pd.DataFrame) -> tuple[MetaResult | None, str]:
    try:
        return result.refit(frame), ""
    except DataError as err:  # e.g. no estimable study left, HKSJ undefined
        return None, f"not estimable: {err}"


def _min_k(result: MetaResult, what: str) -> None:
    need = 3 if result.model == "random" else 2
    if result.k < need:
        why = (
            "each fit without one study must keep at least 2 studies to estimate the between-study variance"
            if result.model == "random"
            else "each fit without one study must keep at least 1 study"
        )
        raise DataError(f"{what} needs at least {need} pooled studies for a {result.model}-effects analysis "
                        f"({why}); got k = {result.k}")


def leave_one_out(result: MetaResult) -> pd.DataFrame:
    """Leave-one-out analysis (metafor ``leave1out``).

    Each study that entered the pooled estimate is omitted in turn and the analysis is
    re-run on the remaining input rows with identical settings (MH and Peto results
    stay MH/Peto, as metafor ``leave1out.rma.mh``/``rma.peto``).

    Parameters
    ----------
    result : MetaResult
        Any result of :func:`mscmeta.engine.binary.meta_binary`,
        :func:`mscmeta.engine.pooling.fixed_effect`/``random_effects`` or
        :func:`mscmeta.engine.continuous.meta_continuous`.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study, in input order: ``study`` (the omitted study), then
        :data:`RESULT_COLUMNS` of the fit without it (analysis scale; ``tau2`` is 0 for
        fixed-effect/MH/Peto), ``exp_estimate``, ``exp_ci_low``, ``exp_ci_high`` for
        ratio measures, and ``note`` (e.g. why a fit was not estimable).

    Raises
    ------
    DataError
        Fewer than 2 pooled studies (3 for random effects), because each fit must keep
        enough studies to be defined.
    """
    _min_k(result, "Leave-one-out analysis")
    frame = _input_frame(result)
    idx = np.flatnonzero(result.studies["estimable"].to_numpy(dtype=bool))
    ratio = result.is_ratio()
    rows = [{"study": str(frame.loc[i, "study"]), **_fit_row(fit, ratio, note)}
            for i, (fit, note) in zip(idx, _fold_fits(result, frame, idx), strict=True)]
    return pd.DataFrame(rows)


def _fold_fits(result: MetaResult, frame: pd.DataFrame, idx: np.ndarray) -> list[tuple[object | None, str]]:
    """The fit without each pooled study (``idx``) and a note: vectorised across folds for
    inverse-variance models (:func:`mscmeta.engine.folds.fold_fits`), otherwise by refitting."""
    fast = fold_fits(result)
    if fast is not None:
        return [(None, f"not estimable: {fit}") if isinstance(fit, str) else (fit, "") for fit in fast]
    return [_try_refit(result, _without(frame, i)) for i in idx]


def influence(result: MetaResult) -> pd.DataFrame:
    """Outlier and influence diagnostics (metafor ``influence.rma.uni``; Viechtbauer & Cheung 2010).

    For each pooled study i, with the full-model weights ``wᵢ = 1/(vᵢ + τ̂²)``, estimate
    ``μ̂`` and its variance ``Var(μ̂)``, and the fit without study i (same settings)
    giving ``μ̂₍₋ᵢ₎``, ``Var(μ̂₍₋ᵢ₎)``, ``τ̂²₍₋ᵢ₎`` and ``Q₍₋ᵢ₎``:

    * ``rstudent`` = ``(yᵢ - μ̂₍₋ᵢ₎) / √(s²(vᵢ + τ̂²₍₋ᵢ₎) + Var(μ̂₍₋ᵢ₎))`` (externally
      studentised residual);
    * ``dffits`` = ``(μ̂ - μ̂₍₋ᵢ₎) / √(s² hᵢ (τ̂²₍₋ᵢ₎ + vᵢ))``;
    * ``cook_d`` = ``(μ̂ - μ̂₍₋ᵢ₎)² / Var(μ̂)``;
    * ``cov_r`` = ``Var(μ̂₍₋ᵢ₎) / Var(μ̂)``;
    * ``tau2_del`` = ``τ̂²₍₋ᵢ₎``, ``QE_del`` = ``Q₍₋ᵢ₎``;
    * ``hat`` = ``hᵢ = wᵢ / Σw``, ``weight`` = ``100 hᵢ`` (percent);
    * ``dfbetas`` = ``(μ̂ - μ̂₍₋ᵢ₎) / √(s² / Σⱼ 1/(vⱼ + τ̂²₍₋ᵢ₎))`` (sum over all k studies);
    * ``influential`` (metafor's ``inf`` flag "*") if ``|dffits| > 3√(1/(k-1))``, or
      ``P(χ²₁ ≤ cook_d) > 0.5``, or ``hᵢ > 3/k``, or ``|dfbetas| > 1``.

    ``s²`` is 1, or with HKSJ the Knapp-Hartung factor of the fit without study i
    (``Var(μ̂₍₋ᵢ₎) · Σⱼ≠ᵢ wⱼ``), as metafor's ``s2w`` under ``test="knha"``.

    Only inverse-variance results are accepted. metafor offers ``influence()`` only
    for ``rma.uni`` fits (for ``rma.mh``/``rma.peto`` only ``leave1out``); for a
    Mantel-Haenszel or Peto analysis, run the inverse-variance counterpart
    (``meta_binary(..., method="IV")``) and pass that, or use :func:`leave_one_out`.

    Returns
    -------
    pandas.DataFrame
        One row per pooled study (input order): ``study, yi, vi, rstudent, dffits,
        cook_d, cov_r, tau2_del, QE_del, hat, weight, dfbetas, influential``.

    Raises
    ------
    DataError
        Non-inverse-variance result, or too few studies (2 fixed, 3 random).
    """
    if result.method != "IV":
        raise DataError(
            f"influence diagnostics are defined for inverse-variance models (metafor influence.rma.uni); "
            f"this is a {result.method} analysis, for which metafor offers only leave1out. Refit with "
            "method='IV' (e.g. meta_binary(..., method='IV')) for influence(), or use leave_one_out()"
        )
    _min_k(result, "Influence analysis")
    frame = _input_frame(result)
    studies = result.studies
    pooled = studies["estimable"].to_numpy(dtype=bool)
    idx = np.flatnonzero(pooled)
    y = studies["yi"].to_numpy(dtype=float)[idx]
    v = studies["vi"].to_numpy(dtype=float)[idx]
    k = len(idx)
    tau2 = float(result.tau2 or 0.0)
    w = 1.0 / (v + tau2)
    hat = w / w.sum()
    mu, var_mu = float(result.estimate), float(result.se) ** 2
    fits = _fold_fits(result, frame, idx)
    deleted = np.array([[np.nan] * 4 if fit is None else [fit.estimate, float(fit.se) ** 2, float(fit.tau2 or 0.0),
                         fit.Q] for fit, _ in fits], dtype=float).reshape(k, 4)
    est_del, var_del, t2_del, q_del = deleted.T
    sum_all = _sum_inverse(v, t2_del)  # sum over all k studies of 1/(v_j + tau2_del(i))
    s2w = var_del * (sum_all - 1.0 / (v + t2_del)) if result.hksj else np.ones(k)
    diff = mu - est_del
    resid = y - est_del
    resid = np.where(np.abs(resid) < 100 * np.finfo(float).eps, 0.0, resid)
    with np.errstate(invalid="ignore"):
        out = pd.DataFrame({
            "study": [str(s) for s in frame["study"].to_numpy()[idx]], "yi": y, "vi": v,
            "rstudent": resid / np.sqrt(v * s2w + var_del + t2_del * s2w),
            "dffits": diff / np.sqrt(s2w * hat * (t2_del + v)),
            "cook_d": diff**2 / var_mu, "cov_r": var_del / var_mu, "tau2_del": t2_del, "QE_del": q_del,
            "dfbetas": diff / np.sqrt(s2w / sum_all), "hat": hat, "weight": 100.0 * hat,
            "note": [note for _, note in fits],
        })
    cut_dffits = 3.0 * np.sqrt(1.0 / (k - 1.0))
    with np.errstate(invalid="ignore"):
        flag = (
            (np.abs(out["dffits"]) > cut_dffits)
            | (stats.chi2.cdf(out["cook_d"], df=1) > 0.5)
            | (out["hat"] > 3.0 / k)
            | (np.abs(out["dfbetas"]) > 1.0)
        )
    out["influential"] = flag.fillna(False).astype(bool)
    cols = ["study", "yi", "vi", "rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat", "weight",
            "dfbetas", "influential", "note"]
    return out[cols]


def _sum_inverse(v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """``sum_j 1/(v_j + tau2_i)`` for every i (NaN where tau2_i is NaN), in row blocks."""
    out = np.empty(tau2.size)
    step = max(1, 2_000_000 // max(v.size, 1))
    for start in range(0, tau2.size, step):
        t = tau2[start:start + step]
        out[start:start + step] = (1.0 / (v[None, :] + t[:, None])).sum(axis=1)
    return out


def _order_values(result: MetaResult, order_by: str | ArrayLike | pd.Series) -> np.ndarray:
    studies = result.studies
    labels = studies["study"].astype(str).tolist()
    n = len(labels)
    if isinstance(order_by, str):
        if order_by not in studies.columns:
            raise DataError(f"order_by column {order_by!r} is not a column of result.studies "
                            f"({', '.join(studies.columns)}); pass the values as a Series or array instead")
        values = studies[order_by]
    elif isinstance(order_by, pd.Series) and set(map(str, order_by.index)) == set(labels) and len(order_by) == n:
        values = pd.Series(order_by.to_numpy(), index=list(map(str, order_by.index))).loc[labels]
    else:
        values = pd.Series(np.asarray(order_by, dtype=object))
        if len(values) != n:
            raise DataError(f"order_by has {len(values)} values but the analysis has {n} input studies")
    values = pd.Series(values.to_numpy(), index=range(n))
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(f"order_by has no value for study '{labels[int(np.flatnonzero(missing)[0])]}'")
    return values.to_numpy()


def cumulative(result: MetaResult, order_by: str | ArrayLike | pd.Series, *, collapse: bool = False) -> pd.DataFrame:
    """Cumulative meta-analysis (metafor ``cumul``).

    Studies are sorted by *order_by* (ascending; ties keep the input order, as R's
    ``order``) and added one at a time; each step re-runs the analysis with identical
    settings on the studies added so far.

    Parameters
    ----------
    result : MetaResult
    order_by : str, array_like or pandas.Series
        A column of ``result.studies``; values aligned with the input rows; or a Series
        indexed by study label (e.g. publication year or date).
    collapse : bool
        Add studies with equal *order_by* values in the same step (metafor
        ``collapse=TRUE``).

    Returns
    -------
    pandas.DataFrame
        One row per step: ``step``, ``study`` (added; ``"; "``-joined when collapsed),
        ``order_value``, then :data:`RESULT_COLUMNS` (analysis scale), the ``exp_*``
        columns for ratio measures, and ``note``. A step at which a random-effects model
        has a single pooled study reports that study's own estimate with tau² = 0, as
        metafor does (noted); a step with no estimable study yet is NaN.

    Raises
    ------
    DataError
        Fewer than 2 pooled studies, or missing/misaligned ordering values.
    """
    if result.k < 2:
        raise DataError(f"Cumulative meta-analysis needs at least 2 pooled studies; got k = {result.k}")
    values = _order_values(result, order_by)
    frame = _input_frame(result)
    pooled = result.studies["estimable"].to_numpy(dtype=bool)
    order = np.asarray(pd.Series(values).sort_values(kind="stable").index)
    ratio = result.is_ratio()
    groups: list[list[int]] = []
    for i in order:
        if collapse and groups and values[groups[-1][0]] == values[i]:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    rows = []
    included: list[int] = []
    for step, group in enumerate(groups, start=1):
        included.extend(group)
        subset = frame.take(included).reset_index(drop=True)
        n_pooled = int(pooled[included].sum())
        if result.model == "random" and n_pooled == 1:
            single = included[int(np.flatnonzero(pooled[included])[0])]
            st = result.studies.iloc[single]
            fit = fixed_effect([st["yi"]], [st["vi"]], [str(st["study"])], level=result.level, measure=result.measure)
            row = _fit_row(fit, ratio, "random effects undefined for one study; tau2 = 0 (as metafor cumul)")
        elif n_pooled == 0:
            row = _fit_row(None, ratio, "no estimable study yet")
        else:
            fit, note = _try_refit(result, subset)
            row = _fit_row(fit, ratio, note)
        value = values[group[0]]
        rows.append({
            "step": step,
            "study": "; ".join(str(frame.loc[i, "study"]) for i in group),
            "order_value": value,
            **row,
        })
    return pd.DataFrame(rows)
