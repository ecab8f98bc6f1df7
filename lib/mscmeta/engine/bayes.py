"""Bayesian normal-normal random-effects meta-analysis (the ``bayesmeta`` approach).

Model (normal-normal hierarchical model, NNHM)::

    y_i | mu, tau  ~  N(mu, sigma_i^2 + tau^2),   sigma_i^2 = vi (known)
    mu             ~  flat (improper uniform)  or  N(mean, sd^2)
    tau            ~  half-normal / half-Cauchy / Turner et al. log-normal / uniform

Entry points: :func:`bayes_meta` (study estimates and variances) and :func:`meta_bayes`
(a table of 2x2 counts: study log odds ratios or log risk ratios under the engine's
zero-cell convention, then :func:`bayes_meta`). Priors in :mod:`mscmeta.engine.bayes_priors`,
the quadrature in :mod:`mscmeta.engine.bayes_quadrature`. Moved from the standalone module
of /work/scratch/bayes (its README tabulates the agreement with bayesmeta).

Computation follows Röver (2020): the effect ``mu`` is integrated out
analytically, so the marginal posterior of ``tau`` is known up to a constant,
``p(tau | y) ∝ p(tau) * p(y | tau)``; the posteriors of ``mu`` and of a new
study's effect ``theta_new`` are normal mixtures over ``tau`` with conditional
moments ``mu | tau, y ~ N(m(tau), s(tau)^2)`` and
``theta_new | tau, y ~ N(m(tau), s(tau)^2 + tau^2)``.

Unlike bayesmeta, which approximates the mixtures by the DIRECT
discretisation (Röver & Friede 2017) with tolerance ``delta = 0.01`` and drops
the top ``epsilon = 1e-4`` of the tau posterior, this module integrates over
tau with composite Gauss-Legendre quadrature on ``u = tau / (tau + c)``,
``u in (0, 1)`` (``c`` = posterior median of tau from an 8-panel first
pass), 12 panels x 16 nodes = 192 nodes - more panels, up to 200, when the
posterior of ``u`` is narrow (large k) - (agreement with adaptive
``scipy.integrate.quad`` at epsrel 1e-13: <= 2e-14 on nine test problems).
Quantiles are found by safeguarded Newton iteration on the exact quadrature
CDFs (for tau: on the per-panel interpolating polynomial the rule integrates
exactly); shortest (highest-density) intervals by Newton on
``F(upper) - F(lower) = level``, ``f(lower) = f(upper)``, with a bracketing
fallback.

Conventions
-----------
* ``vi`` are sampling *variances* (metafor ``escalc`` ``vi``); bayesmeta's
  ``sigma`` is ``sqrt(vi)``.
* Equal-tailed ("central") intervals are the default; bayesmeta's default is
  the shortest interval - both are reported (``*_low``/``*_high`` and
  ``*_shortest_low``/``*_shortest_high``). For tau the shortest interval may
  be one-sided ``[0, q_level]``, exactly as in bayesmeta.
* OR-scale results are ``exp`` of log-scale quantiles (medians and interval
  bounds transform; means do not, and are not reported on the OR scale).
  The OR-scale shortest interval is ``exp`` of the log-scale shortest
  interval, not the shortest interval of ``exp(mu)``.
* ``P(OR < c)`` is ``P(mu < log c | y)``.
* The Turner et al. (2015) priors are log-normal for ``tau^2`` with the Table
  IV parameters (as stored in bayesmeta's ``TurnerEtAlParameters``); on the
  ``tau`` scale this is log-normal with halved ``meanlog`` and ``sdlog``.

References
----------
Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R
package. J Stat Softw 93(6):1-51. doi:10.18637/jss.v093.i06
Röver C, Friede T (2017). Discrete approximation of a mixture distribution via
restricted divergence. J Comput Graph Stat 26(1):217-222.
Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive
distributions for between-study heterogeneity and simple methods for their
application in Bayesian meta-analysis. Stat Med 34(6):984-998.
doi:10.1002/sim.6381
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mscmeta.engine.bayes_priors import TauPrior, parse_mu_prior, parse_tau_prior
from mscmeta.engine.bayes_quadrature import (
    NormalMixture,
    TauGrid,
    conditional_terms,
    make_tau_grid,
    shortest_interval,
)
from mscmeta.engine.effects import ZeroCellRule, study_effects
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.validation import DataError, NotEstimableError, check_binary, check_level, validate_effects

__all__ = ["PosteriorSummary", "BayesMetaResult", "bayes_meta", "meta_bayes"]

#: Ratio measures whose study estimates the Bayesian model can pool from 2x2 counts.
BAYES_MEASURES: tuple[str, ...] = ("OR", "RR")


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PosteriorSummary:
    """Marginal posterior summary of one parameter (log scale for effects).

    ``low``/``high``: equal-tailed (central) interval; ``shortest_low``/
    ``shortest_high``: shortest interval (bayesmeta's default type).
    ``mean``/``sd`` are ``inf`` where the posterior moment does not exist.
    """

    median: float
    mean: float
    sd: float
    low: float
    high: float
    shortest_low: float
    shortest_high: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-friendly mapping (non-finite values become ``None``)."""
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class BayesMetaResult:
    """Result of :func:`bayes_meta` (all effect summaries on the log scale).

    Attributes
    ----------
    k, studies, yi, vi : data as analysed.
    tau_prior, mu_prior : str
        Labels of the priors.
    level : float
        Credibility level of all intervals.
    mu, tau, prediction : PosteriorSummary
        Marginal posteriors of the mean effect, the heterogeneity and a new
        study's true effect ``theta_new``.
    prob_below_1, prob_below_0_8 : float
        ``P(exp(mu) < 1 | y)`` and ``P(exp(mu) < 0.8 | y)``.
    n_nodes : int
        Number of tau quadrature nodes.
    measure : str
        ``"OR"``, ``"RR"`` or ``"PETO"``: what ``exp(mu)`` is.
    zero_cell : str or None
        The zero-cell convention of the study estimates (:func:`meta_bayes`), else ``None``.
    """

    k: int
    studies: tuple[str, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    tau_prior: str
    mu_prior: str
    level: float
    mu: PosteriorSummary
    tau: PosteriorSummary
    prediction: PosteriorSummary
    prob_below_1: float
    prob_below_0_8: float
    n_nodes: int
    measure: str
    zero_cell: str | None
    _mu_mix: NormalMixture = field(repr=False, compare=False)
    _pred_mix: NormalMixture = field(repr=False, compare=False)
    _grid: TauGrid = field(repr=False, compare=False)

    def prob_or_below(self, c: float) -> float:
        """``P(exp(mu) < c | y)`` for ``c > 0`` (``P(mu < log c)``)."""
        if not (c > 0 and math.isfinite(c)):
            raise DataError(f"prob_or_below: threshold c must be finite and > 0, got {c!r}")
        return self._mu_mix.cdf(math.log(c))

    def prob_tau_above(self, t: float) -> float:
        """``P(tau > t | y)``."""
        return 1.0 - self._grid.cdf_tau(float(t))

    def quantile(self, p: float, parameter: str = "mu") -> float:
        """Posterior quantile of ``"mu"``, ``"tau"`` or ``"prediction"``."""
        if not 0 < p < 1:
            raise DataError(f"quantile: p must be in (0, 1), got {p!r}")
        if parameter == "tau":
            return float(self._grid.quantile(np.array([p]))[0])
        mix = {"mu": self._mu_mix, "prediction": self._pred_mix}.get(parameter)
        if mix is None:
            raise DataError(f"quantile: unknown parameter {parameter!r}")
        return float(mix.quantile(np.array([p]))[0])

    def is_ratio(self) -> bool:
        """Always true: the model pools log ratios (``exp`` gives the OR or RR scale)."""
        return True

    def conf_int(self, exp: bool | None = None, kind: str = "central") -> tuple[float, float]:
        """Credible interval of ``mu`` (``kind`` = ``"central"`` or ``"shortest"``),
        on the ratio scale unless ``exp=False`` (bounds exponentiated)."""
        exp = True if exp is None else exp
        if kind not in ("central", "shortest"):
            raise DataError(f"conf_int: kind must be 'central' or 'shortest', got {kind!r}")
        lo, hi = ((self.mu.low, self.mu.high) if kind == "central"
                  else (self.mu.shortest_low, self.mu.shortest_high))
        return (math.exp(lo), math.exp(hi)) if exp else (lo, hi)

    def to_dict(self) -> dict[str, Any]:
        """The keys of :meth:`mscmeta.engine.results.MetaResult.to_dict` (ratio scale: ``estimate``
        is the posterior median of ``exp(mu)``, ``ci_*`` its central credible interval, ``se``
        the posterior sd of ``mu``, ``tau2`` the posterior median of tau^2, ``pi_*`` the
        central interval of a new study's effect; ``None`` where a key has no Bayesian
        counterpart) plus ``prob_below_1``, ``prob_below_0_8``, ``tau``, ``tau_ci_low``,
        ``tau_ci_high``, ``ci_shortest_low``/``high``, ``tau_prior``, ``mu_prior``, ``n_nodes``."""
        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "k": self.k, "estimate": math.exp(self.mu.median), "ci_low": math.exp(self.mu.low),
            "ci_high": math.exp(self.mu.high), "log_estimate": self.mu.median, "se": num(self.mu.sd), "z": None,
            "p_value": None, "Q": None, "Q_df": self.k - 1, "Q_p": None, "I2": None, "H2": None,
            "tau2": self.tau.median ** 2, "tau2_ci_low": self.tau.low ** 2, "tau2_ci_high": self.tau.high ** 2,
            "pi_low": math.exp(self.prediction.low), "pi_high": math.exp(self.prediction.high),
            "measure": self.measure, "method": "BAYES", "model": "random", "tau2_method": None, "zero_cell": self.zero_cell,
            "hksj": False, "df": None, "level": self.level,
            "prob_below_1": self.prob_below_1, "prob_below_0_8": self.prob_below_0_8,
            "tau": self.tau.median, "tau_ci_low": self.tau.low, "tau_ci_high": self.tau.high,
            "ci_shortest_low": math.exp(self.mu.shortest_low), "ci_shortest_high": math.exp(self.mu.shortest_high),
            "mu_mean": num(self.mu.mean), "tau_prior": self.tau_prior, "mu_prior": self.mu_prior,
            "n_nodes": self.n_nodes,
        }

    def __str__(self) -> str:
        return _format_result(self)


def _format_result(res: BayesMetaResult) -> str:
    """bayesmeta-like printout."""
    pct = f"{100 * res.level:g}%"
    rows = [("median", "median"), ("mean", "mean"), ("sd", "sd"),
            (f"{pct} lower", "low"), (f"{pct} upper", "high"),
            (f"{pct} short lo", "shortest_low"), (f"{pct} short hi", "shortest_high")]
    lines = [" Bayesian random-effects meta-analysis (normal-normal model)", "",
             f"{res.k} estimates: " + ", ".join(res.studies[:10])
             + (", ..." if res.k > 10 else ""), "",
             f"tau prior: {res.tau_prior}", f"mu prior:  {res.mu_prior}", "",
             "marginal posterior summary (log scale):",
             f"{'':16s}{'tau':>12s}{'mu':>12s}{'theta_new':>12s}"]
    for label, attr in rows:
        vals = [getattr(s, attr) for s in (res.tau, res.mu, res.prediction)]
        lines.append(f"{label:16s}" + "".join(f"{v:12.6f}" for v in vals))
    lo, hi = res.conf_int(exp=True)
    plo, phi = math.exp(res.prediction.low), math.exp(res.prediction.high)
    m = res.measure if res.measure != "PETO" else "OR"
    lines += ["", f"{m} (exp mu): median {math.exp(res.mu.median):.4f}, "
              f"{pct} central CrI [{lo:.4f}, {hi:.4f}]",
              f"{m} prediction (new study): median {math.exp(res.prediction.median):.4f}, "
              f"{pct} central [{plo:.4f}, {phi:.4f}]",
              f"P({m} < 1) = {res.prob_below_1:.4f}   P({m} < 0.8) = {res.prob_below_0_8:.4f}",
              "", "(central = equal-tailed; 'short' = shortest interval, bayesmeta's default)"]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------
def _check_propriety(prior: TauPrior, k: int, mu_prior: tuple[float, float] | None) -> float:
    """Return the tail exponent of the tau posterior; raise if it is improper.

    For large tau, ``p(y | tau) ~ tau^-(k-1)`` (flat mu) or ``tau^-k``
    (normal mu), so the posterior behaves like ``tau^(a - k + 1)`` or
    ``tau^(a - k)`` with ``a`` the prior's tail exponent.
    """
    exponent = prior.tail_exponent - (k if mu_prior is not None else k - 1)
    if exponent >= -1.0:
        raise NotEstimableError(
            f"tau_prior: {prior.label} with k={k} gives an improper posterior; "
            "use a proper tau prior")
    return exponent


def _summarise_tau(grid: TauGrid, level: float, exponent: float) -> PosteriorSummary:
    a = 0.5 * (1.0 - level)
    mean = float(np.dot(grid.weight, grid.tau)) if exponent < -2 else math.inf
    sd = (math.sqrt(max(0.0, float(np.dot(grid.weight, grid.tau ** 2)) - mean ** 2))
          if exponent < -3 else math.inf)
    q_med, q_lo, q_hi = map(float, grid.quantile(np.array([0.5, a, 1.0 - a])))
    s_lo, s_hi = shortest_interval(grid.quantile, grid.evaluate, level, (q_lo, q_hi), 0.0)
    return PosteriorSummary(q_med, mean, sd, q_lo, q_hi, s_lo, s_hi)


def _summarise_mixture(mix: NormalMixture, level: float, finite_var: bool) -> PosteriorSummary:
    a = 0.5 * (1.0 - level)
    mean, sd = mix.moments()
    q_med, q_lo, q_hi = map(float, mix.quantile(np.array([0.5, a, 1.0 - a])))
    s_lo, s_hi = shortest_interval(mix.quantile, mix.evaluate, level, (q_lo, q_hi))
    return PosteriorSummary(q_med, mean, sd if finite_var else math.inf, q_lo, q_hi, s_lo, s_hi)


def bayes_meta(yi: ArrayLike, vi: ArrayLike, studies: Sequence[str] | None = None,
               tau_prior: str | Sequence[Any] | TauPrior = "halfnormal:0.5",
               mu_prior: Sequence[Any] | None = None, level: float = 0.95, *,
               measure: str = "OR") -> BayesMetaResult:
    """Bayesian random-effects meta-analysis by exact quadrature over tau.

    Parameters
    ----------
    yi, vi : array_like
        Effect estimates (e.g. log odds ratios) and their sampling variances.
    studies : sequence of str, optional
        Study labels (default ``"study 1"``, ...).
    tau_prior : str, tuple or TauPrior
        See :func:`parse_tau_prior`; default half-normal with scale 0.5.
    mu_prior : None or ("normal", mean, sd)
        ``None`` = improper uniform prior on ``mu`` (bayesmeta's default).
    level : float
        Credibility level of all intervals (0.95 or 95).
    measure : {"OR", "RR", "PETO"}
        What ``exp(mu)`` is (labels only; ``yi`` are log ratios).

    Returns
    -------
    BayesMetaResult

    Raises
    ------
    DataError
        Invalid data or options.
    NotEstimableError
        The posterior is improper (uniform tau prior with too few studies).

    References
    ----------
    Röver C (2020), J Stat Softw 93(6), doi:10.18637/jss.v093.i06 (Sect. 2).
    """
    level = check_level(level)
    y, v, labels = validate_effects(np.atleast_1d(yi).tolist(), np.atleast_1d(vi).tolist(),
                                    None if studies is None else list(studies))
    names = tuple(labels)
    if measure not in ("OR", "RR", "PETO"):
        raise DataError(f"measure {measure!r}: the Bayesian model here pools log ratios (OR, RR, PETO)")
    prior = parse_tau_prior(tau_prior)
    mu_p = parse_mu_prior(mu_prior)
    exponent = _check_propriety(prior, y.size, mu_p)
    grid = make_tau_grid(prior.logpdf, y, v, mu_p)
    _, cmean, cvar = conditional_terms(grid.tau, y, v, mu_p)
    mu_mix = NormalMixture(grid.weight, cmean, np.sqrt(cvar))
    pred_mix = NormalMixture(grid.weight, cmean, np.sqrt(cvar + grid.tau ** 2))
    finite_var = exponent < -3  # E[tau^2] < inf  <=>  Var(mu), Var(theta_new) < inf
    mu_label = "uniform(min=-Inf, max=Inf) (improper)" if mu_p is None else (
        f"normal(mean={mu_p[0]:g}, sd={mu_p[1]:g})")
    return BayesMetaResult(
        k=y.size, studies=names, yi=tuple(map(float, y)), vi=tuple(map(float, v)),
        tau_prior=prior.label, mu_prior=mu_label, level=float(level),
        mu=_summarise_mixture(mu_mix, level, finite_var or mu_p is not None),
        tau=_summarise_tau(grid, level, exponent),
        prediction=_summarise_mixture(pred_mix, level, finite_var),
        prob_below_1=mu_mix.cdf(0.0), prob_below_0_8=mu_mix.cdf(math.log(0.8)),
        n_nodes=grid.tau.size, measure=measure, zero_cell=None, _mu_mix=mu_mix, _pred_mix=pred_mix, _grid=grid)


def meta_bayes(
    data: pd.DataFrame,
    measure: str = "OR",
    tau_prior: str | Sequence[Any] | TauPrior = "halfnormal:0.5",
    mu_prior: Sequence[Any] | None = None,
    level: float = 0.95,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    *,
    options: BinaryOptions | None = None,
) -> BayesMetaResult:
    """Bayesian random-effects meta-analysis of 2x2 counts (log OR or log RR).

    The study estimates are those of :func:`mscmeta.engine.binary.meta_binary` under the
    zero-cell convention of *options* (default RevMan: 0.5 added to the cells of zero-cell
    studies, double-zero studies not estimable; ``add``/``to``/``correction`` as there);
    then :func:`bayes_meta`.

    Parameters
    ----------
    data : DataFrame
        Columns ``study, events_t, n_t, events_c, n_c`` (or mapped through *columns*).
    measure : {"OR", "RR"}
    tau_prior, mu_prior, level
        As :func:`bayes_meta`.
    columns, source
        As :func:`~mscmeta.engine.binary.meta_binary`.
    options : BinaryOptions, optional
        Zero-cell convention and continuity correction (its measure is replaced by *measure*).

    Raises
    ------
    DataError
        Bad data or options; :class:`NotEstimableError` without an estimable study.
    """
    opts = (options or BinaryOptions()).replace(measure=measure, method="IV", model="fixed", tau2_method=None,
                                                hksj=False)
    if opts.measure not in BAYES_MEASURES:
        raise DataError(f"the Bayesian analysis pools log ratios from 2x2 counts; measure must be one of "
                        f"{', '.join(BAYES_MEASURES)}, got {measure!r}")
    labels, counts = check_binary(data, columns=columns, source=source)
    rule = ZeroCellRule.from_options(opts.zero_cell, opts.keep_double_zero, opts.add, opts.to, opts.correction)
    eff = study_effects(opts.measure, counts["events_t"], counts["n_t"], counts["events_c"], counts["n_c"], rule)
    ok = eff.estimable
    if not ok.any():
        prefix = f"{source}: " if source else ""
        raise NotEstimableError(f"{prefix}no study has an estimable {opts.measure}")
    res = bayes_meta(eff.yi[ok], eff.vi[ok], [lab for lab, keep in zip(labels, ok, strict=True) if keep],
                     tau_prior=tau_prior, mu_prior=mu_prior, level=level,
                     measure=opts.measure)
    return dataclasses.replace(res, zero_cell=rule.label)
