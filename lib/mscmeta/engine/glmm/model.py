"""Binomial-normal GLMMs for the odds ratio that reproduce R metafor's ``rma.glmm``.

Public entry point: :func:`meta_glmm`, returning a frozen :class:`GlmmResult`.

Conventions (metafor 3.8-1, ``rma.glmm(measure="OR", ..., method="ML")`` defaults,
``test="z"``, no moderators):

* Arms: ``events_t/n_t`` is metafor's ``ai/n1i`` (group 1, "treatment"),
  ``events_c/n_c`` is ``ci/n2i``.  The estimate is the pooled log odds ratio
  treatment vs control.
* ``drop00=True``: double-zero (and double-full) studies are removed; ``k``
  counts the studies used, ``k_total`` all studies supplied.
* ``UM.FS`` and ``CM.AL`` use adaptive Gauss-Hermite quadrature with
  ``n_agq=7`` nodes (metafor's ``nAGQ=7``); ``UM.RS`` always uses the Laplace
  approximation (metafor sets ``nAGQ=1`` with a warning); ``CM.EL`` integrates
  the exact conditional likelihood (see :mod:`._cm_el`).
* Random effects of ``UM.FS``/``UM.RS`` enter with contrast coding +-1/2
  (``coding=1/2``); ``UM.RS`` has uncorrelated study and treatment effects
  (``cor=FALSE``).
* Heterogeneity: ``Wld`` (Wald-type test of the extra coefficients of the
  saturated model) and ``LRT`` (``-2 (ll_equal_effects - ll_saturated)``),
  both on ``k - 1`` df, negative statistics set to 0, as printed by metafor.
* ``I2 = 100 tau2 / (vt + tau2)`` and ``H2 = tau2 / vt + 1`` with the
  Higgins-Thompson typical within-study variance ``vt`` of the ``escalc`` log
  odds ratios (1/2 added to all cells of studies with a zero cell).
* ``loglik``/``deviance``/``AIC``/``BIC``/``AICc`` are metafor's ``fit.stats``:
  for ``UM.FS``/``CM.AL`` ``ll = ll_saturated - deviance(glmer)/2`` where
  ``deviance(glmer)`` is the conditional deviance at the random-effect modes
  (an lme4 convention, not the marginal log-likelihood); ``UM.RS``:
  ``logLik(glmer)`` (Laplace); ``CM.EL``: the integrated exact likelihood.
  ``deviance = -2 (ll - ll_saturated)``; AIC etc. use ``n_parameters``
  (``k + 2`` for UM.FS, 4 for UM.RS, 2 otherwise) and ``k_eff`` (``2k`` for
  the unconditional models, ``k`` otherwise).
* Wald-type z test and normal-theory CI for the pooled log odds ratio; the prediction
  interval is metafor's ``predict``: ``estimate +/- z sqrt(se^2 + tau2)``.
* ``UM.RS`` is the exact Laplace ML, which lme4 approximates (its log-determinant uses the
  weights of the penultimate PIRLS iterate): SE and Wald test differ from lme4 by 0.2-1%
  on some data sets, estimates and tau2 by up to ~7e-4 (see ``tests/test_glmm.py``).

References
----------
Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event
outcome in the framework of the generalized linear mixed model with
applications in sparse data. Statistics in Medicine 29(29):3046-3067.
Jackson D, Law M, Stijnen T, Viechtbauer W, White IR (2018). A comparison of
seven random-effects models for meta-analyses that estimate the summary odds
ratio. Statistics in Medicine 37(7):1059-1085.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
Journal of Statistical Software 36(3):1-48.
metafor documentation, ``rma.glmm`` (version 3.8-1), and its source
``R/rma.glmm.r``, ``R/print.rma.glmm.r``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from scipy import stats

from mscmeta.engine.glmm.cm_el import fit_cm_el
from mscmeta.engine.glmm.lme4 import CoreFit, fit_cm_al, fit_um_fs, fit_um_rs
from mscmeta.engine.glmm.report import format_glmm
from mscmeta.engine.glmm.tables import StudyTable, select_studies, typical_within_variance
from mscmeta.engine.options import normalise_glmm_model
from mscmeta.engine.validation import DataError, NotEstimableError, check_binary, check_level

__all__ = ["GlmmResult", "HeterogeneityTest", "DroppedStudy", "meta_glmm"]


@dataclass(frozen=True)
class HeterogeneityTest:
    """A test for heterogeneity: ``name`` is ``"Wld"`` or ``"LRT"`` (metafor's labels)."""

    name: str
    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class DroppedStudy:
    """A supplied study that was not used, with the reason."""

    label: str
    reason: str


@dataclass(frozen=True)
class GlmmResult:
    """Result of :func:`meta_glmm`; all effect quantities are on the log odds ratio scale.

    ``tau2`` is the between-study variance of the log odds ratio, ``sigma2``
    (``UM.RS`` only, else NaN) the variance of the random study intercepts,
    ``se_tau2`` (``CM.EL`` only, else NaN) metafor's delta-method SE of tau2,
    ``pi_low``/``pi_high`` the prediction interval (metafor ``predict``).
    ``notes`` lists numerical caveats (e.g. lme4's RX fallback for the SE).
    ``print(result)`` shows metafor's ``print.rma.glmm`` layout.
    """

    model: str
    k: int
    k_total: int
    studies: tuple[str, ...]
    dropped: tuple[DroppedStudy, ...]
    estimate: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    level: float
    tau2: float
    tau: float
    se_tau2: float
    sigma2: float
    I2: float
    H2: float
    vt: float
    wald: HeterogeneityTest
    lrt: HeterogeneityTest
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    n_parameters: int
    n_agq: int
    converged: bool
    convergence_message: str
    iterations: int
    function_evaluations: int
    notes: tuple[str, ...]

    measure = "OR"
    method = "GLMM"

    def is_ratio(self) -> bool:
        """Always true: the GLMMs pool log odds ratios."""
        return True

    def conf_int(self, exp: bool | None = None) -> tuple[float, float]:
        """Confidence interval of the pooled log OR; on the OR scale unless ``exp=False``."""
        if exp is None or exp:
            return math.exp(self.ci_low), math.exp(self.ci_high)
        return self.ci_low, self.ci_high

    def to_dict(self) -> dict[str, Any]:
        """The keys of :meth:`mscmeta.engine.results.MetaResult.to_dict` (OR scale; ``Q`` is the
        Wald-type test, ``Q_LRT`` the likelihood-ratio test of heterogeneity) plus
        ``glmm_model``, ``tau``, ``sigma2``, ``loglik``, ``converged``; ``None`` for NaN."""
        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "k": self.k, "estimate": math.exp(self.estimate), "ci_low": math.exp(self.ci_low),
            "ci_high": math.exp(self.ci_high), "log_estimate": self.estimate, "se": num(self.se), "z": num(self.z),
            "p_value": num(self.p_value), "Q": num(self.wald.statistic), "Q_df": self.wald.df,
            "Q_p": num(self.wald.p_value), "I2": num(self.I2), "H2": num(self.H2), "tau2": num(self.tau2),
            "tau2_ci_low": None, "tau2_ci_high": None, "pi_low": math.exp(self.pi_low), "pi_high": math.exp(self.pi_high),
            "measure": "OR", "method": "GLMM", "model": "random", "tau2_method": "ML", "zero_cell": None,
            "hksj": False, "df": None, "level": self.level, "glmm_model": self.model,
            "Q_LRT": num(self.lrt.statistic), "Q_LRT_p": num(self.lrt.p_value), "tau": num(self.tau),
            "sigma2": num(self.sigma2), "loglik": num(self.loglik), "converged": bool(self.converged),
            "k_total": self.k_total, "dropped": [d.label for d in self.dropped],
        }

    def as_record(self) -> dict[str, Any]:
        """Every field as a plain dict (nested tests and dropped studies as dicts)."""
        return asdict(self)

    def __str__(self) -> str:
        return format_glmm(self)


def _het_test(name: str, statistic: float, df: int) -> HeterogeneityTest:
    statistic = max(0.0, statistic) if math.isfinite(statistic) else float("nan")
    p = float(stats.chi2.sf(statistic, df)) if df > 0 else 1.0
    return HeterogeneityTest(name=name, statistic=statistic, df=df, p_value=p)


def _fit_core(model: str, used: StudyTable, n_agq: int) -> tuple[CoreFit, int]:
    """Dispatch to the model-specific fitter; returns the fit and the nAGQ actually used."""
    if model == "UM.FS":
        return fit_um_fs(used, n_agq), n_agq
    if model == "CM.AL":
        return fit_cm_al(used, n_agq), n_agq
    if model == "UM.RS":
        return fit_um_rs(used), 1
    start = fit_cm_al(used, n_agq)  # metafor starts CM.EL from the CM.AL estimates
    return fit_cm_el(used, mu_start=start.estimate, tau_start=math.sqrt(start.tau2)), n_agq


def _fit_statistics(core: CoreFit) -> dict[str, float]:
    ll, parms, k_eff = core.loglik, core.n_parameters, core.k_eff
    big = max(k_eff, parms + 2)
    return {
        "loglik": ll,
        "deviance": -2 * (ll - core.loglik_saturated),
        "AIC": -2 * ll + 2 * parms,
        "BIC": -2 * ll + parms * math.log(k_eff),
        "AICc": -2 * ll + 2 * parms * big / (big - parms - 1),
    }


def _check_options(n_agq: object, drop00: object) -> None:
    if isinstance(n_agq, bool) or not isinstance(n_agq, int) or n_agq < 1:
        raise DataError(f"option n_agq must be a positive integer, got {n_agq!r}")
    if not isinstance(drop00, bool):
        raise DataError(f"option drop00 must be True or False, got {drop00!r}")


def meta_glmm(
    data: pd.DataFrame,
    model: str = "UM.FS",
    level: float = 0.95,
    columns: Any = None,
    source: str | None = None,
    *,
    drop00: bool = True,
    n_agq: int = 7,
) -> GlmmResult:
    """Random-effects (binomial-normal) meta-analysis of odds ratios, as metafor's ``rma.glmm``.

    Parameters
    ----------
    data : DataFrame
        One row per study with columns ``study, events_t, n_t, events_c, n_c`` (or other
        names mapped through *columns*), validated as for
        :func:`mscmeta.engine.binary.meta_binary`.
    model : {"UM.FS", "UM.RS", "CM.EL", "CM.AL"}
        ``"UM.FS"`` (default, fixed study intercepts), ``"UM.RS"`` (random study
        intercepts), ``"CM.EL"`` (conditional, exact likelihood) or ``"CM.AL"``
        (conditional, binomial approximation). See the module docstring.
    level : float
        Confidence level (0.95 or 95).
    columns : mapping, optional
        ``{canonical: caller_name}`` as in :func:`~mscmeta.engine.binary.meta_binary`.
    source : str, optional
        Name of the data source for error messages.
    drop00 : bool
        Drop studies without events (or only events) in both arms (metafor default).
    n_agq : int
        Gauss-Hermite nodes per study for ``UM.FS``/``CM.AL`` (metafor ``nAGQ``, default 7).

    Returns
    -------
    GlmmResult

    Raises
    ------
    DataError
        Invalid counts (names the file, study and column) or options (names the option).
    NotEstimableError
        Fewer than 2 informative studies, a margin that is zero in every study, or
        a singular information matrix.

    References
    ----------
    Stijnen, Hamza & Ozdemir (2010) Stat Med 29:3046; Jackson et al. (2018) Stat
    Med 37:1059; Viechtbauer (2010) J Stat Softw 36(3); metafor ``rma.glmm`` docs.
    """
    model = normalise_glmm_model(model)
    frac = check_level(level)
    _check_options(n_agq, drop00)
    labels, counts = check_binary(data, columns=columns, source=source)
    table = StudyTable.from_counts(labels, counts)
    prefix = f"{source}: " if source else ""
    try:
        used, dropped = select_studies(table, drop00)
        core, agq_used = _fit_core(model, used, n_agq)
    except NotEstimableError as err:
        raise NotEstimableError(f"{prefix}GLMM {model}: {err}") from None
    if not (math.isfinite(core.se) and core.se > 0):
        raise NotEstimableError(f"{prefix}GLMM {model}: the standard error of the pooled log odds ratio is not finite")
    return _result(model, table, (used, dropped), core, (agq_used, n_agq), frac, drop00)


def _result(model, table, selection, core: CoreFit, agq: tuple[int, int], frac: float, drop00: bool) -> GlmmResult:
    (used, dropped), (agq_used, n_agq) = selection, agq
    z = core.estimate / core.se
    crit = float(stats.norm.ppf(0.5 + frac / 2))
    half_pi = crit * math.sqrt(core.se**2 + core.tau2)
    vt = typical_within_variance(table, drop00)
    df = used.k - 1
    notes = list(core.notes)
    if model == "UM.RS" and n_agq != 1:
        notes.append("UM.RS uses the Laplace approximation (n_agq set to 1, as metafor does)")
    return GlmmResult(
        model=model, k=used.k, k_total=table.k, studies=used.labels,
        dropped=tuple(DroppedStudy(label, reason) for label, reason in dropped),
        estimate=core.estimate, se=core.se, z=z, p_value=float(2 * stats.norm.sf(abs(z))),
        ci_low=core.estimate - crit * core.se, ci_high=core.estimate + crit * core.se,
        pi_low=core.estimate - half_pi, pi_high=core.estimate + half_pi, level=frac,
        tau2=core.tau2, tau=math.sqrt(core.tau2), se_tau2=core.se_tau2, sigma2=core.sigma2,
        I2=100 * core.tau2 / (vt + core.tau2), H2=core.tau2 / vt + 1, vt=vt,
        wald=_het_test("Wld", core.wald, df), lrt=_het_test("LRT", core.lrt, df),
        **_fit_statistics(core), n_parameters=core.n_parameters, n_agq=agq_used,
        converged=core.converged, convergence_message=core.message, iterations=core.iterations,
        function_evaluations=core.evaluations, notes=tuple(notes),
    )
