"""Result objects of the meta-analysis engine (in the style of statsmodels' ``CombineResults``).

A :class:`MetaResult` holds one pooled analysis: the estimate on the analysis scale (log
OR, log RR, RD, MD, SMD or a generic effect), its confidence interval and test, the
heterogeneity statistics, the random-effects quantities and one row per input study.
``refit`` re-runs the same analysis on a subset or reordering of the input rows, which is
what leave-one-out, cumulative and subgroup analyses need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mscmeta.engine.mh_tests import MHTests, mh_tests
from mscmeta.engine.options import RATIO_MEASURES


#: Columns of :attr:`MetaResult.studies`, in order.
STUDY_COLUMNS: tuple[str, ...] = (
    "study", "events_t", "n_t", "events_c", "n_c", "yi", "vi", "ci_low", "ci_high", "weight", "estimable", "note",
)


def _mh_test_keys(tests: MHTests | None) -> dict[str, Any]:
    """``cmh``, ``cmh_p``, ``tarone``, ``tarone_df``, ``tarone_p`` for MH odds ratios (no keys otherwise)."""
    if tests is None:
        return {}
    return {"cmh": _num(tests.cmh.statistic), "cmh_p": _num(tests.cmh.pvalue), "tarone": _num(tests.tarone.statistic),
            "tarone_df": int(tests.tarone.df) if tests.tarone.computable else None, "tarone_p": _num(tests.tarone.pvalue)}


def _num(value: float | None) -> float | None:
    """JSON-friendly number: ``None`` for missing/NaN/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class PooledFit:
    """The numbers of one pooled fit (the part every pooling method produces).

    Attributes
    ----------
    k : int
        Studies that entered the pooled estimate.
    estimate, se : float
        Pooled estimate and its standard error on the analysis scale (log OR, log RR,
        RD, MD, SMD or generic).
    ci_low, ci_high : float
        Confidence interval, analysis scale (normal quantile; t with ``df`` under HKSJ).
    statistic : float
        z (or t with HKSJ) for the test of no effect.
    p_value : float
        Two-sided p-value of that test.
    df : float or None
        Degrees of freedom of the t distribution (HKSJ), else ``None``.
    Q, Q_df, Q_p : float, int, float
        Cochran's Q, its degrees of freedom and chi-square p-value (NaN with one study).
        For Mantel-Haenszel: around the MH estimate with inverse-variance weights of the
        study estimates (metafor ``rma.mh``, RevMan); for Peto: Peto's statistic.
    I2 : float
        I^2 in percent: ``(Q-df)/Q`` for fixed/MH/Peto, tau^2-based for random effects
        (see :mod:`mscmeta.engine.heterogeneity`).
    H2 : float
        H^2.
    tau2 : float
        Between-study variance (0.0 for fixed/common-effect models).
    tau2_se : float or None
        Standard error of tau^2 (as metafor's ``se.tau2``).
    tau2_ci, I2_ci, H2_ci : tuple or None
        Q-profile confidence intervals (random effects only).
    pi_low, pi_high : float or None
        Prediction interval, analysis scale (random effects only; see ``pi_dist``).
    pi_dist : str or None
        Distribution of the prediction interval: ``"normal"`` or ``"t(df)"``.
    """

    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float
    df: float | None
    Q: float
    Q_df: int
    Q_p: float
    I2: float
    H2: float
    tau2: float
    tau2_se: float | None
    tau2_ci: tuple[float, float] | None
    I2_ci: tuple[float, float] | None
    H2_ci: tuple[float, float] | None
    pi_low: float | None
    pi_high: float | None
    pi_dist: str | None


@dataclass(frozen=True)
class MetaResult(PooledFit):
    """One pooled meta-analysis: the numbers of :class:`PooledFit` plus what produced them.

    ``print(result)`` shows a summary in the layout of metafor's print methods
    (:meth:`summary_text`).

    Attributes
    ----------
    measure, method, model : str
        ``"OR"|"RR"|"RD"|"PETO"|"MD"|"SMD"|"GEN"``, ``"MH"|"IV"|"Peto"``, ``"fixed"|"random"``.
    tau2_method : str or None
        tau^2 estimator (``None`` for fixed); ``"DL (RevMan MH)"`` for RevMan's
        random-effects variant of a Mantel-Haenszel analysis.
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman adjustment used.
    zero_cell : str or None
        ``"revman"``, ``"none"`` or ``"escalc"`` (binary outcomes only).
    level : float
        Confidence level as a fraction.
    k_total : int
        Number of input rows (studies), including those not pooled.
    notes : tuple of str
        Conventions applied (zero cells, RD variance, ...), for reports.
    options : BinaryOptions or mapping
        The options of the analysis (:class:`mscmeta.engine.options.BinaryOptions` for
        binary data), used by :meth:`refit`.
    """

    measure: str
    method: str
    model: str
    tau2_method: str | None
    hksj: bool
    zero_cell: str | None
    level: float
    k_total: int = 0
    notes: tuple[str, ...] = ()
    study_table: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    refit_function: Callable[[pd.DataFrame], MetaResult] | None = field(default=None, repr=False, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ studies
    @cached_property
    def studies(self) -> pd.DataFrame:
        """One row per input study, in input order.

        Columns: ``study``, ``events_t``, ``n_t``, ``events_c``, ``n_c`` (binary counts;
        NaN for generic data), ``yi``, ``vi`` (study estimate and variance, analysis scale),
        ``ci_low``, ``ci_high`` (study CI, analysis scale, normal quantile), ``weight``
        (percent of the pooled estimate, NaN if not pooled), ``estimable`` (entered the
        pooled estimate), ``note`` (e.g. "not estimable: no events in either arm").
        """
        return pd.DataFrame({c: self.study_table[c] for c in STUDY_COLUMNS}, copy=False)

    @cached_property
    def mh_tests(self) -> MHTests | None:
        """Mantel-Haenszel odds ratios: the Cochran-Mantel-Haenszel test and Tarone's test for
        heterogeneity on the uncorrected tables of all input studies, as metafor ``rma.mh``
        prints them (:mod:`mscmeta.engine.mh_tests`); ``None`` for other analyses. Computed
        when first asked for."""
        if self.method != "MH" or self.measure != "OR":
            return None
        t = self.study_table
        a, n1, c, n2 = (np.asarray(t[col], dtype=float) for col in ("events_t", "n_t", "events_c", "n_c"))
        return mh_tests(a, n1 - a, c, n2 - c, studies=[str(s) for s in t["study"]])

    # ------------------------------------------------------------------ scale
    def is_ratio(self) -> bool:
        """True for OR, RR and Peto OR (analysis on the log scale)."""
        return self.measure in RATIO_MEASURES

    def conf_int(self, exp: bool | None = None) -> tuple[float, float]:
        """Confidence interval of the pooled estimate; on the ratio scale if *exp*.

        *exp* defaults to :meth:`is_ratio`.
        """
        exp = self.is_ratio() if exp is None else exp
        if exp:
            return float(np.exp(self.ci_low)), float(np.exp(self.ci_high))
        return float(self.ci_low), float(self.ci_high)

    def _report(self, value: float | None) -> float | None:
        if value is None:
            return None
        return float(np.exp(value)) if self.is_ratio() else float(value)

    # ------------------------------------------------------------------ tables
    def summary_frame(self, exp: bool = False) -> pd.DataFrame:
        """Per-study rows plus one pooled row (statsmodels ``summary_frame`` layout).

        Parameters
        ----------
        exp : bool
            Report ``eff``, ``ci_low``, ``ci_upp`` exponentiated (ratio scale); ``sd_eff``
            stays on the analysis scale.

        Returns
        -------
        DataFrame
            Index: study labels, then ``"fixed effect"`` or ``"random effect"``.
            Columns: ``eff`` (estimate), ``sd_eff`` (standard error), ``ci_low``,
            ``ci_upp`` (confidence limits), ``w_fe`` (fixed) or ``w_re`` (random): weights
            as fractions summing to 1 over pooled studies (NaN for studies not pooled; 1
            for the pooled row), and ``estimable``.
        """
        table = self.study_table
        wcol = "w_re" if self.model == "random" else "w_fe"
        eff = np.append(np.asarray(table["yi"], dtype=float), self.estimate)
        low = np.append(np.asarray(table["ci_low"], dtype=float), self.ci_low)
        upp = np.append(np.asarray(table["ci_high"], dtype=float), self.ci_high)
        if exp:
            eff, low, upp = np.exp(eff), np.exp(low), np.exp(upp)
        with np.errstate(invalid="ignore"):
            sd = np.append(np.sqrt(np.asarray(table["vi"], dtype=float)), self.se)
        frame = pd.DataFrame(
            {
                "eff": eff,
                "sd_eff": sd,
                "ci_low": low,
                "ci_upp": upp,
                wcol: np.append(np.asarray(table["weight"], dtype=float) / 100.0, 1.0),
                "estimable": np.append(np.asarray(table["estimable"], dtype=bool), True),
            },
            index=pd.Index([*map(str, table["study"]), f"{self.model if self.model == 'random' else 'fixed'} effect"]),
        )
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with exactly the keys of the CLI's ``--json`` output.

        ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high`` are on the ratio scale
        for OR/RR/Peto OR (``log_estimate`` then holds the log); missing values are ``None``.
        Mantel-Haenszel odds ratios add ``cmh``, ``cmh_p``, ``tarone``, ``tarone_df``,
        ``tarone_p`` (metafor ``rma.mh``'s CMH and Tarone tests).
        """
        ratio = self.is_ratio()
        return {
            "k": int(self.k),
            "estimate": _num(self._report(self.estimate)),
            "ci_low": _num(self._report(self.ci_low)),
            "ci_high": _num(self._report(self.ci_high)),
            "log_estimate": _num(self.estimate) if ratio else None,
            "se": _num(self.se),
            "z": _num(self.statistic),
            "p_value": _num(self.p_value),
            "Q": _num(self.Q),
            "Q_df": int(self.Q_df),
            "Q_p": _num(self.Q_p),
            "I2": _num(self.I2),
            "H2": _num(self.H2),
            "tau2": _num(self.tau2),
            "tau2_ci_low": _num(self.tau2_ci[0]) if self.tau2_ci else None,
            "tau2_ci_high": _num(self.tau2_ci[1]) if self.tau2_ci else None,
            "pi_low": _num(self._report(self.pi_low)),
            "pi_high": _num(self._report(self.pi_high)),
            "measure": self.measure,
            "method": self.method,
            "model": self.model,
            "tau2_method": self.tau2_method,
            "zero_cell": self.zero_cell,
            "hksj": bool(self.hksj),
            "df": _num(self.df),
            "level": float(self.level),
            **_mh_test_keys(self.mh_tests),
        }

    # ------------------------------------------------------------------ refit
    def refit(self, studies_subset: pd.DataFrame) -> MetaResult:
        """Re-run the same analysis (same settings) on a subset or reordering of the input.

        Parameters
        ----------
        studies_subset : DataFrame
            Binary analyses: columns ``study, events_t, n_t, events_c, n_c``; generic
            analyses: ``study, yi, vi`` -- e.g. ``result.studies.iloc[rows]``.
        """
        if self.refit_function is None:
            raise ValueError("this result cannot be refitted (no analysis settings stored)")
        return self.refit_function(studies_subset)

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        return self.summary_text()

    def summary_text(self) -> str:
        """A readable plain-text summary (used by the command line)."""
        table = self.studies
        ratio = self.is_ratio()
        label = {"OR": "OR", "RR": "RR", "PETO": "Peto OR", "RD": "RD"}.get(self.measure, self.measure)
        level_pct = f"{100 * self.level:g}%"
        rows = []
        binary = np.isfinite(np.asarray(table["n_t"], dtype=float)).any()
        header = f"{'study':<28}" + (f"{'events/n (t)':>14}{'events/n (c)':>14}" if binary else "")
        header += f"{label:>10}  {level_pct + ' CI':<22}{'weight':>8}"
        rows.append(header)
        for rec in table.itertuples(index=False):
            est = np.exp(rec.yi) if ratio else rec.yi
            lo = np.exp(rec.ci_low) if ratio else rec.ci_low
            hi = np.exp(rec.ci_high) if ratio else rec.ci_high
            line = f"{str(rec.study)[:27]:<28}"
            if binary:
                line += f"{f'{int(rec.events_t)}/{int(rec.n_t)}':>14}{f'{int(rec.events_c)}/{int(rec.n_c)}':>14}"
            if np.isfinite(est):
                line += f"{est:>10.4f}  [{lo:.4f}, {hi:.4f}]".ljust(34)
            else:
                line += f"{'--':>10}  {'':<22}"
            line += f"{rec.weight:>7.1f}%" if np.isfinite(rec.weight) else f"{'--':>8}"
            if rec.note:
                line += f"  {rec.note}"
            rows.append(line)
        est = self._report(self.estimate)
        lo, hi = self.conf_int()
        model = f"{self.model}, {self.method}"
        if self.model == "random":
            model += f", tau2 {self.tau2_method}" + (", HKSJ" if self.hksj else "")
        rows.append("")
        rows.append(f"Pooled {label} ({model}, k = {self.k}): {est:.4f} [{lo:.4f}, {hi:.4f}]")
        stat_name = f"t({self.df:g})" if self.df is not None else "z"
        rows.append(f"Test for overall effect: {stat_name} = {self.statistic:.4f}, p = {self.p_value:.4g}")
        if self.Q_df >= 1:
            tau = f"; tau2 = {self.tau2:.4f}" + (f" (SE {self.tau2_se:.4f})" if self.tau2_se is not None else "")
            rows.append(
                f"Heterogeneity: Q = {self.Q:.4f}, df = {self.Q_df}, p = {self.Q_p:.4g}; "
                f"I2 = {self.I2:.2f}%; H2 = {self.H2:.4f}" + (tau if self.model == "random" else "")
            )
        if self.tau2_ci is not None:
            rows.append(
                f"Q-profile {level_pct} CI: tau2 [{self.tau2_ci[0]:.4f}, {self.tau2_ci[1]:.4f}]; "
                f"I2 [{self.I2_ci[0]:.2f}, {self.I2_ci[1]:.2f}]%"
            )
        if self.pi_low is not None:
            plo, phi = self._report(self.pi_low), self._report(self.pi_high)
            rows.append(f"Prediction interval ({self.pi_dist}): [{plo:.4f}, {phi:.4f}]")
        if self.zero_cell and self.measure != "AS":  # the arcsine difference has no zero-cell convention
            rows.append(f"Zero cells: {self.zero_cell}")
        if self.mh_tests is not None:
            rows.extend(str(self.mh_tests).splitlines())
        rows.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(rows)
