"""Exact numerical integration over tau for :mod:`mscmeta.engine.bayes` (no MCMC, no random numbers).

``mu`` is integrated out analytically (``mu | tau, y ~ N(m(tau), s(tau)^2)``; a normal
prior on ``mu`` is one extra pseudo-study), so the marginal posterior of ``tau`` is known up
to a constant (:func:`conditional_terms`; Röver 2020, sect. 2.4). It is integrated by
composite Gauss-Legendre quadrature on ``u = tau/(tau + c)`` (:func:`make_tau_grid`: 12
panels x 16 nodes, ``c`` the posterior median of tau from an 8-panel first pass, up to 200
panels when the posterior of ``u`` is narrow). The posteriors of ``mu`` and of a new
study's effect are normal mixtures over the nodes (:class:`NormalMixture`). Quantiles by
safeguarded Newton on the exact CDFs (for tau: on the per-panel interpolating polynomial
the rule integrates exactly; :func:`invert_cdf`); shortest intervals by Newton on
``F(b) - F(a) = level``, ``f(a) = f(b)`` with a bracketing fallback (:func:`shortest_interval`).

References
----------
Röver C (2020). J Stat Softw 93(6), sect. 2. doi:10.18637/jss.v093.i06
Davis PJ, Rabinowitz P (1984). Methods of Numerical Integration, 2nd ed., ch. 2
(composite Gauss-Legendre rules).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

from mscmeta.engine.validation import NotEstimableError

FloatArray = NDArray[np.float64]
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_N_PANELS, _N_PANELS_COARSE, _MAX_PANELS, _N_NODES = 12, 8, 200, 16
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_N_NODES)


# conditional moments and marginal likelihood
# --------------------------------------------------------------------------
def conditional_terms(tau: FloatArray, yi: FloatArray, vi: FloatArray,
                       mu_prior: tuple[float, float] | None
                       ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return ``(log p(y | tau) + const, m(tau), s(tau)^2)`` for each ``tau``.

    ``m`` and ``s^2`` are the conditional posterior mean and variance of
    ``mu`` given ``tau`` (inverse-variance weighting, the normal ``mu`` prior
    acting as one extra pseudo-study with variance ``sd^2``); the marginal
    likelihood drops the ``tau``-free constant (cf. Röver 2020, Sect. 2.4).
    """
    v = vi[None, :] + tau[:, None] ** 2
    w = 1.0 / v
    ys = np.broadcast_to(yi, v.shape)
    if mu_prior is not None:
        w = np.hstack([w, np.full((len(tau), 1), 1.0 / mu_prior[1] ** 2)])
        ys = np.hstack([ys, np.full((len(tau), 1), mu_prior[0])])
    wsum = w.sum(axis=1)
    mean = (w * ys).sum(axis=1) / wsum
    resid2 = (w * (ys - mean[:, None]) ** 2).sum(axis=1)
    loglik = 0.5 * (np.log(w).sum(axis=1) - resid2 - np.log(wsum))
    return loglik, mean, 1.0 / wsum


# --------------------------------------------------------------------------
# generic root finding / shortest intervals
# --------------------------------------------------------------------------
Evaluator = Callable[[FloatArray], tuple[FloatArray, FloatArray, FloatArray]]


def invert_cdf(evaluate: Evaluator, p: FloatArray, lo: FloatArray, hi: FloatArray,
                start: FloatArray, tol: float = 1e-13, maxiter: int = 200) -> FloatArray:
    """Solve ``F(x) = p`` (vectorised) by Newton steps safeguarded by bisection.

    ``evaluate(x)`` returns ``(F(x), f(x), f'(x))`` for an increasing ``F``
    with density ``f``; the roots must lie in the finite ``[lo, hi]``.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    x = np.minimum(np.maximum(start, lo), hi)
    for _ in range(maxiter):
        cdf, pdf, _ = evaluate(x)
        resid = cdf - p
        lo = np.where(resid < 0, x, lo)
        hi = np.where(resid > 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.where(resid == 0, 0.0, resid / pdf)
        done = np.abs(step) <= tol * (1.0 + np.abs(x))
        new = x - step
        outside = ~((new > lo) & (new < hi)) | ~np.isfinite(new)
        new = np.where(outside & ~done, 0.5 * (lo + hi), new)
        if np.all(done):
            return new
        x = new
    return x


def _hpd_newton(evaluate: Evaluator, a: float, b: float, level: float, lower: float,
                tol: float = 1e-12) -> tuple[float, float] | None:
    """Newton iteration for the shortest interval ``[a, b]``:
    ``F(b) - F(a) = level`` and ``log f(b) = log f(a)``; ``None`` on failure."""
    for _ in range(60):
        cdf, pdf, dpdf = evaluate(np.array([a, b]))
        if not (pdf[0] > 0 and pdf[1] > 0):
            return None
        g1 = cdf[1] - cdf[0] - level
        g2 = math.log(pdf[1]) - math.log(pdf[0])
        jac = np.array([[-pdf[0], pdf[1]], [-dpdf[0] / pdf[0], dpdf[1] / pdf[1]]])
        try:
            step = np.linalg.solve(jac, np.array([g1, g2]))
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)):
            return None
        for _ in range(40):  # damp until the new interval is admissible
            new_a, new_b = a - step[0], b - step[1]
            if new_a >= lower and new_a < new_b:
                break
            step = 0.5 * step
        else:
            return None
        if abs(step[0]) <= tol * (1 + abs(a)) and abs(step[1]) <= tol * (1 + abs(b)):
            return float(new_a), float(new_b)
        a, b = new_a, new_b
    return None


def _hpd_bisect(quantile: Callable[[FloatArray], FloatArray], evaluate: Evaluator,
                level: float, p_low: float) -> tuple[float, float]:
    """Fallback: Brent search for the left-tail mass ``p`` with ``f(Q(p)) = f(Q(p+level))``."""
    def gap(p: float) -> float:
        pdf = evaluate(quantile(np.array([p, p + level])))[1]
        return float(pdf[1] - pdf[0])

    p_high = p_low + (1.0 - level - p_low) * (1.0 - 1e-9)
    if gap(p_high) >= 0:
        p = p_high
    else:
        p = optimize.brentq(gap, p_low, p_high, xtol=1e-14, rtol=1e-14)
    lo, hi = quantile(np.array([p, p + level]))
    return float(lo), float(hi)


def shortest_interval(quantile: Callable[[FloatArray], FloatArray], evaluate: Evaluator,
                       level: float, central: tuple[float, float],
                       lower: float = -math.inf) -> tuple[float, float]:
    """Shortest ``level`` interval of a unimodal distribution on ``[lower, inf)``.

    If the density at ``lower`` is at least the density at ``Q(level)`` (mode
    at the support bound, as for tau near 0) the interval is one-sided,
    ``[lower, Q(level)]`` - bayesmeta's convention. Otherwise solve
    ``F(b) - F(a) = level``, ``f(a) = f(b)`` by Newton from the central
    interval, falling back to a bracketing search.
    """
    if math.isfinite(lower):
        upper = float(quantile(np.array([level]))[0])
        pdf = evaluate(np.array([lower, upper]))[1]
        if pdf[0] >= pdf[1]:
            return float(lower), upper
    found = _hpd_newton(evaluate, central[0], central[1], level, lower)
    if found is not None:
        return found
    p_low = 0.0 if math.isfinite(lower) else (1.0 - level) * 1e-9
    return _hpd_bisect(quantile, evaluate, level, p_low)


# --------------------------------------------------------------------------
# tau posterior on a Gauss-Legendre grid
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _legendre_to_power(degree: int) -> FloatArray:
    """Matrix ``C`` with ``power_coefficients = C @ legendre_coefficients``."""
    eye = np.eye(degree + 1)
    return np.column_stack([np.pad(np.polynomial.legendre.leg2poly(eye[m]), (0, degree - m))
                            for m in range(degree + 1)])


def _legendre_fit_matrix(n: int) -> FloatArray:
    """``T`` with ``coef = T @ values``: Legendre series interpolating values at
    the ``n`` Gauss-Legendre nodes (discrete Legendre transform)."""
    vander = np.polynomial.legendre.legvander(_GL_X, n - 1)          # (n_nodes, n)
    return (vander * _GL_W[:, None]).T * ((2 * np.arange(n) + 1) / 2.0)[:, None]


_FIT = _legendre_fit_matrix(_N_NODES)


@dataclass(frozen=True)
class TauGrid:
    """Posterior of tau integrated on ``u = tau/(tau + c)`` (composite Gauss-Legendre).

    Within each equal-width ``u`` panel the normalised density ``h(u)`` is
    represented by its degree ``n-1`` Legendre interpolant at the Gauss nodes
    (the polynomial the quadrature integrates exactly); its antiderivative
    gives the CDF inside a panel and its derivative the density slope. The
    three polynomials are stored in the power basis of the panel coordinate
    ``x in [-1, 1]`` for one-shot vectorised evaluation.
    """

    scale: float               # c
    tau: FloatArray            # all quadrature nodes on the tau scale
    weight: FloatArray         # normalised posterior mass per node
    panel_cdf: FloatArray      # CDF at the panel edges, length n_panels + 1
    coef: FloatArray           # (n, n_panels) power-basis coefficients (in x) of h(u)
    coef_int: FloatArray       # (n + 1, n_panels) power-basis coefficients of int_{-1}^x h
    coef_der: FloatArray       # (n - 1, n_panels) power-basis coefficients of dh/dx

    @property
    def n_panels(self) -> int:
        return self.coef.shape[1]

    def evaluate_u(self, u: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """CDF, density and density slope of ``u`` (vectorised)."""
        m = self.n_panels
        j = np.minimum((u * m).astype(int), m - 1)
        x = 2.0 * (u * m - j) - 1.0
        basis = x[None, :] ** np.arange(self.coef_int.shape[0])[:, None]      # (n+1, M)
        n = self.coef.shape[0]
        cdf = self.panel_cdf[j] + (basis * self.coef_int[:, j]).sum(axis=0) / (2.0 * m)
        pdf = (basis[:n] * self.coef[:, j]).sum(axis=0)
        dpdf = (basis[:n - 1] * self.coef_der[:, j]).sum(axis=0) * (2.0 * m)
        return np.minimum(np.maximum(cdf, 0.0), 1.0), np.maximum(pdf, 0.0), dpdf

    def evaluate(self, tau: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """CDF, density and density slope on the tau scale (vectorised)."""
        tau = np.maximum(np.asarray(tau, dtype=float), 0.0)
        u = tau / (tau + self.scale)
        cdf, h, dh = self.evaluate_u(u)
        du = (1.0 - u) ** 2 / self.scale
        d2u = -2.0 * (1.0 - u) ** 3 / self.scale ** 2
        return cdf, h * du, dh * du * du + h * d2u

    def cdf_tau(self, tau: float) -> float:
        if tau <= 0:
            return 0.0
        return 1.0 if not math.isfinite(tau) else float(self.evaluate(np.array([tau]))[0][0])

    def quantile(self, p: FloatArray) -> FloatArray:
        p = np.asarray(p, dtype=float)
        start = np.interp(p, self.panel_cdf, np.arange(self.n_panels + 1) / self.n_panels)
        u = invert_cdf(self.evaluate_u, p, np.zeros_like(p), np.ones_like(p), start)
        with np.errstate(divide="ignore"):
            return np.where(u < 1.0, self.scale * u / (1.0 - u), np.inf)


def _gl_nodes(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes/weights on each interval ``[lo_j, hi_j]`` (rows)."""
    half = 0.5 * (hi - lo)[:, None]
    return 0.5 * (hi + lo)[:, None] + half * _GL_X[None, :], half * _GL_W[None, :]


def build_tau_grid(log_post: Callable[[FloatArray], FloatArray], scale: float,
                    n_panels: int) -> TauGrid:
    """Integrate ``exp(log_post)`` over tau in (0, inf) through ``tau = c u/(1-u)``."""
    edges = np.linspace(0.0, 1.0, n_panels + 1)
    u, wu = _gl_nodes(edges[:-1], edges[1:])
    tau = scale * u / (1.0 - u)
    lp = log_post(tau.ravel()).reshape(tau.shape) + math.log(scale) - 2.0 * np.log1p(-u)
    top = float(np.max(lp))
    if not math.isfinite(top):
        raise NotEstimableError("tau posterior: density is zero or not finite on the whole grid")
    dens = np.exp(lp - top)
    dens /= float((wu * dens).sum())
    coef = _FIT @ dens.T                                     # (n, n_panels), Legendre
    legendre, n = np.polynomial.legendre, coef.shape[0]
    coef_int = legendre.legint(coef, lbnd=-1, axis=0)
    coef_der = legendre.legder(coef, axis=0)
    panel_cdf = np.concatenate([[0.0], np.cumsum((wu * dens).sum(axis=1))])
    to_power = _legendre_to_power(n)                         # (n + 1, n + 1)
    return TauGrid(scale, tau.ravel(), (wu * dens).ravel(), panel_cdf,
                    to_power[:n, :n] @ coef, to_power @ coef_int,
                    to_power[:n - 1, :n - 1] @ coef_der)


# --------------------------------------------------------------------------
# normal mixtures (mu and theta_new)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class NormalMixture:
    """Finite normal mixture ``sum_j w_j N(mean_j, sd_j^2)``."""

    weight: FloatArray
    mean: FloatArray
    sd: FloatArray

    def evaluate(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """CDF, density and density slope at each element of ``x`` (vectorised)."""
        z = (np.atleast_1d(x)[:, None] - self.mean[None, :]) / self.sd[None, :]
        phi = np.exp(-0.5 * z * z - _LOG_SQRT_2PI)
        return (special.ndtr(z) @ self.weight, phi @ (self.weight / self.sd),
                -(phi * z) @ (self.weight / self.sd ** 2))

    def cdf(self, x: float) -> float:
        return float(self.evaluate(np.array([x]))[0][0])

    def moments(self) -> tuple[float, float]:
        mu = float(np.dot(self.weight, self.mean))
        var = float(np.dot(self.weight, self.sd ** 2 + (self.mean - mu) ** 2))
        return mu, math.sqrt(var)

    def quantile(self, p: FloatArray) -> FloatArray:
        p = np.asarray(p, dtype=float)
        centre, spread = self.moments()
        lo = np.full_like(p, float(np.min(self.mean - 40.0 * self.sd)))
        hi = np.full_like(p, float(np.max(self.mean + 40.0 * self.sd)))
        return invert_cdf(self.evaluate, p, lo, hi, centre + spread * special.ndtri(p))


def make_tau_grid(log_prior: Callable[[FloatArray], FloatArray], y: FloatArray, v: FloatArray,
                  mu_prior: tuple[float, float] | None) -> TauGrid:
    """Two-pass grid: the first pass locates the posterior median of tau,
    which becomes the scale ``c`` of the final ``u = tau/(tau+c)`` rule, and
    the posterior sd of ``u``; panels are at most two sds wide (12 to 200
    panels), so sharply peaked posteriors (large k) stay resolved."""
    def log_post(tau: FloatArray) -> FloatArray:
        return log_prior(tau) + conditional_terms(tau, y, v, mu_prior)[0]

    coarse = build_tau_grid(log_post, float(np.sqrt(np.median(v))), _N_PANELS_COARSE)
    scale = max(float(coarse.quantile(np.array([0.5]))[0]), 1e-8 * coarse.scale)
    u = coarse.tau / (coarse.tau + scale)
    sd_u = math.sqrt(max(float(np.dot(coarse.weight, u * u)) - float(np.dot(coarse.weight, u)) ** 2,
                         1e-12))
    n_panels = int(min(_MAX_PANELS, max(_N_PANELS, math.ceil(0.5 / sd_u))))
    return build_tau_grid(log_post, scale, n_panels)
