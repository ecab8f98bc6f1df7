"""Group-sequential boundaries by recursive numerical integration.

Lan-DeMets alpha spending (O'Brien-Fleming-type and Pocock-type) with
symmetric two-sided or one-sided boundaries at arbitrary, unequally spaced
information fractions ``t_1 < ... < t_K``; exit (crossing) probabilities under
any drift; beta-spending futility bounds; and the inner-wedge futility
boundaries of the Copenhagen Trial Unit TSA program.

Conventions
-----------
Z scale and drift
    ``Z_k`` is the standardised statistic at look ``k`` with information
    ``I_k``; under drift ``theta`` it is N(theta * sqrt(I_k), 1) with
    independent increments, Cov(Z_j, Z_k) = sqrt(I_j / I_k) (j <= k).
    ``I`` may be on any scale (fractions of a maximum, patients, ...); only
    ratios matter under H0, and ``theta`` is the drift per unit sqrt(I).
Spending time
    The spending function is evaluated at the *information fraction* ``t``,
    clipped to [0, 1] (``alpha(t) = alpha`` for ``t >= 1``; Lan & DeMets 1983).
    By default the covariance uses ``I = t`` (ldbounds' ``t2 = t``).
Two-sided symmetric spending ("per_side", the default)
    A two-sided level-``alpha`` design spends ``f(t; alpha/2)`` on *each* side,
    where ``f(t; a) = 2 - 2 Phi(z_{1-a/2} / sqrt t)`` is the O'Brien-Fleming-type
    function.  Total spent is ``2 f(t; alpha/2)``.  This is the convention of
    ldbounds (Reboussin et al. 2000; ``alphas()`` with ``side = 2``), gsDesign
    (``test.type = 2`` with one-sided ``alpha``), RTSA (``esOF(alpha/side)``)
    and, per RTSA's translation of its Java code, the TSA program.  It
    reproduces the classic K = 5 table 4.8769, 3.3569, 2.6803, 2.2898, 2.0310.
    The alternative "total" reads ``alpha(t) = 2 - 2 Phi(z_{1-alpha/2}/sqrt t)``
    literally as the two-sided total and spends half of it per side.  The two
    coincide for the Pocock-type function, which is linear in ``alpha``.
Numerical integration
    Jennison & Turnbull (2000), section 19.2: 6r - 1 base grid points centred
    at the mean ``theta sqrt(I_k)``, trimmed to the continuation region, with
    interval midpoints and Simpson weights; the sub-density of ``Z_k`` on the
    continuation region is propagated look by look.  ``DEFAULT_GRID_R = 32``
    (J&T quote ~1e-6 accuracy already for r = 16; gsDesign and RTSA use 18).

References
----------
Armitage P, McPherson CK, Rowe BC (1969). Repeated significance tests on
    accumulating data. J R Stat Soc A 132:235-244.
Lan KKG, DeMets DL (1983). Discrete sequential boundaries for clinical trials.
    Biometrika 70:659-663.
Jennison C, Turnbull BW (2000). Group Sequential Methods with Applications to
    Clinical Trials, ch. 7 and ch. 19. Chapman & Hall/CRC.
Reboussin DM, DeMets DL, Kim K, Lan KKG (2000). Computations for group
    sequential boundaries using the Lan-DeMets spending function method.
    Control Clin Trials 21:190-207 (R package ldbounds).
Anderson K (2024). gsDesign: Group Sequential Design, R package.
Soerensen AL et al. RTSA: 'Trial Sequential Analysis' for error control and
    inference in sequential meta-analyses, R package (CRAN 0.2.2 and the
    development repository github.com/AnneLyng/RTSA, function
    ``getInnerWedge``, "old TSA functions (translated from java)").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
from scipy import optimize, special

from mscmeta.engine.arguments import check_choice, check_fractions, check_open_unit
from mscmeta.engine.validation import DataError

__all__ = [
    "DEFAULT_GRID_R",
    "obrien_fleming_spending",
    "pocock_spending",
    "SPENDING_FUNCTIONS",
    "per_side_cumulative_spending",
    "SpendingBoundaries",
    "spending_boundaries",
    "crossing_probabilities",
    "beta_spending_futility",
    "sequential_inflation_factor",
    "InnerWedge",
    "tsa_inner_wedge",
]

DEFAULT_GRID_R = 32
"""Jennison-Turnbull grid parameter r (6r - 1 base points, 12r - 3 with midpoints)."""

_TINY = 1e-320  # keeps log() finite for probabilities that underflow
_ROOT_XTOL = 1e-13

SpendingName = Literal["obrien_fleming", "pocock"]
TwoSidedConvention = Literal["per_side", "total"]


# --------------------------------------------------------------------------- spending


def obrien_fleming_spending(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming-type spending ``2 - 2 Phi(z_{1-alpha/2} / sqrt(t))``.

    Parameters
    ----------
    t : array_like
        Information fractions; clipped to [0, 1] (``f(0) = 0``, ``f(t >= 1) = alpha``).
    alpha : float
        Level spent by this function at ``t = 1``.

    Returns
    -------
    numpy.ndarray
        Cumulative error spent; computed as ``2 Phi(-c / sqrt t)`` to avoid cancellation.

    References
    ----------
    Lan & DeMets (1983), Biometrika 70:659.
    """
    times = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    critical = special.ndtri(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore"):
        spent = 2.0 * special.ndtr(-critical / np.sqrt(times))
    return np.where(times > 0.0, spent, 0.0)


def pocock_spending(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """Lan-DeMets Pocock-type spending ``alpha * log(1 + (e - 1) t)``, t clipped to [0, 1].

    References
    ----------
    Lan & DeMets (1983), Biometrika 70:659; Reboussin et al. (2000), ``iuse = 2``.
    """
    times = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    return alpha * np.log1p((np.e - 1.0) * times)


SPENDING_FUNCTIONS: dict[str, Callable[[np.ndarray | float, float], np.ndarray]] = {
    "obrien_fleming": obrien_fleming_spending,
    "pocock": pocock_spending,
}


def per_side_cumulative_spending(
    t: np.ndarray | float,
    alpha: float,
    *,
    sides: int = 2,
    spending: SpendingName = "obrien_fleming",
    two_sided_convention: TwoSidedConvention = "per_side",
) -> np.ndarray:
    """Cumulative error spent on *one* side at fractions ``t``.

    ``sides = 1``: ``f(t; alpha)``.  ``sides = 2``: ``f(t; alpha/2)`` ("per_side",
    ldbounds/gsDesign/RTSA/TSA) or ``f(t; alpha)/2`` ("total", Lan-DeMets 1983
    read as a two-sided total).  See the module docstring.
    """
    function = SPENDING_FUNCTIONS[check_choice("spending", spending, SPENDING_FUNCTIONS)]
    check_choice("sides", sides, (1, 2))
    check_choice("two_sided_convention", two_sided_convention, ("per_side", "total"))
    if sides == 1:
        return function(t, alpha)
    if two_sided_convention == "per_side":
        return function(t, alpha / 2.0)
    return function(t, alpha) / 2.0


# --------------------------------------------------------------------------- recursion


class _State(NamedTuple):
    """Sub-density of Z at the last look on its continuation region (J&T 19.2)."""

    z: np.ndarray  # grid points
    weighted_density: np.ndarray  # Simpson weight * sub-density at each point
    information: float


def _base_grid(mean: float, r: int) -> np.ndarray:
    """J&T (19.2): 6r - 1 points, dense within 3 SD of the mean, log-spaced tails."""
    i = np.arange(1, 6 * r, dtype=float)
    centre = -3.0 + 3.0 * (i - r) / (2.0 * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = -3.0 - 4.0 * np.log(r / i)
        right = 3.0 + 4.0 * np.log(r / (6.0 * r - i))
    offsets = np.where(i < r, left, np.where(i > 5 * r, right, centre))
    return mean + offsets


def _simpson_grid(mean: float, lower: float, upper: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid trimmed to (lower, upper) with midpoints and Simpson weights; empty if no mass."""
    base = _base_grid(mean, r)
    low, high = max(lower, base[0]), min(upper, base[-1])
    if not low < high:
        return np.empty(0), np.empty(0)
    nodes = np.concatenate(([low], base[(base > low) & (base < high)], [high]))
    points = np.empty(2 * nodes.size - 1)
    points[0::2] = nodes
    points[1::2] = 0.5 * (nodes[:-1] + nodes[1:])
    widths = np.diff(nodes)
    weights = np.zeros(points.size)
    weights[1::2] = 4.0 * widths / 6.0
    weights[0:-1:2] += widths / 6.0
    weights[2::2] += widths / 6.0
    return points, weights


def _conditional_arguments(state: _State, information: float, drift: float) -> tuple[np.ndarray, float]:
    """Mean shift of the increment and its SD for the transition to ``information``."""
    increment = information - state.information
    if increment <= 0:
        raise DataError(f"information must be strictly increasing, got {state.information} then {information}")
    shifted = state.z * np.sqrt(state.information) + drift * increment
    return shifted, float(np.sqrt(increment))


def _exit_probabilities(
    state: _State | None, information: float, drift: float, lower: float, upper: float
) -> tuple[float, float]:
    """P(continue so far and Z_k >= upper), P(continue so far and Z_k <= lower)."""
    root_info = np.sqrt(information)
    if state is None:
        mean = drift * root_info
        return float(special.ndtr(mean - upper)), float(special.ndtr(lower - mean))
    shifted, sd = _conditional_arguments(state, information, drift)
    up = special.ndtr((shifted - upper * root_info) / sd)
    low = special.ndtr((lower * root_info - shifted) / sd)
    return float(state.weighted_density @ up), float(state.weighted_density @ low)


def _advance(
    state: _State | None, information: float, drift: float, lower: float, upper: float, r: int
) -> _State:
    """Sub-density of Z_k on (lower, upper) given continuation at all earlier looks."""
    root_info = np.sqrt(information)
    points, weights = _simpson_grid(drift * root_info, lower, upper, r)
    if state is None:
        density = np.exp(-0.5 * (points - drift * root_info) ** 2) / np.sqrt(2.0 * np.pi)
    else:
        shifted, sd = _conditional_arguments(state, information, drift)
        standardised = (points[:, None] * root_info - shifted[None, :]) / sd
        kernel = np.exp(-0.5 * standardised**2) * (root_info / (sd * np.sqrt(2.0 * np.pi)))
        density = kernel @ state.weighted_density
    return _State(points, weights * density, float(information))


def _solve_monotone(function: Callable[[float], float], start: float, step: float, *, increasing: bool) -> float:
    """Root of a monotone function: walk from ``start`` towards the sign change, then Brent.

    ``step`` (> 0) is the bracketing stride; the direction follows from the sign of
    ``function(start)`` and the stated monotonicity, so a start on either side works.
    """
    value = function(start)
    if value == 0.0:
        return float(start)
    direction = -1.0 if (value > 0.0) == increasing else 1.0
    near, far = start, start + direction * step
    for _ in range(400):
        if np.sign(function(far)) != np.sign(value):
            break
        near, far = far, far + direction * step
    else:  # pragma: no cover - the probability bounds used for ``start`` make this unreachable
        raise DataError("boundary search failed to bracket a root")
    low, high = sorted((near, far))
    return float(optimize.brentq(function, low, high, xtol=_ROOT_XTOL, rtol=4 * np.finfo(float).eps))


def _upper_for_spend(state: _State | None, information: float, target: float) -> float:
    """Upper bound b with P(continue, Z_k >= b | H0) = target (inf when nothing is spent)."""
    if target <= 0.0:
        return float("inf")
    single_look = float(-special.ndtri(target))  # accurate isf for tiny targets
    if state is None:
        return single_look

    def excess(bound: float) -> float:
        crossing = _exit_probabilities(state, information, 0.0, -np.inf, bound)[0]
        return float(np.log(crossing + _TINY) - np.log(target))

    # P(continue, Z >= b) <= P(Z >= b): the root lies at or below the single-look bound.
    return _solve_monotone(excess, single_look, 0.5, increasing=False)


# --------------------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class SpendingBoundaries:
    """Boundaries of a Lan-DeMets spending design and their exit probabilities under H0.

    Attributes
    ----------
    information_fractions : numpy.ndarray
        Spending times ``t_k`` (spending evaluated at ``min(t_k, 1)``).
    information : numpy.ndarray
        Covariance scale ``I_k`` (equal to ``t_k`` unless given).
    upper, lower : numpy.ndarray
        Z-scale boundaries (``lower = -inf`` for one-sided designs).
    cumulative_alpha_spent : numpy.ndarray
        Error spent by the spending function up to each look, both sides summed.
    exit_upper, exit_lower : numpy.ndarray
        Computed probabilities under H0 of first crossing at each look.
    """

    information_fractions: np.ndarray
    information: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    cumulative_alpha_spent: np.ndarray
    exit_upper: np.ndarray
    exit_lower: np.ndarray
    alpha: float
    sides: int
    spending: str
    two_sided_convention: str
    grid_r: int = field(default=DEFAULT_GRID_R)

    @property
    def total_exit_probability(self) -> float:
        """Sum of all computed exit probabilities under H0 (should equal the alpha spent)."""
        return float(self.exit_upper.sum() + self.exit_lower.sum())


def _bounds_from_increments(
    information: np.ndarray, increments: np.ndarray, sides: int, r: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve look by look: upper crosses with the per-side increment; lower mirrors it."""
    upper, lower = np.empty(information.size), np.empty(information.size)
    exit_up, exit_low = np.empty(information.size), np.empty(information.size)
    state: _State | None = None
    for k, (info, spend) in enumerate(zip(information, increments, strict=True)):
        upper[k] = _upper_for_spend(state, info, spend)
        lower[k] = -upper[k] if sides == 2 else -np.inf
        exit_up[k], exit_low[k] = _exit_probabilities(state, info, 0.0, lower[k], upper[k])
        if k + 1 < information.size:  # the density after the last look is never needed
            state = _advance(state, info, 0.0, lower[k], upper[k], r)
    return upper, lower, exit_up, exit_low


def _readonly(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)


def spending_boundaries(
    information_fractions: np.ndarray | list[float],
    alpha: float = 0.05,
    *,
    sides: int = 2,
    spending: SpendingName = "obrien_fleming",
    two_sided_convention: TwoSidedConvention = "per_side",
    information: np.ndarray | list[float] | None = None,
    grid_r: int = DEFAULT_GRID_R,
) -> SpendingBoundaries:
    """Lan-DeMets boundaries at arbitrary looks by recursive numerical integration.

    Parameters
    ----------
    information_fractions : array_like
        Strictly increasing, positive spending times; values above 1 spend nothing more.
    alpha : float
        Overall type I error (two-sided total when ``sides = 2``).
    sides : {1, 2}
        One-sided (upper only) or symmetric two-sided boundaries.
    spending : {"obrien_fleming", "pocock"}
        Lan-DeMets spending function.
    two_sided_convention : {"per_side", "total"}
        How a two-sided ``alpha`` is spent; see the module docstring.
    information : array_like, optional
        Covariance scale (ldbounds' ``t2``); defaults to ``information_fractions``.
    grid_r : int
        Jennison-Turnbull grid parameter.

    Returns
    -------
    SpendingBoundaries

    References
    ----------
    Reboussin et al. (2000); Jennison & Turnbull (2000), ch. 19.
    """
    fractions = check_fractions("information_fractions", information_fractions)
    alpha = check_open_unit("alpha", alpha)
    covariance = fractions if information is None else check_fractions("information", information)
    if covariance.size != fractions.size:
        raise DataError(f"information must have {fractions.size} values, got {covariance.size}")
    cumulative = per_side_cumulative_spending(
        fractions, alpha, sides=sides, spending=spending, two_sided_convention=two_sided_convention
    )
    increments = np.diff(np.concatenate(([0.0], cumulative)))
    upper, lower, exit_up, exit_low = _bounds_from_increments(covariance, increments, sides, int(grid_r))
    spent = sides * cumulative
    _readonly(fractions, covariance, upper, lower, spent, exit_up, exit_low)
    return SpendingBoundaries(
        fractions, covariance, upper, lower, spent, exit_up, exit_low,
        alpha, sides, spending, two_sided_convention, int(grid_r),
    )


def _boundary_array(name: str, values: np.ndarray | list[float], size: int) -> np.ndarray:
    """Boundary values: infinities allowed (no boundary), NaN rejected."""
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1 or array.size != size:
        raise DataError(f"{name} must have {size} values, got {array.tolist()}")
    if np.isnan(array).any():
        raise DataError(f"{name} must not contain NaN (use inf for 'no boundary'), got {array.tolist()}")
    return array


def crossing_probabilities(
    information: np.ndarray | list[float],
    upper: np.ndarray | list[float],
    lower: np.ndarray | list[float] | None = None,
    drift: float = 0.0,
    *,
    grid_r: int = DEFAULT_GRID_R,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of first crossing each boundary at each look, for given boundaries.

    Parameters
    ----------
    information : array_like
        Strictly increasing information ``I_k`` (covariance scale).
    upper, lower : array_like
        Z-scale boundaries; ``lower=None`` means ``-inf`` (one-sided).  ``inf`` allowed.
    drift : float
        ``theta``: ``E[Z_k] = theta * sqrt(I_k)``; 0 gives exit probabilities under H0.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Upper and lower first-crossing probabilities per look.

    References
    ----------
    Armitage, McPherson & Rowe (1969); Jennison & Turnbull (2000), section 19.2.
    """
    info = check_fractions("information", information)
    upper_z = _boundary_array("upper", upper, info.size)
    lower_z = np.full(info.size, -np.inf) if lower is None else _boundary_array("lower", lower, info.size)
    if (lower_z > upper_z).any():
        raise DataError(f"lower must not exceed upper, got lower={lower_z.tolist()} upper={upper_z.tolist()}")
    exit_up, exit_low = np.empty(info.size), np.empty(info.size)
    state: _State | None = None
    for k in range(info.size):
        exit_up[k], exit_low[k] = _exit_probabilities(state, info[k], float(drift), lower_z[k], upper_z[k])
        if k + 1 < info.size:
            state = _advance(state, info[k], float(drift), lower_z[k], upper_z[k], int(grid_r))
    return exit_up, exit_low


# --------------------------------------------------------------------------- futility


def _lower_for_spend(state: _State | None, information: float, drift: float, upper: float, target: float) -> float:
    """Lower bound a <= upper with P(continue, Z_k <= a | drift) = target (-inf if none)."""
    if target <= 0.0:
        return -float("inf")
    mean = drift * np.sqrt(information)
    single_look = mean + float(special.ndtri(target))
    if state is None:
        return min(single_look, upper)

    def excess(bound: float) -> float:
        crossing = _exit_probabilities(state, information, drift, bound, np.inf)[1]
        return float(np.log(crossing + _TINY) - np.log(target))

    # P(continue, Z <= a) <= P(Z <= a): the root lies at or above the single-look bound.
    if excess(upper) <= 0.0:  # not enough mass left below the upper bound: the wedge closes
        return float(upper)
    return min(_solve_monotone(excess, single_look, 0.5, increasing=True), float(upper))


def beta_spending_futility(
    information_fractions: np.ndarray | list[float],
    upper: np.ndarray | list[float],
    beta: float,
    drift: float,
    *,
    spending: SpendingName = "obrien_fleming",
    information: np.ndarray | list[float] | None = None,
    close_at_final: bool = True,
    grid_r: int = DEFAULT_GRID_R,
) -> np.ndarray:
    """Beta-spending lower (futility) bounds under a drift, given efficacy bounds.

    At look ``k`` the lower bound ``a_k`` solves
    ``P(a_j < Z_j < b_j, j < k; Z_k <= a_k | theta) = f(t_k; beta) - f(t_{k-1}; beta)``
    with the efficacy bounds ``b_j`` computed under H0 without the futility bounds
    (non-binding; gsDesign ``test.type = 4``, RTSA ``futility = "non-binding"``).
    ``a_k`` is capped at ``b_k``; with ``close_at_final`` the last lower bound
    equals the last upper bound, as in gsDesign.

    Parameters
    ----------
    information_fractions : array_like
        Spending times for the beta-spending function.
    upper : array_like
        Efficacy (upper) Z bounds at the same looks.
    beta : float
        Type II error to spend.
    drift : float
        ``theta`` under the alternative, ``E[Z_k] = theta * sqrt(I_k)``.

    Returns
    -------
    numpy.ndarray
        Lower Z bounds (``-inf`` where nothing is spent).

    References
    ----------
    Jennison & Turnbull (2000), section 7.2; gsDesign vignette "A gentle introduction
    to group sequential design" (non-binding futility example).
    """
    fractions = check_fractions("information_fractions", information_fractions)
    info = fractions if information is None else check_fractions("information", information)
    upper_z = _boundary_array("upper", upper, fractions.size)
    beta = check_open_unit("beta", beta)
    cumulative = SPENDING_FUNCTIONS[check_choice("spending", spending, SPENDING_FUNCTIONS)](fractions, beta)
    increments = np.diff(np.concatenate(([0.0], cumulative)))
    lower = np.empty(fractions.size)
    state: _State | None = None
    for k in range(fractions.size):
        lower[k] = _lower_for_spend(state, info[k], float(drift), upper_z[k], increments[k])
        if k + 1 < fractions.size:
            state = _advance(state, info[k], float(drift), lower[k], upper_z[k], int(grid_r))
    if close_at_final:
        lower[-1] = upper_z[-1]
    return lower


def sequential_inflation_factor(boundaries: SpendingBoundaries, beta: float) -> float:
    """Factor R by which a fixed-design information must grow to keep power ``1 - beta``.

    The fixed design has drift ``z_{1-alpha/sides} + z_{1-beta}`` at information 1;
    the sequential design looks at information ``R * t_k`` with the same boundaries
    (they depend on ratios only).  Power counts upper crossings (benefit side).
    RTSA calls R the "root" (``SMA_RIS = R * RIS``); gsDesign's ``n.I[K] / n.fix``.

    References
    ----------
    Jennison & Turnbull (2000), section 7.2.2; gsDesign ``gsDesign()`` inflation.
    """
    beta = check_open_unit("beta", beta)
    fixed_drift = float(special.ndtri(1.0 - boundaries.alpha / boundaries.sides) + special.ndtri(1.0 - beta))

    def power_gap(factor: float) -> float:
        exits, _ = crossing_probabilities(
            boundaries.information * factor, boundaries.upper, boundaries.lower, fixed_drift,
            grid_r=boundaries.grid_r,
        )
        return float(exits.sum()) - (1.0 - beta)

    return _solve_monotone(power_gap, 1.0, 0.25, increasing=True)


@dataclass(frozen=True)
class InnerWedge:
    """TSA-program inner wedge (futility region ``-half_width < Z < half_width``).

    Attributes
    ----------
    information_fractions : numpy.ndarray
        Looks, ending with the final look at ``t = 1``.
    half_width : numpy.ndarray
        ``f_k = theta_w sqrt(t_k) - c_k``; NaN where ``f_k <= 0`` (no futility bound).
    beta_boundaries : numpy.ndarray
        ``c_k``: symmetric bounds spending ``f(t; beta)`` per side under H0.
    drift : float
        ``theta_w = b_final + c_final``: the wedge closes on the monitoring boundary at t = 1.
    """

    information_fractions: np.ndarray
    half_width: np.ndarray
    beta_boundaries: np.ndarray
    drift: float


def tsa_inner_wedge(
    information_fractions: np.ndarray | list[float],
    final_upper: float,
    beta: float,
    *,
    spending: SpendingName = "obrien_fleming",
    grid_r: int = DEFAULT_GRID_R,
) -> InnerWedge:
    """Inner-wedge futility boundaries as computed by the TSA program.

    Follows RTSA's translation of the TSA Java code (``getInnerWedge``, RTSA
    development repository): beta is spent with ``f(t; beta)`` on *each* side of a
    symmetric design under H0, giving bounds ``c_k``; the wedge is the centred
    process shifted by the drift ``theta_w = b_final + c_final`` that makes it close
    on the final monitoring boundary: ``f_k = theta_w sqrt(t_k) - c_k``.  This is an
    approximation to exact beta spending (it ignores the efficacy boundaries when
    integrating); see ``beta_spending_futility`` for the exact non-binding version.

    Parameters
    ----------
    information_fractions : array_like
        Analysed looks in (0, 1]; a final look at ``t = 1`` is appended if absent.
    final_upper : float
        Monitoring (alpha-spending) boundary at ``t = 1``.
    beta : float
        Type II error, ``1 - power``.

    Returns
    -------
    InnerWedge

    References
    ----------
    Thorlund K et al. (2011/2017) User manual for Trial Sequential Analysis, CTU;
    RTSA development repository, ``R/RTSA_helperfunctions.R`` (``getInnerWedge``).
    """
    fractions = check_fractions("information_fractions", information_fractions)
    if fractions[-1] > 1.0:
        raise DataError(f"information_fractions must be <= 1 for the inner wedge, got {fractions.tolist()}")
    if fractions[-1] < 1.0:
        fractions = np.append(fractions, 1.0)
    beta = check_open_unit("beta", beta)
    cumulative = SPENDING_FUNCTIONS[check_choice("spending", spending, SPENDING_FUNCTIONS)](fractions, beta)
    increments = np.diff(np.concatenate(([0.0], cumulative)))
    centred, _, _, _ = _bounds_from_increments(fractions, increments, 2, int(grid_r))
    drift = float(final_upper) + float(centred[-1])
    half_width = drift * np.sqrt(fractions) - centred
    half_width = np.where(half_width > 0.0, half_width, np.nan)
    _readonly(fractions, half_width, centred)
    return InnerWedge(fractions, half_width, centred, drift)
