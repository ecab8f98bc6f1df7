"""Per-study Laplace / adaptive Gauss-Hermite deviance of a binomial-logit GLMM.

Every model fitted through ``lme4::glmer`` by metafor's ``rma.glmm`` has one
independent block of random effects per study, so the marginal deviance is a
sum over studies.  For study i with arms r (rows of a ``(k, R)`` array) the
linear predictor is ``eta_ir = offset_ir + (Z Lambda)_r b_i`` with spherical
``b_i ~ N(0, I_q)`` and relative covariance factor ``Lambda`` (lme4 notation).

The value returned is exactly lme4's objective (lme4 1.1-31, ``glmerAGQ`` in
``src/external.cpp`` and ``GHrule``), study by study::

    dev_i = devc_i(u_i) + log det(L_i L_i') - 2 log mult_i
    devc_i(b) = sum_r devresid_r(b) + |b|^2
    mult_i = sum_j w_j exp(z_j^2 / 2 - (devc_i(u_i + z_j / L_i) - devc_i(u_i)) / 2)

where ``u_i`` is the conditional mode, ``L_i L_i' = I + Lambda'Z'WZ Lambda`` at
the mode, ``devresid`` the binomial deviance residual (relative to the
saturated binomial model) and ``(z_j, w_j)`` the Gauss-Hermite rule for the
standard normal density.  With one node this is the Laplace approximation.
Hence ``dev_i = -2 log(marginal likelihood_i) + 2 loglik_saturated_i`` up to
the quadrature error.

References
----------
Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects
models using lme4. Journal of Statistical Software 67(1).
Pinheiro JC, Bates DM (1995). Approximations to the log-likelihood function in
the nonlinear mixed-effects model. J Comput Graph Stat 4(1):12-35.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gh_rule", "binomial_loglik", "saturated_loglik", "StudyDeviance", "study_deviance"]

_MODE_TOL = 1e-12
_MODE_MAXIT = 100


@lru_cache(maxsize=None)
def gh_rule(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes/weights for the standard normal density (weights sum to 1), like lme4's ``GHrule``."""
    nodes, weights = hermegauss(n_points)
    weights = weights / weights.sum()
    nodes = np.where(np.abs(nodes) < 1e-14, 0.0, nodes)
    return nodes, weights


def binomial_loglik(y: np.ndarray, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Kernel of the binomial log-likelihood, ``y*eta - n*log(1+exp(eta))`` (no binomial coefficient)."""
    return y * eta - n * np.logaddexp(0.0, eta)


def saturated_loglik(y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Kernel log-likelihood of the saturated model (``0 log 0 = 0``)."""
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / np.where(n > 0, n, 1.0)), 0.0)
        ny = n - y
        t2 = np.where(ny > 0, ny * np.log(np.where(ny > 0, ny, 1.0) / np.where(n > 0, n, 1.0)), 0.0)
    return t1 + t2


@dataclass(frozen=True)
class StudyDeviance:
    """Per-study deviance pieces at given parameters.

    Attributes
    ----------
    total : (k,) lme4 objective contributions ``dev_i``.
    devresid : (k,) sum of binomial deviance residuals at the conditional mode
        (what ``deviance(glmer_fit)`` sums; metafor uses it for ``ll``).
    mode : (k, q) conditional modes of the spherical random effects.
    hess : (k, q, q) ``I + Lambda'Z'WZ Lambda`` at the mode.
    """

    total: np.ndarray
    devresid: np.ndarray
    mode: np.ndarray
    hess: np.ndarray


def _linear(b, zlam):
    """Random part of the linear predictor, ``(Z Lambda) b`` per row: (M, R)."""
    return np.einsum("mrq,mq->mr", zlam, b)


def _mode_pieces(y, n, eta, zlam):
    """Gradient and Hessian of ``-loglik`` w.r.t. spherical b (batched over rows)."""
    mu = 0.5 * (1.0 + np.tanh(0.5 * eta))
    resid = y - n * mu  # (M, R)
    wts = n * mu * (1.0 - mu)
    grad_lik = -np.einsum("mr,mrq->mq", resid, zlam)
    hess = np.einsum("mr,mrq,mrs->mqs", wts, zlam, zlam)
    return grad_lik, hess


def _solve_small(hess, grad):
    """Solve the batched 1x1 or 2x2 systems ``hess @ x = grad``."""
    if hess.shape[1] == 1:
        return grad / hess[:, 0, :]
    if hess.shape[1] == 2:
        a, b, c, d = hess[:, 0, 0], hess[:, 0, 1], hess[:, 1, 0], hess[:, 1, 1]
        det = a * d - b * c
        return np.column_stack([(d * grad[:, 0] - b * grad[:, 1]) / det, (a * grad[:, 1] - c * grad[:, 0]) / det])
    return np.linalg.solve(hess, grad[..., None])[..., 0]


def _objective_half(y, n, offset, zlam, b):
    """``0.5 * devc(b)`` up to the saturated constant: ``-loglik + |b|^2/2`` per row."""
    return -binomial_loglik(y, n, offset + _linear(b, zlam)).sum(axis=1) + 0.5 * (b**2).sum(axis=1)


def conditional_modes(y, n, offset, zlam, start=None):
    """Damped Newton for the conditional modes (the objective is strictly convex in b).

    ``zlam`` has shape (M, R, q).  Returns the modes (M, q) and
    ``I + Lambda'Z'WZ Lambda`` at the modes (M, q, q).
    """
    rows, q = offset.shape[0], zlam.shape[2]
    b = np.zeros((rows, q)) if start is None else np.array(start, dtype=float)
    eye = np.eye(q)
    f_old = _objective_half(y, n, offset, zlam, b)
    for _ in range(_MODE_MAXIT):
        g_lik, h_lik = _mode_pieces(y, n, offset + _linear(b, zlam), zlam)
        step = _solve_small(h_lik + eye, g_lik + b)
        b_new = b - step
        f_new = _objective_half(y, n, offset, zlam, b_new)
        bad = f_new > f_old + 1e-12 * (1.0 + np.abs(f_old))
        t = 1.0
        while bad.any() and t > 1e-10:  # rarely needed: Newton is safe for this convex problem
            t *= 0.5
            b_new = np.where(bad[:, None], b - t * step, b_new)
            f_new = np.where(bad, _objective_half(y, n, offset, zlam, b_new), f_new)
            bad = f_new > f_old + 1e-12 * (1.0 + np.abs(f_old))
        b, f_old = b_new, f_new
        if np.max(np.abs(step)) < _MODE_TOL:
            break
    g_lik, h_lik = _mode_pieces(y, n, offset + _linear(b, zlam), zlam)
    return b, h_lik + eye


def study_deviance(y, n, offset, zlam, n_agq=1, start=None, sat=None) -> StudyDeviance:
    """lme4's Laplace (``n_agq=1``) or adaptive GHQ (``n_agq>1``, q = 1 only) deviance per row.

    Parameters
    ----------
    y, n : (M, R) events and trials per arm (an arm with ``n = 0`` contributes nothing);
        a row is one study (possibly at one of several parameter points).
    offset : (M, R) fixed part of the linear predictor.
    zlam : (R, q) ``Z Lambda`` shared by all rows, or (M, R, q) per row.
    n_agq : number of quadrature points per study.
    start : optional (M, q) starting modes.
    sat : optional precomputed ``saturated_loglik(y, n).sum(axis=1)``.
    """
    zlam = np.broadcast_to(zlam, (offset.shape[0],) + np.shape(zlam)[-2:]) if np.ndim(zlam) == 2 else zlam
    if n_agq > 1 and zlam.shape[2] != 1:
        raise ValueError("adaptive quadrature is implemented for a scalar random effect per study only")
    mode, hess = conditional_modes(y, n, offset, zlam, start)
    if sat is None:
        sat = saturated_loglik(y, n).sum(axis=1)
    devresid = 2.0 * (sat - binomial_loglik(y, n, offset + _linear(mode, zlam)).sum(axis=1))
    devc0 = devresid + (mode**2).sum(axis=1)
    logdet = np.log(hess[:, 0, 0]) if hess.shape[1] == 1 else np.linalg.slogdet(hess)[1]
    total = devc0 + logdet
    if n_agq > 1:
        nodes, weights = gh_rule(n_agq)
        sd = 1.0 / np.sqrt(hess[:, 0, 0])
        b_nodes = mode[:, 0][:, None] + sd[:, None] * nodes[None, :]  # (M, J)
        eta = offset[:, :, None] + zlam[:, :, 0, None] * b_nodes[:, None, :]  # (M, R, J)
        ll = binomial_loglik(y[:, :, None], n[:, :, None], eta).sum(axis=1)
        devc = 2.0 * (sat[:, None] - ll) + b_nodes**2
        log_terms = np.log(weights)[None, :] + 0.5 * nodes[None, :] ** 2 - 0.5 * (devc - devc0[:, None])
        top = log_terms.max(axis=1)
        log_mult = top + np.log(np.exp(log_terms - top[:, None]).sum(axis=1))
        total = total - 2.0 * log_mult
    return StudyDeviance(total=total, devresid=devresid, mode=mode, hess=hess)
