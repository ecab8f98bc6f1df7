"""The three ``rma.glmm`` models that metafor fits with ``lme4::glmer``.

All follow metafor 3.8-1 ``R/rma.glmm.r`` for ``measure="OR"``, no moderators
(p = 1), ``coding=1/2``, ``cor=FALSE``, ``method="ML"``:

``UM.FS``  ``glmer(cbind(x, n-x) ~ -1 + group1 + study + (group12 - 1 | study), nAGQ)``:
    per arm ``logit p = alpha_i + beta * group1 + u_i * group12`` with
    ``group1 = 1/0`` (treatment/control), ``group12 = +1/2 / -1/2``,
    ``u_i ~ N(0, tau2)``; fixed study intercepts ``alpha_i``.
    Equal-effects fit: ``glm`` with ``tau2 = 0``.  Saturated fit: ``glm`` with
    ``study + study:group1`` (handled by :mod:`._glm`).
    ``ll = ll_saturated - deviance(glmer_fit) / 2`` where ``deviance`` is the
    sum of binomial deviance residuals at the conditional modes.
``CM.AL``  ``glmer(cbind(ai, ci) ~ 1 + (1 | study), offset = log(n1i / n2i), nAGQ)``:
    the binomial approximation to the conditional likelihood; equal-effects
    and saturated fits are ``glm`` as above.
``UM.RS``  ``glmer(... ~ -1 + group1 + const + (group12 || study), nAGQ = 1)``:
    random study intercepts (variance ``sigma2``) and random treatment effects
    (variance ``tau2``), uncorrelated; Laplace approximation (metafor forces
    ``nAGQ = 1``).  Equal-effects fit: the same without ``tau2`` (a
    ``glmer`` with ``(1 | study)``); saturated fit: ``glmer`` with fixed
    per-study treatment effects and ``(1 | study)``.  ``ll = logLik(glmer_fit)``.

Standard errors are lme4's default for GLMMs: ``2 * solve(H)`` restricted to
the fixed effects, with ``H`` the finite-difference Hessian of the deviance in
``(theta, beta)``; if that is not positive definite lme4 falls back to the
``RX``-based matrix (treating ``theta`` as known), and so do we.

References
----------
Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event
outcome in the framework of the generalized linear mixed model with
applications in sparse data. Statistics in Medicine 29:3046-3067.
Jackson D, Law M, Stijnen T, Viechtbauer W, White IR (2018). A comparison of
seven random-effects models for meta-analyses that estimate the summary odds
ratio. Statistics in Medicine 37:1059-1085.
Bates D, Maechler M, Bolker B, Walker S (2015). lme4. J Stat Softw 67(1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mscmeta.engine.glmm.agq import StudyDeviance, saturated_loglik, study_deviance
from mscmeta.engine.glmm.tables import StudyTable
from mscmeta.engine.glmm.glm import log_binom_coef, saturated_binomial_glm
from mscmeta.engine.glmm.optim import OptimResult, fd_hessian, minimize_newton, minimize_per_study

__all__ = ["CoreFit", "fit_um_fs", "fit_cm_al", "fit_um_rs", "wald_equal_effects"]

_HESS_STEP = 1e-4  # lme4 deriv12 default step
_BOUNDARY_TOL = 1e-5  # lme4 glmerControl(boundary.tol)


@dataclass
class CoreFit:
    """Model-specific numbers handed back to :func:`mscmeta.engine.glmm.model.meta_glmm`."""

    estimate: float
    se: float
    tau2: float
    wald: float
    lrt: float
    loglik: float
    n_parameters: int
    k_eff: int
    converged: bool
    message: str
    iterations: int
    evaluations: int
    loglik_saturated: float = float("nan")
    sigma2: float = float("nan")
    se_tau2: float = float("nan")
    notes: list[str] = field(default_factory=list)


def _log_coef_sum(y: np.ndarray, n: np.ndarray) -> float:
    return float(log_binom_coef(y.astype(float), n.astype(float)).sum())


def _loglik_saturated_exact(y: np.ndarray, n: np.ndarray) -> float:
    """Full binomial log-likelihood of the saturated model (with coefficients)."""
    return _log_coef_sum(y, n) + float(saturated_loglik(y, n).sum())


def wald_equal_effects(theta: np.ndarray, var: np.ndarray) -> float:
    """Wald statistic of H0: all theta equal, with independent variances (= Cochran-type Q)."""
    w = 1.0 / var
    mean = float((w * theta).sum() / w.sum())
    return float((w * (theta - mean) ** 2).sum())


def _vcov_fixed(hess: np.ndarray, n_theta: int) -> np.ndarray | None:
    """lme4 ``vcov.merMod``: ``2 * solve(H)`` restricted to beta; None if not positive definite."""
    try:
        inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    v = (inv + inv.T)[n_theta:, n_theta:]
    if not np.all(np.isfinite(v)) or np.min(np.linalg.eigvalsh(v)) <= 0:
        return None
    return v


def _rx_vcov(arms_y, arms_n, offset, zlam, xmat, mode) -> np.ndarray:
    """lme4 fallback ``vcov``: ``(X'WX - X'WZL (L'Z'WZL + I)^-1 L'Z'WX)^-1`` at the conditional modes."""
    eta = offset + mode @ zlam.T
    mu = 0.5 * (1 + np.tanh(0.5 * eta))
    w = arms_n * mu * (1 - mu)  # (k, R)
    xtwx = np.einsum("kr,krp,krs->ps", w, xmat, xmat)
    zx = np.einsum("kr,rq,krp->kqp", w, zlam, xmat)
    zz = np.einsum("kr,rq,rs->kqs", w, zlam, zlam) + np.eye(zlam.shape[1])
    schur = xtwx - np.einsum("kqp,kqs->ps", zx, np.linalg.solve(zz, zx))
    return np.linalg.inv(schur)


_GROUP1 = np.array([1.0, 0.0])  # treatment indicator per arm (metafor's X.fit = group1)
_GROUP12 = np.array([[0.5], [-0.5]])  # random-effect coding 1/2 (metafor's coding=1/2)


def _two_arm_arrays(table: StudyTable) -> tuple[np.ndarray, np.ndarray]:
    """Events and sizes as (k, 2) arrays, treatment arm first; double-zero studies (drop00=False) zeroed.

    A study without events (or without non-events) in both arms has an infinite
    fixed intercept in ``UM.FS``; in the limit it contributes nothing, which is
    what zero-sized arms encode.
    """
    y = np.column_stack([table.a, table.c]).astype(float)
    n = np.column_stack([table.n1, table.n2]).astype(float)
    empty = ((y == 0).all(axis=1)) | ((y == n).all(axis=1))
    return np.where(empty[:, None], 0.0, y), np.where(empty[:, None], 0.0, n)


class _Rows:
    """Study arrays replicated for several parameter points (row = point x study)."""

    def __init__(self, y: np.ndarray, n: np.ndarray) -> None:
        self.y, self.n, self.k = y, n, len(y)
        self.sat = saturated_loglik(y, n).sum(axis=1)

    def tiled(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reps = rows // self.k
        return np.tile(self.y, (reps, 1)), np.tile(self.n, (reps, 1)), np.tile(self.sat, reps)

    def per_row(self, values: np.ndarray, rows: int) -> np.ndarray:
        """Expand one value per point (P,) to one per row, repeated for stacked copies."""
        per_point = np.repeat(np.asarray(values, dtype=float), self.k)
        return np.tile(per_point, rows // len(per_point))


class _UmFsProfile(_Rows):
    """UM.FS deviance as a function of (theta, beta), the study intercepts profiled out."""

    def __init__(self, table: StudyTable, n_agq: int) -> None:
        super().__init__(*_two_arm_arrays(table))
        self.n_agq = n_agq
        self.alpha = np.log((table.c + 0.5) / (table.d + 0.5))

    def rows(self, theta: np.ndarray, beta: np.ndarray, alpha: np.ndarray) -> StudyDeviance:
        """Per-row deviance for per-point ``theta``/``beta`` (P,) and per-row intercepts ``alpha``."""
        y, n, sat = self.tiled(len(alpha))
        offset = alpha[:, None] + self.per_row(beta, len(alpha))[:, None] * _GROUP1[None, :]
        zlam = self.per_row(theta, len(alpha))[:, None, None] * _GROUP12[None, :, :]
        return study_deviance(y, n, offset, zlam, self.n_agq, sat=sat)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        theta, beta = points[:, 0], points[:, 1]
        start = np.tile(self.alpha, len(points))
        alpha, values = minimize_per_study(lambda al: self.rows(theta, beta, al).total, start)
        self.alpha = alpha[: self.k]
        return values.reshape(len(points), self.k).sum(axis=1)


def _fit_theta_beta(profile, beta_start: float) -> tuple[OptimResult, float]:
    """Minimise a batched deviance in (theta, beta); theta enters only through theta^2, so |theta| is reported.

    Starting theta: the best of a few candidates at the equal-effects beta.
    If the optimum lies within lme4's ``boundary.tol`` of 0, theta is set to 0
    (``lme4:::check.boundary``) and beta re-optimised.
    """
    candidates = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
    values = profile(np.column_stack([candidates, np.full(len(candidates), beta_start)]))
    start = np.array([candidates[int(np.argmin(values))], beta_start])
    res = minimize_newton(profile, start, step=_HESS_STEP)
    theta = abs(float(res.x[0]))
    if theta < _BOUNDARY_TOL:
        res0 = minimize_newton(lambda p: profile(np.column_stack([np.zeros(len(p)), p[:, 0]])), res.x[1:], step=_HESS_STEP)
        if res0.fun <= res.fun + 1e-8:
            x = np.array([0.0, res0.x[0]])
            fx, _, hess = fd_hessian(profile, x, _HESS_STEP)
            res = OptimResult(x=x, fun=fx, hessian=hess, iterations=res.iterations + res0.iterations,
                              evaluations=res.evaluations + res0.evaluations, converged=res0.converged, message=res0.message)
            theta = 0.0
    return res, theta


def fit_um_fs(table: StudyTable, n_agq: int = 7) -> CoreFit:
    """Unconditional model with fixed study effects (see module docstring)."""
    prof = _UmFsProfile(table, n_agq)
    y, n = prof.y, prof.n
    ll_sat = _loglik_saturated_exact(y, n)
    fe = minimize_newton(lambda p: prof(np.column_stack([np.zeros(len(p)), p[:, 0]])), np.array([0.0]), step=_HESS_STEP)
    ll_fe = ll_sat - fe.fun / 2
    used = n > 0
    sat = saturated_binomial_glm(y[used], n[used])
    eta = np.full(y.shape, np.nan)
    var = np.full(y.shape, np.nan)
    eta[used], var[used] = sat.eta, sat.var_eta
    both = used.all(axis=1)
    wald = wald_equal_effects(eta[both, 0] - eta[both, 1], var[both].sum(axis=1))
    lrt = max(0.0, -2 * (ll_fe - sat.loglik))
    res, theta = _fit_theta_beta(prof, float(fe.x[0]))
    beta = float(res.x[1])
    prof(np.array([[theta, beta]]))
    final = prof.rows(np.array([theta]), np.array([beta]), prof.alpha)
    notes: list[str] = []
    vcov = _vcov_fixed(res.hessian, 1)
    if vcov is None:
        notes.append("finite-difference Hessian not positive definite: SE from RX (lme4 fallback)")
        k = table.k
        xmat = np.zeros((k, 2, k + 1))
        xmat[:, 0, 0] = 1.0
        xmat[np.arange(k), :, 1 + np.arange(k)] = 1.0
        offset = prof.alpha[:, None] + beta * _GROUP1[None, :]
        vcov = _rx_vcov(y, n, offset, theta * _GROUP12, xmat, final.mode)
    return CoreFit(
        estimate=beta, se=float(np.sqrt(vcov[0, 0])), tau2=theta**2, wald=wald, lrt=lrt,
        loglik=sat.loglik - 0.5 * float(final.devresid.sum()), loglik_saturated=sat.loglik,
        n_parameters=1 + table.k + 1, k_eff=2 * table.k,
        converged=res.converged, message=res.message, iterations=res.iterations, evaluations=res.evaluations, notes=notes,
    )


class _CmAlDeviance(_Rows):
    """CM.AL deviance in (theta, beta): ai ~ Bin(ai + ci, expit(log(n1i/n2i) + beta + u_i))."""

    def __init__(self, table: StudyTable, n_agq: int) -> None:
        super().__init__(table.a.astype(float)[:, None], (table.a + table.c).astype(float)[:, None])
        self.offset = np.log(table.n1 / table.n2).astype(float)[:, None]
        self.n_agq = n_agq

    def rows(self, theta: np.ndarray, beta: np.ndarray) -> StudyDeviance:
        rows = len(theta) * self.k
        y, n, sat = self.tiled(rows)
        offset = np.tile(self.offset, (len(theta), 1)) + self.per_row(beta, rows)[:, None]
        zlam = self.per_row(theta, rows)[:, None, None]
        return study_deviance(y, n, offset, zlam, self.n_agq, sat=sat)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.rows(points[:, 0], points[:, 1]).total.reshape(len(points), self.k).sum(axis=1)


def fit_cm_al(table: StudyTable, n_agq: int = 7) -> CoreFit:
    """Conditional model, approximate (binomial) likelihood (see module docstring)."""
    dev = _CmAlDeviance(table, n_agq)
    ll_sat = _loglik_saturated_exact(dev.y, dev.n)
    fe = minimize_newton(lambda p: dev(np.column_stack([np.zeros(len(p)), p[:, 0]])), np.array([0.0]), step=_HESS_STEP)
    ll_fe = ll_sat - fe.fun / 2
    used = dev.n[:, 0] > 0
    sat = saturated_binomial_glm(dev.y[used, 0], dev.n[used, 0])
    wald = wald_equal_effects(sat.eta - dev.offset[used, 0], sat.var_eta)
    lrt = max(0.0, -2 * (ll_fe - sat.loglik))
    res, theta = _fit_theta_beta(dev, float(fe.x[0]))
    beta = float(res.x[1])
    final = dev.rows(np.array([theta]), np.array([beta]))
    notes: list[str] = []
    vcov = _vcov_fixed(res.hessian, 1)
    if vcov is None:
        notes.append("finite-difference Hessian not positive definite: SE from RX (lme4 fallback)")
        xmat = np.ones((table.k, 1, 1))
        vcov = _rx_vcov(dev.y, dev.n, dev.offset + beta, np.array([[theta]]), xmat, final.mode)
    return CoreFit(
        estimate=beta, se=float(np.sqrt(vcov[0, 0])), tau2=theta**2, wald=wald, lrt=lrt,
        loglik=sat.loglik - 0.5 * float(final.devresid.sum()), loglik_saturated=sat.loglik, n_parameters=2, k_eff=table.k,
        converged=res.converged, message=res.message, iterations=res.iterations, evaluations=res.evaluations, notes=notes,
    )


class _UmRsDeviance(_Rows):
    """UM.RS Laplace deviance; arms (treatment, control), random intercept sd ``sigma``, random effect ``tau`` on +-1/2."""

    def __init__(self, table: StudyTable) -> None:
        super().__init__(np.column_stack([table.a, table.c]).astype(float), np.column_stack([table.n1, table.n2]).astype(float))

    def ml_rows(self, points: np.ndarray) -> StudyDeviance:
        """Rows for points (P, 4) = (sigma, tau, beta0, beta1)."""
        rows = len(points) * self.k
        y, n, sat = self.tiled(rows)
        sigma, tau, beta0, beta1 = (self.per_row(points[:, j], rows) for j in range(4))
        zlam = np.empty((rows, 2, 2))
        zlam[:, :, 0] = sigma[:, None]
        zlam[:, 0, 1], zlam[:, 1, 1] = 0.5 * tau, -0.5 * tau
        offset = beta0[:, None] + beta1[:, None] * _GROUP1[None, :]
        return study_deviance(y, n, offset, zlam, 1, sat=sat)

    def ml(self, points: np.ndarray) -> np.ndarray:
        return self.ml_rows(points).total.reshape(len(points), self.k).sum(axis=1)

    def fe(self, points: np.ndarray) -> np.ndarray:
        """Equal-effects model (tau = 0): points (P, 3) = (sigma, beta0, beta1)."""
        rows = len(points) * self.k
        y, n, sat = self.tiled(rows)
        sigma, beta0, beta1 = (self.per_row(points[:, j], rows) for j in range(3))
        zlam = np.repeat(sigma[:, None, None], 2, axis=1)
        offset = beta0[:, None] + beta1[:, None] * _GROUP1[None, :]
        return study_deviance(y, n, offset, zlam, 1, sat=sat).total.reshape(len(points), self.k).sum(axis=1)


class _UmRsSaturated(_Rows):
    """UM.RS saturated model: random intercept, fixed per-study treatment effects ``nu_i``.

    Treatment arms with no events (or only events) have ``nu_i = -inf`` (``+inf``)
    at the supremum; such an arm then contributes nothing and is left out.
    """

    def __init__(self, table: StudyTable) -> None:
        self.finite = (table.a > 0) & (table.a < table.n1)
        keep = self.finite[:, None] | (np.arange(2) == 1)[None, :]
        y = np.column_stack([table.a, table.c]).astype(float)
        n = np.column_stack([table.n1, table.n2]).astype(float)
        super().__init__(np.where(keep, y, 0.0), np.where(keep, n, 0.0))
        a, b = table.a + 0.5, table.b + 0.5
        self.nu = np.log(a / b) - np.log((table.c + 0.5) / (table.d + 0.5))

    def rows(self, sigma: np.ndarray, beta0: np.ndarray, nu: np.ndarray) -> np.ndarray:
        """Per-row deviance for per-point sigma/beta0 (P,) and per-row ``nu``."""
        y, n, sat = self.tiled(len(nu))
        offset = self.per_row(beta0, len(nu))[:, None] + nu[:, None] * _GROUP1[None, :]
        zlam = np.repeat(self.per_row(sigma, len(nu))[:, None, None], 2, axis=1)
        return study_deviance(y, n, offset, zlam, 1, sat=sat).total

    def __call__(self, points: np.ndarray) -> np.ndarray:
        sigma, beta0 = points[:, 0], points[:, 1]
        nu, values = minimize_per_study(lambda v: self.rows(sigma, beta0, v), np.tile(self.nu, len(points)))
        self.nu = nu[: self.k]
        return values.reshape(len(points), self.k).sum(axis=1)

    def wald(self, sigma: float, beta0: float, step: float = _HESS_STEP) -> float:
        """Wald statistic of equal ``nu_i`` with lme4's Hessian-based covariance (finite ``nu_i`` only)."""
        nu, h = self.nu, step
        outer = np.array([sigma, beta0])

        def per_study(point: np.ndarray, shift: float) -> np.ndarray:
            return self.rows(point[:1], point[1:], nu + shift)

        f0 = per_study(outer, 0.0)
        d_diag = (per_study(outer, h) - 2 * f0 + per_study(outer, -h)) / h**2
        cross = np.empty((2, len(nu)))
        for j in range(2):
            e = np.eye(2)[j] * h
            cross[j] = (per_study(outer + e, h) - per_study(outer + e, -h) - per_study(outer - e, h)
                        + per_study(outer - e, -h)) / (4 * h**2)
        _, _, a_mat = fd_hessian(lambda p: np.array([per_study(q, 0.0).sum() for q in p]), outer, h)
        keep = self.finite
        precision = 0.5 * (np.diag(d_diag[keep]) - cross[:, keep].T @ np.linalg.solve(a_mat, cross[:, keep]))
        v = nu[keep]
        ones = np.ones(len(v))
        return float(v @ precision @ v - (ones @ precision @ v) ** 2 / (ones @ precision @ ones))


def _best_start(batch, base: np.ndarray, index: int, candidates: list[float]) -> np.ndarray:
    points = np.tile(base, (len(candidates), 1))
    points[:, index] = candidates
    return points[int(np.argmin(batch(points)))].copy()


def _um_rs_boundary(dev: _UmRsDeviance, res: OptimResult) -> tuple[OptimResult, float]:
    """lme4 ``check.boundary`` for tau: refit with tau = 0 when tau is within ``boundary.tol`` of 0."""
    tau = abs(float(res.x[1]))
    if tau >= _BOUNDARY_TOL:
        return res, tau
    res0 = minimize_newton(dev.fe, res.x[[0, 2, 3]], step=_HESS_STEP)
    if res0.fun > res.fun + 1e-8:
        return res, tau
    x = np.array([res0.x[0], 0.0, res0.x[1], res0.x[2]])
    fx, _, hess = fd_hessian(dev.ml, x, _HESS_STEP)
    merged = OptimResult(x=x, fun=fx, hessian=hess, iterations=res.iterations + res0.iterations,
                         evaluations=res.evaluations + res0.evaluations, converged=res0.converged, message=res0.message)
    return merged, 0.0


def _um_rs_heterogeneity(table: StudyTable, dev: _UmRsDeviance, ll_sat: float) -> tuple[OptimResult, float, float, float]:
    """Equal-effects fit, saturated fit, Wald-type and LR statistics for UM.RS."""
    beta0 = float(np.log((table.c.sum() + 0.5) / (table.d.sum() + 0.5)))
    fe_start = _best_start(dev.fe, np.array([1.0, beta0, 0.0]), 0, [0.1, 0.5, 1.0, 2.0])
    fe = minimize_newton(dev.fe, fe_start, step=_HESS_STEP)
    qe = _UmRsSaturated(table)
    qe_fit = minimize_newton(qe, fe.x[:2].copy(), step=_HESS_STEP)
    qe(qe_fit.x[None, :])
    ll_qe = _loglik_saturated_exact(qe.y, qe.n) - qe_fit.fun / 2
    wald = qe.wald(float(qe_fit.x[0]), float(qe_fit.x[1]))
    lrt = max(0.0, -2 * ((ll_sat - fe.fun / 2) - ll_qe))
    return fe, wald, lrt, ll_qe


def fit_um_rs(table: StudyTable) -> CoreFit:
    """Unconditional model with random study effects, Laplace approximation (see module docstring)."""
    dev = _UmRsDeviance(table)
    ll_sat = _loglik_saturated_exact(dev.y, dev.n)
    fe, wald, lrt, ll_qe = _um_rs_heterogeneity(table, dev, ll_sat)
    start = _best_start(dev.ml, np.array([fe.x[0], 0.3, fe.x[1], fe.x[2]]), 1, [0.05, 0.2, 0.5, 1.0, 2.0])
    res, tau = _um_rs_boundary(dev, minimize_newton(dev.ml, start, step=_HESS_STEP))
    sigma = abs(float(res.x[0]))
    notes: list[str] = []
    vcov = _vcov_fixed(res.hessian, 2)
    if vcov is None:
        notes.append("finite-difference Hessian not positive definite: SE from RX (lme4 fallback)")
        final = dev.ml_rows(res.x[None, :])
        xmat = np.zeros((table.k, 2, 2))
        xmat[:, :, 0] = 1.0
        xmat[:, 0, 1] = 1.0
        zlam = np.array([[sigma, 0.5 * tau], [sigma, -0.5 * tau]])
        offset = res.x[2] + res.x[3] * _GROUP1[None, :] + np.zeros_like(dev.y)
        vcov = _rx_vcov(dev.y, dev.n, offset, zlam, xmat, final.mode)
    return CoreFit(
        estimate=float(res.x[3]), se=float(np.sqrt(vcov[1, 1])), tau2=tau**2, sigma2=sigma**2, wald=wald, lrt=lrt,
        loglik=ll_sat - res.fun / 2, loglik_saturated=ll_qe, n_parameters=1 + 1 + 2, k_eff=2 * table.k,
        converged=res.converged, message=res.message, iterations=res.iterations, evaluations=res.evaluations, notes=notes,
    )
