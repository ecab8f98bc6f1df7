"""``CM.EL``: conditional logistic model with the exact (Fisher non-central hypergeometric) likelihood.

Conditioning on the total number of events ``m_i = ai + ci`` of study i, the
treatment-arm count has Fisher's non-central hypergeometric distribution

    P(ai | m_i, psi_i) = C(n1i, ai) C(n2i, m_i - ai) psi_i^ai / sum_x C(n1i, x) C(n2i, m_i - x) psi_i^x

with ``log psi_i = theta_i ~ N(mu, tau2)``.  As in metafor 3.8-1
(``R/rma.glmm.r``, helpers ``.dnchg``/``.dnchgi``):

* equal-effects fit: ``theta_i = mu``; saturated fit: one ``theta_i`` per
  study (a study with ``ai`` at either end of its support has an infinite
  conditional MLE: it then contributes log-likelihood 0 and nothing to the
  Wald-type test - metafor clamps ``psi`` to ``[1e-12, 1e12]`` and drops
  parameters with an exactly zero Hessian column, which is the same limit);
* the Wald-type test uses the inverse observed information of the saturated
  fit (``Var(X | theta_i)``) - it equals a Cochran-type statistic on the
  conditional MLEs; the LRT is ``-2 (ll_EE - ll_saturated)``;
* the random-effects likelihood ``prod_i int P(ai | theta) N(theta; mu, tau2) dtheta``
  is maximised over ``(mu, tau)``.  metafor uses ``integrate()`` with
  ``rel.tol = .Machine$double.eps^0.25`` and ``nlminb`` over ``(mu, log tau2)``;
  here each integral is computed by adaptive Gauss-Hermite quadrature centred
  at the mode of the integrand (``_N_NODES`` nodes), which is accurate to
  ~1e-12 relative (see tests), so results can differ from metafor by
  metafor's integration error.
* SE from the inverse finite-difference Hessian of ``-loglik`` in
  ``(mu, tau)``; ``se_tau2`` by the delta method (identical to metafor's
  ``sqrt(Var(log tau2)) * tau2`` at an interior optimum).

References
----------
Stijnen T, Hamza TH, Ozdemir P (2010). Statistics in Medicine 29:3046-3067.
Liao JG, Rosen O (2001). Fast and stable algorithms for computing and sampling
from the noncentral hypergeometric distribution. Am Stat 55(4):366-369.
Van Houwelingen HC, Zwinderman KH, Stijnen T (1993). A bivariate approach to
meta-analysis. Statistics in Medicine 12:2273-2284.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from mscmeta.engine.glmm.agq import gh_rule
from mscmeta.engine.glmm.tables import StudyTable
from mscmeta.engine.validation import NotEstimableError
from mscmeta.engine.glmm.lme4 import CoreFit, wald_equal_effects
from mscmeta.engine.glmm.optim import OptimResult, fd_hessian, minimize_newton, scalar_as_batch

__all__ = ["NoncentralHypergeometric", "fit_cm_el"]

_N_NODES = 40
_HESS_STEP = 1e-4
_BOUNDARY_TOL = 1e-5


class NoncentralHypergeometric:
    """Per-study Fisher non-central hypergeometric log-densities for the observed ``ai``.

    The support of study i is ``max(0, m - n2) .. min(n1, m)``; each study keeps
    its own support (supports of large trials can be thousands long, so no
    padding to a common length).
    """

    def __init__(self, table: StudyTable) -> None:
        self.x: list[np.ndarray] = []
        self.logw: list[np.ndarray] = []
        log_w_obs, at_bound = [], []
        for a, n1, c, n2 in zip(table.a, table.n1, table.c, table.n2):
            m = a + c
            lo, hi = max(0, m - n2), min(n1, m)
            x = np.arange(lo, hi + 1, dtype=float)
            logw = (gammaln(n1 + 1) - gammaln(x + 1) - gammaln(n1 - x + 1)
                    + gammaln(n2 + 1) - gammaln(m - x + 1) - gammaln(n2 - m + x + 1))
            self.x.append(x)
            self.logw.append(logw)
            log_w_obs.append(logw[a - lo])
            at_bound.append(a == lo or a == hi)
        self.a = table.a.astype(float)
        self.log_w_obs = np.array(log_w_obs)
        self.at_bound = np.array(at_bound)

    def _lse(self, i: int, theta: np.ndarray) -> np.ndarray:
        terms = self.logw[i][None, :] + self.x[i][None, :] * theta[:, None]
        top = terms.max(axis=1)
        return top + np.log(np.exp(terms - top[:, None]).sum(axis=1))

    def logpmf(self, theta: np.ndarray) -> np.ndarray:
        """``log P(ai | theta)`` for ``theta`` of shape (k, J)."""
        lse = np.array([self._lse(i, theta[i]) for i in range(len(self.x))])
        return self.log_w_obs[:, None] + self.a[:, None] * theta - lse

    def moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditional mean and variance of the treatment-arm count at ``theta`` (k, J)."""
        mean, var = np.empty_like(theta), np.empty_like(theta)
        for i, (x, logw) in enumerate(zip(self.x, self.logw)):
            terms = logw[None, :] + x[None, :] * theta[i][:, None]
            prob = np.exp(terms - terms.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
            mean[i] = prob @ x
            var[i] = prob @ (x * x) - mean[i] ** 2
            small = var[i] < 1e-8 * (1 + mean[i] ** 2)
            if small.any():  # guard the one-pass variance against cancellation
                var[i][small] = ((x[None, :] - mean[i][small][:, None]) ** 2 * prob[small]).sum(axis=1)
        return mean, var


def _integrand_modes(nch: NoncentralHypergeometric, mu: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset ``theta - mu`` of the mode of ``log P(ai|theta) - (theta - mu)^2 / (2 tau^2)`` per study,
    and the curvature there (Newton). The offset is tracked directly, not as ``theta - mu``,
    so that ``(theta - mu)/tau`` stays accurate for tiny tau (no cancellation)."""
    delta = np.zeros((len(nch.a), 1))
    for _ in range(100):
        mean, var = nch.moments(mu + delta)
        grad = nch.a[:, None] - mean - delta / tau**2
        curv = var + 1.0 / tau**2
        step = np.clip(grad / curv, -2.0, 2.0)
        delta = delta + step
        if np.max(np.abs(step)) < 1e-12 * max(1.0, tau):
            break
    _, var = nch.moments(mu + delta)
    return delta[:, 0], var[:, 0] + 1.0 / tau**2


def marginal_loglik_per_study(nch: NoncentralHypergeometric, mu: float, tau: float, n_nodes: int = _N_NODES) -> np.ndarray:
    """``log int P(ai | theta) N(theta; mu, tau^2) dtheta`` per study (adaptive Gauss-Hermite)."""
    if tau == 0.0:
        return nch.logpmf(np.full((len(nch.a), 1), mu))[:, 0]
    offset, curv = _integrand_modes(nch, mu, tau)
    scale = 1.0 / np.sqrt(curv)
    nodes, weights = gh_rule(n_nodes)
    delta = offset[:, None] + scale[:, None] * nodes[None, :]
    log_f = nch.logpmf(mu + delta) - 0.5 * (delta / tau) ** 2
    log_terms = np.log(weights)[None, :] + 0.5 * nodes[None, :] ** 2 + log_f
    top = log_terms.max(axis=1)
    return np.log(scale / tau) + top + np.log(np.exp(log_terms - top[:, None]).sum(axis=1))


def _saturated(nch: NoncentralHypergeometric) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-study conditional MLEs (finite ones), their observed information, and the saturated log-likelihood."""
    finite = ~nch.at_bound
    theta = np.zeros((len(nch.a), 1))
    for _ in range(200):
        mean, var = nch.moments(theta)
        step = np.where(finite[:, None], np.clip((nch.a[:, None] - mean) / var, -2.0, 2.0), 0.0)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-13:
            break
    _, var = nch.moments(theta)
    ll = float(np.where(finite, nch.logpmf(theta)[:, 0], 0.0).sum())
    return theta[finite, 0], var[finite, 0], ll


def _fit_ml(nch: NoncentralHypergeometric, mu_start: float, tau_start: float) -> tuple[OptimResult, float]:
    def negll(x: np.ndarray) -> float:
        return -float(marginal_loglik_per_study(nch, float(x[0]), abs(float(x[1]))).sum())

    candidates = [max(tau_start, 0.05), 0.2, 0.5, 1.0]
    values = [negll(np.array([mu_start, t])) for t in candidates]
    batch = scalar_as_batch(negll)
    res = minimize_newton(batch, np.array([mu_start, candidates[int(np.argmin(values))]]), step=_HESS_STEP)
    tau = abs(float(res.x[1]))
    if tau < _BOUNDARY_TOL:
        res0 = minimize_newton(scalar_as_batch(lambda x: negll(np.array([x[0], 0.0]))), res.x[:1], step=_HESS_STEP)
        if res0.fun <= res.fun + 1e-8:
            x = np.array([res0.x[0], 0.0])
            _, _, hess = fd_hessian(batch, x, _HESS_STEP)
            res = OptimResult(x=x, fun=res0.fun, hessian=hess, iterations=res.iterations + res0.iterations,
                              evaluations=res.evaluations + res0.evaluations, converged=res0.converged, message=res0.message)
            tau = 0.0
    return res, tau


def fit_cm_el(table: StudyTable, mu_start: float = 0.0, tau_start: float = 0.3) -> CoreFit:
    """Fit the exact conditional binomial-normal model (see module docstring)."""
    nch = NoncentralHypergeometric(table)
    fe = minimize_newton(lambda p: -nch.logpmf(np.tile(p[:, 0], (table.k, 1))).sum(axis=0), np.array([mu_start]), step=_HESS_STEP)
    ll_fe = -fe.fun
    theta_sat, info_sat, ll_qe = _saturated(nch)
    wald = wald_equal_effects(theta_sat, 1.0 / info_sat) if len(theta_sat) > 1 else 0.0
    lrt = max(0.0, -2 * (ll_fe - ll_qe))
    res, tau = _fit_ml(nch, float(fe.x[0]), tau_start)
    notes: list[str] = []
    try:
        vcov = np.linalg.inv(res.hessian)
    except np.linalg.LinAlgError:
        vcov = np.full((2, 2), np.nan)
    if not np.all(np.isfinite(vcov)) or vcov[0, 0] <= 0:
        raise NotEstimableError("model 'CM.EL': cannot invert the Hessian of the log-likelihood at the ML estimate")
    se_tau2 = 2 * tau * float(np.sqrt(vcov[1, 1])) if tau >= _BOUNDARY_TOL and vcov[1, 1] > 0 else float("nan")
    return CoreFit(
        estimate=float(res.x[0]), se=float(np.sqrt(vcov[0, 0])), tau2=tau**2, se_tau2=se_tau2, wald=wald, lrt=lrt,
        loglik=-res.fun, loglik_saturated=ll_qe, n_parameters=2, k_eff=table.k, converged=res.converged, message=res.message,
        iterations=res.iterations, evaluations=res.evaluations, notes=notes,
    )
