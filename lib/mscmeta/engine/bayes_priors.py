"""Priors of the Bayesian normal-normal random-effects model (:mod:`mscmeta.engine.bayes`).

Priors on the heterogeneity standard deviation ``tau`` (:data:`~mscmeta.engine.options.TAU_PRIORS`):
half-normal and half-Cauchy with a stated scale (Röver et al. 2021 recommend scales of
0.5-1.0 for log odds ratios), the Turner et al. (2015) log-normal predictive priors for
all-cause mortality (:data:`~mscmeta.engine.options.TURNER_COMPARISONS`; log-normal for
``tau^2``, so ``tau`` is log-normal with halved ``meanlog`` and ``sdlog``), and the
improper uniform prior (bayesmeta's default, for reference checks). The prior on ``mu`` is
flat or normal.

References
----------
Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive distributions
for between-study heterogeneity and simple methods for their application in Bayesian
meta-analysis. Stat Med 34(6):984-998, Table IV (as tabulated in bayesmeta 3.4,
``TurnerEtAlParameters``). doi:10.1002/sim.6381
Röver C, Bender R, Dias S, et al. (2021). On weakly informative prior distributions for the
heterogeneity parameter in Bayesian random-effects meta-analysis. Res Synth Methods 12:448-474.
Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
J Stat Softw 93(6). doi:10.18637/jss.v093.i06
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mscmeta.engine.options import TAU_PRIORS, TURNER_COMPARISONS
from mscmeta.engine.validation import DataError

FloatArray = NDArray[np.float64]

#: Turner et al. (2015) Table IV, all-cause mortality: (meanlog, sdlog) of log-normal tau^2,
#: by comparison type (keys :data:`~mscmeta.engine.options.TURNER_COMPARISONS`).
TURNER_MORTALITY_TAU2: dict[str, tuple[float, float]] = dict(zip(TURNER_COMPARISONS, (
    (-3.95, 1.34),  # pharmacological vs. placebo / control
    (-4.18, 1.41),  # pharmacological vs. pharmacological
    (-4.17, 1.55),  # non-pharmacological vs. placebo / control
    (-2.92, 1.02),  # non-pharmacological vs. pharmacological
    (-3.50, 1.26),  # non-pharmacological vs. non-pharmacological
), strict=True))
_TURNER_LABELS = dict(zip(TURNER_COMPARISONS, (
    "pharmacological vs. placebo / control", "pharmacological vs. pharmacological",
    "non-pharmacological vs. placebo / control", "non-pharmacological vs. pharmacological",
    "non-pharmacological vs. non-pharmacological",
), strict=True))
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------
# priors
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class TauPrior:
    """Prior for the heterogeneity standard deviation ``tau``.

    Attributes
    ----------
    family : str
        ``"halfnormal"``, ``"halfcauchy"``, ``"lognormal"`` (for ``tau``) or
        ``"uniform"`` (improper, on ``[0, inf)``).
    params : tuple of float
        ``(scale,)`` for half-normal/half-Cauchy; ``(meanlog, sdlog)`` of
        ``tau`` for log-normal; ``()`` for uniform.
    label : str
        Human-readable description used in printouts.
    tail_exponent : float
        ``d log p(tau) / d log tau`` as ``tau -> inf`` (``-inf`` for tails
        lighter than any power); used to decide propriety and moment finiteness.
    """

    family: str
    params: tuple[float, ...]
    label: str
    tail_exponent: float

    def logpdf(self, tau: FloatArray) -> FloatArray:
        """Log prior density of ``tau`` (normalised; ``0`` for ``uniform``)."""
        tau = np.asarray(tau, dtype=float)
        if self.family == "halfnormal":
            s = self.params[0]
            return math.log(2.0) - _LOG_SQRT_2PI - math.log(s) - 0.5 * (tau / s) ** 2
        if self.family == "halfcauchy":
            s = self.params[0]
            return math.log(2.0 / (math.pi * s)) - np.log1p((tau / s) ** 2)
        if self.family == "lognormal":
            m, sd = self.params
            with np.errstate(divide="ignore"):
                logt = np.log(tau)
            out = -logt - _LOG_SQRT_2PI - math.log(sd) - 0.5 * ((logt - m) / sd) ** 2
            return np.where(tau > 0, out, -np.inf)
        return np.zeros_like(tau)

    @property
    def proper(self) -> bool:
        """Whether the prior integrates to one."""
        return self.family != "uniform"


def _positive_scale(value: Any, option: str) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise DataError(f"tau_prior: scale {value!r} of {option!r} is not a number") from None
    if not (math.isfinite(scale) and scale > 0):
        raise DataError(f"tau_prior: scale of {option!r} must be finite and > 0, got {value!r}")
    return scale


def _turner_prior(comparison: str) -> TauPrior:
    key = comparison.strip().lower().replace("_", "-").replace(" ", "")
    if key not in TURNER_MORTALITY_TAU2:
        raise DataError(
            f"tau_prior: unknown Turner comparison {comparison!r}; "
            f"choose one of {', '.join(TURNER_COMPARISONS)}"
        )
    m2, s2 = TURNER_MORTALITY_TAU2[key]
    label = (f"Turner et al. (2015) all-cause mortality, {_TURNER_LABELS[key]}: "
             f"log(tau^2) ~ N({m2:.2f}, {s2:.2f}^2), i.e. "
             f"tau ~ log-normal(meanlog={m2 / 2:.3f}, sdlog={s2 / 2:.3f})")
    return TauPrior("lognormal", (m2 / 2.0, s2 / 2.0), label, -math.inf)


def parse_tau_prior(spec: str | Sequence[Any] | TauPrior) -> TauPrior:
    """Turn a prior specification into a :class:`TauPrior`.

    Parameters
    ----------
    spec : str, tuple or TauPrior
        ``"halfnormal:0.5"`` / ``("halfnormal", 0.5)``,
        ``"halfcauchy:0.5"`` / ``("halfcauchy", 0.5)``,
        ``"turner-mortality"`` (= ``"turner-mortality:pharma-placebo"``) or
        ``"turner-mortality:<comparison>"`` / ``("turner-mortality", comparison)``
        with comparison in :data:`TURNER_MORTALITY_TAU2`, ``"uniform"``
        (improper; as bayesmeta's ``tau.prior="uniform"``).

    Returns
    -------
    TauPrior
    """
    if isinstance(spec, TauPrior):
        return spec
    if isinstance(spec, str):
        name, _, arg = spec.partition(":")
        parts: list[Any] = [name] + ([arg] if arg else [])
    elif isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        parts = list(spec)
    else:
        raise DataError(f"tau_prior: cannot interpret {spec!r}")
    name = parts[0].strip().lower().replace("_", "-").replace("half-", "half")
    if name not in TAU_PRIORS:
        raise DataError(f"tau_prior: unknown prior {spec!r}; valid families: {', '.join(TAU_PRIORS)}")
    if name in ("halfnormal", "halfcauchy"):
        if len(parts) != 2:
            raise DataError(f"tau_prior: {parts[0]!r} needs exactly one scale, e.g. '{name}:0.5'")
        scale = _positive_scale(parts[1], parts[0])
        fam = "halfnormal" if "normal" in name else "halfcauchy"
        tail = -math.inf if fam == "halfnormal" else -2.0
        return TauPrior(fam, (scale,), f"{fam}(scale={scale:g})", tail)
    if name == "turner-mortality":
        if len(parts) > 2:
            raise DataError(f"tau_prior: {spec!r} takes at most one comparison type")
        return _turner_prior(str(parts[1]) if len(parts) == 2 else TURNER_COMPARISONS[0])
    if name == "uniform" and len(parts) == 1:
        return TauPrior("uniform", (), "uniform(min=0, max=Inf) (improper)", 0.0)
    raise DataError(f"tau_prior: unknown prior {spec!r}")


def parse_mu_prior(mu_prior: Sequence[Any] | None) -> tuple[float, float] | None:
    if mu_prior is None:
        return None
    if (not isinstance(mu_prior, (tuple, list)) or len(mu_prior) != 3
            or str(mu_prior[0]).lower() != "normal"):
        raise DataError(f"mu_prior: expected None or ('normal', mean, sd), got {mu_prior!r}")
    try:
        mean, sd = float(mu_prior[1]), float(mu_prior[2])
    except (TypeError, ValueError):
        raise DataError(f"mu_prior: mean/sd of {mu_prior!r} are not numbers") from None
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise DataError(f"mu_prior: need finite mean and sd > 0, got {mu_prior!r}")
    return mean, sd


# --------------------------------------------------------------------------
