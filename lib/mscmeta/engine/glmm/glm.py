"""R ``glm.fit`` replica for a *saturated* binomial-logit model.

metafor's ``rma.glmm`` obtains its heterogeneity tests for ``UM.FS`` and
``CM.AL`` from a saturated ``glm(..., family=binomial)`` fit: the Wald-type
test uses its coefficients and ``vcov``; the LRT uses its log-likelihood.  With
a zero (or full) cell the saturated MLE is infinite and R's iteratively
reweighted least squares (IRLS) simply stops at R's convergence criterion, so
the reported numbers depend on the IRLS path.  Because the model is
saturated, the IRLS update for each observation is independent of the
parametrisation: ``eta_new = eta + (y - mu) / mu_eta(eta)``.  This module
reproduces that path, including R's starting values, the logit clamps of
``family.c`` and the stopping rule ``|dev - dev_old| / (|dev| + 0.1) < 1e-8``
with at most 25 iterations (``glm.control`` defaults, R 4.2.2).

The variance of a fitted ``eta`` reported by ``vcov.glm`` is ``1 / w`` with the
working weights ``w = n mu_eta^2 / (mu (1 - mu))`` of the *last* IRLS
iteration, i.e. evaluated at the previous iterate.

References
----------
R Core Team (2022). R 4.2.2, ``src/library/stats/R/glm.R`` (``glm.fit``) and
``src/library/stats/src/family.c`` (logit link and binomial deviance).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

__all__ = ["SaturatedFit", "saturated_binomial_glm", "log_binom_coef"]

_EPS = np.finfo(float).eps
_THRESH = 30.0


def _linkinv(eta: np.ndarray) -> np.ndarray:
    tmp = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1.0 / _EPS, np.exp(np.clip(eta, -_THRESH, _THRESH))))
    return tmp / (1.0 + tmp)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    ex = np.exp(np.clip(eta, -_THRESH, _THRESH))
    return np.where(np.abs(eta) > _THRESH, _EPS, ex / (1.0 + ex) ** 2)


def _y_log_y(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y != 0, y * np.log(np.where(y != 0, y, 1.0) / mu), 0.0)


def _deviance(y: np.ndarray, n: np.ndarray, mu: np.ndarray) -> float:
    return float(np.sum(2.0 * n * (_y_log_y(y, mu) + _y_log_y(1.0 - y, 1.0 - mu))))


def log_binom_coef(events: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """``log choose(trials, events)``."""
    return gammaln(trials + 1.0) - gammaln(events + 1.0) - gammaln(trials - events + 1.0)


@dataclass(frozen=True)
class SaturatedFit:
    """Result of the saturated IRLS: final ``eta``, ``var(eta)`` as R reports it, log-likelihood."""

    eta: np.ndarray
    var_eta: np.ndarray
    loglik: float
    iterations: int
    converged: bool


def saturated_binomial_glm(events: np.ndarray, trials: np.ndarray, max_iter: int = 25, epsilon: float = 1e-8) -> SaturatedFit:
    """Run R's IRLS for a saturated binomial-logit model, one free ``eta`` per observation.

    Observations with ``trials == 0`` must be removed by the caller.
    The log-likelihood includes binomial coefficients (``logLik.glm``).
    """
    n = np.asarray(trials, dtype=float)
    y = np.asarray(events, dtype=float) / n
    mu = (n * y + 0.5) / (n + 1.0)
    eta = np.log(mu / (1.0 - mu))
    dev_old = _deviance(y, n, mu)
    converged = False
    weights = n * _mu_eta(eta) ** 2 / (mu * (1.0 - mu))
    iteration = 0
    for iteration in range(1, max_iter + 1):
        mu_eta = _mu_eta(eta)
        weights = n * mu_eta**2 / (mu * (1.0 - mu))
        eta = eta + (y - mu) / mu_eta
        mu = _linkinv(eta)
        dev = _deviance(y, n, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    events_f = np.asarray(events, dtype=float)
    with np.errstate(divide="ignore"):
        ll = log_binom_coef(events_f, n) + events_f * np.log(mu) + (n - events_f) * np.log1p(-mu)
    return SaturatedFit(eta=eta, var_eta=1.0 / weights, loglik=float(ll.sum()), iterations=iteration, converged=converged)
