"""Trial sequential analysis (TSA) of a cumulative binary-outcome meta-analysis.

Implements the Copenhagen Trial Unit TSA: the required information size (RIS)
for a dichotomous outcome with heterogeneity adjustment by diversity (D^2) or
inconsistency (I^2); the cumulative Z-curve against Lan-DeMets O'Brien-Fleming
monitoring boundaries (benefit and harm) and the inner-wedge futility
boundaries, at information fractions ``cumulative patients / RIS``; a verdict;
and the TSA-adjusted (alpha-spending adjusted) confidence interval.

Two entry points share one result type:

``trial_sequential_analysis(z, cumulative_n, ris, ...)``
    cumulative Z values and cumulative patients (any pooling done elsewhere);
``trial_sequential_analysis_from_counts(data, ...)``
    a table of per-trial 2x2 counts in accrual order, pooled cumulatively by the
    engine's :func:`~mscmeta.engine.binary.meta_binary` with any
    :class:`~mscmeta.engine.options.BinaryOptions` (default: RevMan's Mantel-Haenszel
    fixed-effect odds ratio, 0.5 added to every cell of a zero-cell trial).

Conventions (``TSAConventions``; sources in brackets)
-----------------------------------------------------
* RIS = 4 (z_{1-alpha/sides} + z_{1-beta})^2 P(1-P) / delta^2, P = (P_C + P_I)/2,
  delta = P_C - P_I, P_I = P_C (1 - RRR); patients = ceil(ceil(RIS) / (1 - H)) with
  H = D^2 or I^2 [TSA manual; Wetterslev 2008, 2009; RTSA ``ris()`` rounding].
* Two-sided symmetric boundaries spending f(t; alpha/2) per side with the
  O'Brien-Fleming-type f(t; a) = 2 - 2 Phi(z_{1-a/2}/sqrt t) ["per_side":
  ldbounds, gsDesign, RTSA, TSA; see ``group_sequential``].
* Looks at information fraction <= 5 % are not analysed [RTSA development
  version, ``inf_first_analysis = 0.05``, added as an "original TSA feature"].
* A look adding <= 1 % of the RIS since the last analysed look is not analysed
  ["Interim analyses will not be made with less than 1% increase in
  information", RTSA; TSA].
* The first look at or beyond the RIS is the final analysis, analysed at
  information fraction 1 (all alpha spent); later looks are not analysed
  [RTSA ``timing <- c(timing[timing < 1], 1)``].
* A hypothetical final look at t = 1 is always added when the RIS has not been
  reached; it fixes the inner wedge (which closes on the monitoring boundary at
  t = 1) and is reported as ``boundary_at_ris`` [RTSA].
* Inner wedge: TSA-program beta spending, see ``group_sequential.tsa_inner_wedge``.
* Verdict: the first analysed look whose Z crosses the benefit or harm boundary,
  or enters the inner wedge before the final analysis, decides; otherwise "RIS
  reached without crossing" if the final analysis was reached, else
  "inconclusive" with the information fraction reached.
* Trials without events in either arm carry no information on a ratio: by default
  they are dropped from the information axis and from the control proportion
  [RTSA ``metaPrepare``]; ``exclude_double_zero=False`` keeps their patients.
* D^2 from the inverse-variance fixed and DerSimonian-Laird random-effects variances
  of the study log odds ratios [Wetterslev 2009; RTSA uses the HKSJ variance].
* TSA-adjusted CI: ``estimate +- b * SE`` (exponentiated for ratio measures)
  with ``b`` the monitoring boundary of the most recent analysed look (the
  single-look boundary at the current fraction if none) [TSA manual; RTSA
  ``inference()``].

References
----------
Wetterslev J, Thorlund K, Brok J, Gluud C (2008). Trial sequential analysis may
    establish when firm evidence is reached in cumulative meta-analysis.
    J Clin Epidemiol 61:64-75.
Wetterslev J, Thorlund K, Brok J, Gluud C (2009). Estimating required information
    size by quantifying diversity in random-effects model meta-analyses.
    BMC Med Res Methodol 9:86.
Thorlund K, Engstrom J, Wetterslev J, Brok J, Imberger G, Gluud C (2011, rev. 2017).
    User manual for Trial Sequential Analysis (TSA). Copenhagen Trial Unit.
Wetterslev J, Jakobsen JC, Gluud C (2017). Trial Sequential Analysis in systematic
    reviews with meta-analysis. BMC Med Res Methodol 17:39.
Soerensen AL et al. RTSA, R package (CRAN 0.2.2; github.com/AnneLyng/RTSA).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from mscmeta.engine.arguments import as_finite_1d, check_choice, check_nonnegative_fraction, check_open_unit
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.validation import BINARY_COLUMNS, DataError, NotEstimableError, check_binary
from mscmeta.engine.group_sequential import (
    DEFAULT_GRID_R,
    per_side_cumulative_spending,
    spending_boundaries,
    tsa_inner_wedge,
)

__all__ = [
    "RequiredInformationSize",
    "required_information_size",
    "TSAConventions",
    "Verdict",
    "BoundaryCurve",
    "TSAResult",
    "trial_sequential_analysis",
    "trial_sequential_analysis_from_counts",
    "cumulative_z",
    "diversity",
    "diversity_of_counts",
    "DEFAULT_TSA_OPTIONS",
]

BenefitSide = Literal["lower", "upper"]


# --------------------------------------------------------------------------- RIS


@dataclass(frozen=True)
class RequiredInformationSize:
    """Required information size (number of patients) for a dichotomous outcome.

    Attributes
    ----------
    unadjusted_exact : float
        ``4 (z_{1-alpha/sides} + z_{1-beta})^2 P(1-P) / delta^2``.
    unadjusted : int
        ``ceil(unadjusted_exact)``.
    adjustment : float
        Heterogeneity fraction H used (D^2 or I^2; 0 when none).
    adjustment_measure : str
        "D2", "I2" or "none".
    patients : int
        ``ceil(unadjusted / (1 - H))``: the RIS used for information fractions.
    """

    control_proportion: float
    intervention_proportion: float
    relative_risk_reduction: float
    alpha: float
    power: float
    sides: int
    adjustment: float
    adjustment_measure: str
    unadjusted_exact: float
    unadjusted: int
    patients: int

    def __int__(self) -> int:
        return self.patients


def _ceil(value: float) -> int:
    """Ceiling that ignores floating-point noise below 1e-9 (12080 / 0.8 -> 15100)."""
    return math.ceil(value - 1e-9)


def required_information_size(
    control_proportion: float,
    relative_risk_reduction: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    sides: int = 2,
    diversity: float | None = None,
    inconsistency: float | None = None,
) -> RequiredInformationSize:
    """Required information size as defined in the TSA manual.

    Parameters
    ----------
    control_proportion : float
        Anticipated event proportion in the control group, ``P_C``.
    relative_risk_reduction : float
        Anticipated RRR; ``P_I = P_C (1 - RRR)``.
    alpha : float
        Type I error (two-sided when ``sides = 2``).
    power : float
        ``1 - beta``.
    sides : {1, 2}
        One- or two-sided test.
    diversity, inconsistency : float, optional
        D^2 or I^2 in [0, 1) for the heterogeneity adjustment ``1 / (1 - H)``;
        give at most one.

    Returns
    -------
    RequiredInformationSize

    References
    ----------
    Wetterslev et al. (2008) J Clin Epidemiol 61:64; Wetterslev et al. (2009) BMC
    Med Res Methodol 9:86; TSA manual (Thorlund et al. 2011/2017); RTSA ``ris()``.
    """
    p_control = check_open_unit("control_proportion", control_proportion)
    rrr = check_open_unit("relative_risk_reduction", relative_risk_reduction)
    alpha, power = check_open_unit("alpha", alpha), check_open_unit("power", power)
    check_choice("sides", sides, (1, 2))
    if diversity is not None and inconsistency is not None:
        raise DataError(f"give diversity or inconsistency, not both, got {diversity!r} and {inconsistency!r}")
    measure = "D2" if diversity is not None else "I2" if inconsistency is not None else "none"
    name, value = ("diversity", diversity) if measure == "D2" else ("inconsistency", inconsistency)
    adjustment = 0.0 if measure == "none" else check_nonnegative_fraction(name, value)
    p_intervention = p_control * (1.0 - rrr)
    p_mean = 0.5 * (p_control + p_intervention)
    z_sum = special.ndtri(1.0 - alpha / sides) + special.ndtri(power)
    exact = float(4.0 * z_sum**2 * p_mean * (1.0 - p_mean) / (p_control - p_intervention) ** 2)
    unadjusted = _ceil(exact)
    return RequiredInformationSize(
        p_control, p_intervention, rrr, alpha, power, sides, adjustment, measure,
        exact, unadjusted, _ceil(unadjusted / (1.0 - adjustment)),
    )


# --------------------------------------------------------------------------- conventions


@dataclass(frozen=True)
class TSAConventions:
    """Named conventions of the TSA program (see the module docstring for sources).

    Attributes
    ----------
    spending : {"obrien_fleming", "pocock"}
        Alpha- and beta-spending function.
    two_sided_convention : {"per_side", "total"}
        ``f(t; alpha/2)`` per side (TSA) or ``f(t; alpha)/2`` per side.
    min_first_fraction : float
        Looks at information fraction <= this are not analysed (TSA: 0.05).
    min_increment : float
        Looks adding <= this fraction of the RIS since the last analysed look are
        not analysed (TSA: 0.01).
    curve_points : int
        Grid size of the dense boundary curve.
    grid_r : int
        Jennison-Turnbull integration grid parameter.
    """

    spending: str = "obrien_fleming"
    two_sided_convention: str = "per_side"
    min_first_fraction: float = 0.05
    min_increment: float = 0.01
    curve_points: int = 201
    grid_r: int = DEFAULT_GRID_R

    def __post_init__(self) -> None:
        check_choice("spending", self.spending, ("obrien_fleming", "pocock"))
        check_choice("two_sided_convention", self.two_sided_convention, ("per_side", "total"))
        check_nonnegative_fraction("min_first_fraction", self.min_first_fraction)
        check_nonnegative_fraction("min_increment", self.min_increment)
        if int(self.curve_points) < 2:
            raise DataError(f"curve_points must be >= 2, got {self.curve_points!r}")


class Verdict(str, Enum):
    """Outcome of the trial sequential analysis."""

    BENEFIT = "benefit boundary crossed"
    HARM = "harm boundary crossed"
    FUTILITY = "futility boundary crossed"
    RIS_REACHED = "RIS reached without crossing"
    INCONCLUSIVE = "inconclusive"


# --------------------------------------------------------------------------- looks


@dataclass(frozen=True)
class _Looks:
    """Which looks are analysed, and at which (clipped) information fraction."""

    analysed: np.ndarray  # bool per look
    analysis_fraction: np.ndarray  # min(t, 1) where analysed, NaN otherwise
    final_index: int | None  # look analysed as the final analysis (t >= 1)


def _select_looks(fractions: np.ndarray, conventions: TSAConventions) -> _Looks:
    """Apply the TSA look conventions: 5 % first look, 1 % increments, final at RIS."""
    analysed = np.zeros(fractions.size, dtype=bool)
    previous, final_index = 0.0, None
    for k, t in enumerate(fractions):
        if final_index is not None or t <= conventions.min_first_fraction:
            continue
        if t >= 1.0:
            analysed[k], final_index = True, k
        elif t - previous > conventions.min_increment:
            analysed[k], previous = True, t
    clipped = np.where(analysed, np.minimum(fractions, 1.0), np.nan)
    return _Looks(analysed, clipped, final_index)


# --------------------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class _Design:
    """Boundaries at the analysed looks plus the final look at t = 1."""

    fractions: np.ndarray  # analysed fractions, ending at 1
    upper: np.ndarray  # monitoring boundary (Z >= upper or Z <= -upper crosses)
    alpha_spent: np.ndarray  # cumulative, both sides
    wedge: np.ndarray  # inner-wedge half width (NaN: none)
    beta_bounds: np.ndarray  # c_k of the wedge (NaN without futility)
    wedge_drift: float | None


def _design(looks: _Looks, alpha: float, beta: float, futility: bool, conventions: TSAConventions) -> _Design:
    """Monitoring and inner-wedge boundaries for the analysed looks (final look at t = 1)."""
    fractions = looks.analysis_fraction[looks.analysed]
    if fractions.size == 0 or fractions[-1] < 1.0:
        fractions = np.append(fractions, 1.0)
    monitoring = spending_boundaries(
        fractions, alpha, sides=2, spending=conventions.spending,
        two_sided_convention=conventions.two_sided_convention, grid_r=conventions.grid_r,
    )
    nan = np.full(fractions.size, np.nan)
    if not futility:
        return _Design(fractions, monitoring.upper, monitoring.cumulative_alpha_spent, nan, nan, None)
    wedge = tsa_inner_wedge(fractions, float(monitoring.upper[-1]), beta,
                            spending=conventions.spending, grid_r=conventions.grid_r)
    return _Design(fractions, monitoring.upper, monitoring.cumulative_alpha_spent,
                   wedge.half_width, wedge.beta_boundaries, wedge.drift)


def _per_look(values: np.ndarray, looks: _Looks) -> np.ndarray:
    """Spread values at analysed looks back onto all looks (NaN where not analysed)."""
    out = np.full(looks.analysed.size, np.nan)
    out[looks.analysed] = values[: int(looks.analysed.sum())]
    return out


def _alpha_spent_per_look(design: _Design, looks: _Looks) -> np.ndarray:
    """Cumulative alpha spent as of each look (carried forward over non-analysed looks)."""
    spent = _per_look(design.alpha_spent, looks)
    carried, last = np.empty(spent.size), 0.0
    for k, value in enumerate(spent):
        last = value if np.isfinite(value) else last
        carried[k] = last
    return carried


# --------------------------------------------------------------------------- dense curve


@dataclass(frozen=True)
class BoundaryCurve:
    """Dense boundary curve for plotting.

    Exact at the analysed looks and at t = 1; before the first analysed look the
    exact single-look boundary ``Phi^{-1}(1 - spent(t))``; between analysed looks
    the B-value ``b sqrt(t)`` is interpolated linearly in t (display only); beyond
    t = 1 the final boundary is carried flat and the wedge is undefined.
    """

    information_fraction: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    futility_upper: np.ndarray
    futility_lower: np.ndarray


def _interpolate_boundary(grid: np.ndarray, knots: np.ndarray, values: np.ndarray,
                          first_segment: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Single-look formula before the first knot, B-value interpolation after, flat past 1."""
    b_values = np.interp(np.minimum(grid, 1.0), knots, values * np.sqrt(knots))
    curve = b_values / np.sqrt(np.minimum(grid, 1.0))
    before = grid < knots[0]
    curve[before] = first_segment(grid[before])
    return curve


def _curve(design: _Design, alpha: float, beta: float, last_fraction: float,
           conventions: TSAConventions) -> BoundaryCurve:
    """Boundary curve on a grid from the first-look threshold to max(1, last fraction)."""
    start = max(conventions.min_first_fraction, 0.01)
    grid = np.unique(np.concatenate((
        np.linspace(start, max(1.0, last_fraction), int(conventions.curve_points)), design.fractions)))

    def spend(t: np.ndarray, level: float, sides: int) -> np.ndarray:
        return per_side_cumulative_spending(t, level, sides=sides, spending=conventions.spending,
                                            two_sided_convention=conventions.two_sided_convention)

    upper = _interpolate_boundary(grid, design.fractions, design.upper,
                                  lambda t: -special.ndtri(spend(t, alpha, 2)))
    wedge = np.full(grid.size, np.nan)
    if design.wedge_drift is not None:
        centred = _interpolate_boundary(grid, design.fractions, design.beta_bounds,
                                        lambda t: -special.ndtri(spend(t, beta, 1)))
        wedge = design.wedge_drift * np.sqrt(grid) - centred
        wedge[(wedge <= 0.0) | (grid > 1.0)] = np.nan
    return BoundaryCurve(grid, upper, -upper, wedge, -wedge)


# --------------------------------------------------------------------------- verdict


def _crossing(z: float, bound: float, benefit_side: str) -> Verdict | None:
    """Benefit/harm crossing of the symmetric monitoring boundary, if any."""
    if z >= bound:
        return Verdict.BENEFIT if benefit_side == "upper" else Verdict.HARM
    if z <= -bound:
        return Verdict.BENEFIT if benefit_side == "lower" else Verdict.HARM
    return None


def _verdict(z: np.ndarray, upper: np.ndarray, wedge: np.ndarray, looks: _Looks,
             benefit_side: str) -> tuple[Verdict, int | None]:
    """First decisive analysed look, in order (see module docstring)."""
    for k in np.flatnonzero(looks.analysed):
        if not np.isfinite(z[k]):
            continue
        crossed = _crossing(float(z[k]), float(upper[k]), benefit_side)
        if crossed is not None:
            return crossed, int(k)
        if k == looks.final_index:
            return Verdict.RIS_REACHED, int(k)
        if np.isfinite(wedge[k]) and abs(z[k]) < wedge[k]:
            return Verdict.FUTILITY, int(k)
    return Verdict.INCONCLUSIVE, None


def _ci_boundary(fractions: np.ndarray, upper: np.ndarray, looks: _Looks, alpha: float,
                 conventions: TSAConventions) -> float:
    """Boundary for the TSA-adjusted CI at the last look: latest analysed look, else single-look."""
    analysed = np.flatnonzero(looks.analysed)
    if analysed.size:
        return float(upper[analysed[-1]])
    spent = per_side_cumulative_spending(
        min(float(fractions[-1]), 1.0), alpha, sides=2, spending=conventions.spending,
        two_sided_convention=conventions.two_sided_convention)
    return float(-special.ndtri(spent))


# --------------------------------------------------------------------------- result


def _json(value: Any) -> Any:
    """NaN/inf -> None, numpy -> Python, recursively (for ``to_dict``)."""
    if isinstance(value, np.ndarray):
        return [_json(item) for item in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _cell(value: float) -> str:
    """Right-aligned 8-character table cell; '-' for NaN."""
    return f"{value:>8.3f}" if np.isfinite(value) else f"{'-':>8}"


@dataclass(frozen=True)
class TSAResult:
    """Trial sequential analysis of a cumulative meta-analysis (one row per look).

    Per-look arrays (length K, in the order given): ``cumulative_n``,
    ``information_fraction`` (cumulative_n / RIS), ``z`` (cumulative Z),
    ``analysed`` (look analysed under the TSA conventions), ``upper`` / ``lower``
    (monitoring boundaries, NaN where not analysed), ``futility_upper`` /
    ``futility_lower`` (inner wedge, NaN where undefined), ``alpha_spent``
    (cumulative two-sided alpha spent as of the look).

    ``benefit_side`` says which boundary is the benefit boundary ("lower": negative
    Z, e.g. log odds ratio of death below 0).  ``boundary_at_ris`` is the monitoring
    boundary at information fraction 1 given the analysed looks.
    """

    labels: tuple[str, ...]
    cumulative_n: np.ndarray
    information_fraction: np.ndarray
    z: np.ndarray
    analysed: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    futility_upper: np.ndarray
    futility_lower: np.ndarray
    alpha_spent: np.ndarray
    required_information_size: int
    alpha: float
    power: float
    benefit_side: str
    boundary_at_ris: float
    wedge_drift: float | None
    verdict: Verdict
    verdict_look: int | None
    adjusted_ci: tuple[float, float] | None
    estimate: float | None
    ratio_measure: bool
    curve: BoundaryCurve
    conventions: TSAConventions
    ris: RequiredInformationSize | None = None
    heterogeneity_note: str = ""

    @property
    def information_fraction_reached(self) -> float:
        """Information fraction at the last look."""
        return float(self.information_fraction[-1])

    def boundaries_frame(self) -> pd.DataFrame:
        """Tidy table, one row per look."""
        return pd.DataFrame({
            "label": list(self.labels), "cumulative_n": self.cumulative_n,
            "information_fraction": self.information_fraction, "z": self.z, "analysed": self.analysed,
            "upper": self.upper, "lower": self.lower, "futility_upper": self.futility_upper,
            "futility_lower": self.futility_lower, "alpha_spent": self.alpha_spent,
        })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN and infinities become None)."""
        looks = {name: _json(getattr(self, name)) for name in (
            "cumulative_n", "information_fraction", "z", "analysed", "upper", "lower",
            "futility_upper", "futility_lower", "alpha_spent")}
        curve = {name: _json(getattr(self.curve, name)) for name in (
            "information_fraction", "upper", "lower", "futility_upper", "futility_lower")}
        return {
            "labels": list(self.labels), "looks": looks, "curve": curve,
            "required_information_size": self.required_information_size,
            "ris": None if self.ris is None else _json(dict(vars(self.ris))),
            "alpha": self.alpha, "power": self.power, "benefit_side": self.benefit_side,
            "boundary_at_ris": _json(self.boundary_at_ris), "wedge_drift": _json(self.wedge_drift),
            "verdict": self.verdict.value, "verdict_look": self.verdict_look,
            "verdict_label": None if self.verdict_look is None else self.labels[self.verdict_look],
            "information_fraction_reached": _json(self.information_fraction_reached),
            "estimate": _json(self.estimate), "adjusted_ci": _json(self.adjusted_ci),
            "ratio_measure": self.ratio_measure, "conventions": _json(dict(vars(self.conventions))),
        }

    def __str__(self) -> str:
        lines = [f"Trial sequential analysis: {len(self.labels)} looks, RIS = {self.required_information_size} patients"
                 f" (alpha {self.alpha:g} two-sided, power {self.power:g}){self.heterogeneity_note}"]
        lines.append(f"{'look':<22}{'n':>7}{'IF':>8}{'Z':>8}{'bound':>8}{'wedge':>8}{'alpha':>10}")
        for k, label in enumerate(self.labels):
            mark = "" if self.analysed[k] else "  (not analysed)"
            lines.append(f"{label[:21]:<22}{self.cumulative_n[k]:>7.0f}{self.information_fraction[k]:>8.3f}"
                         f"{_cell(self.z[k])}{_cell(self.upper[k])}{_cell(self.futility_upper[k])}"
                         f"{self.alpha_spent[k]:>10.2e}{mark}")
        where = "" if self.verdict_look is None else f" at {self.labels[self.verdict_look]}"
        lines.append(f"Verdict: {self.verdict.value}{where}; information fraction reached "
                     f"{self.information_fraction_reached:.3f}; boundary at RIS {self.boundary_at_ris:.3f}")
        if self.estimate is not None and self.adjusted_ci is not None:
            scale = "ratio" if self.ratio_measure else "difference"
            lines.append(f"Last estimate ({scale}) {self.estimate:.3f}, TSA-adjusted "
                         f"{100 * (1 - self.alpha):g}% CI {self.adjusted_ci[0]:.3f} to {self.adjusted_ci[1]:.3f}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- entry points


def _labels(labels: Sequence[str] | None, size: int) -> tuple[str, ...]:
    if labels is None:
        return tuple(f"look {k + 1}" for k in range(size))
    if len(labels) != size:
        raise DataError(f"labels must have {size} entries, got {len(labels)}")
    return tuple(str(label) for label in labels)


def _checked_curve(z: Sequence[float] | np.ndarray, cumulative_n: Sequence[float] | np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative Z (NaN allowed) and cumulative patients (positive, non-decreasing)."""
    z_values = as_finite_1d("z", z, allow_nan=True)
    n = as_finite_1d("cumulative_n", cumulative_n)
    if n.size != z_values.size:
        raise DataError(f"cumulative_n must have {z_values.size} values like z, got {n.size}")
    if (n <= 0).any() or (np.diff(n) < 0).any():
        raise DataError(f"cumulative_n must be positive and non-decreasing, got {n.tolist()}")
    return z_values, n


def _ris_patients(required_information_size: int | float | RequiredInformationSize) -> int:
    if isinstance(required_information_size, RequiredInformationSize):
        return required_information_size.patients
    value = float(required_information_size)
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"required_information_size must be a positive number, got {required_information_size!r}")
    return math.ceil(value)


def _adjusted_ci(log_estimate: float | None, standard_error: float | None, bound: float,
                 ratio_measure: bool) -> tuple[float | None, tuple[float, float] | None]:
    """Point estimate and ``estimate +- bound * SE`` (exponentiated for ratio measures)."""
    if log_estimate is None or standard_error is None or not np.isfinite([log_estimate, standard_error]).all():
        return None, None
    low, high = log_estimate - bound * standard_error, log_estimate + bound * standard_error
    if ratio_measure:
        return math.exp(log_estimate), (math.exp(low), math.exp(high))
    return log_estimate, (low, high)


def trial_sequential_analysis(
    z: Sequence[float] | np.ndarray,
    cumulative_n: Sequence[float] | np.ndarray,
    required_information_size: int | float | RequiredInformationSize,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    labels: Sequence[str] | None = None,
    benefit_side: BenefitSide = "lower",
    futility: bool = True,
    last_estimate: float | None = None,
    last_standard_error: float | None = None,
    ratio_measure: bool = True,
    conventions: TSAConventions = TSAConventions(),
    heterogeneity_note: str = "",
) -> TSAResult:
    """Trial sequential analysis of a cumulative Z-curve.

    Parameters
    ----------
    z : array_like
        Cumulative meta-analysis Z after each trial, in order (NaN allowed: not assessable).
    cumulative_n : array_like
        Cumulative number of patients after each trial (non-decreasing, > 0).
    required_information_size : int, float or RequiredInformationSize
        RIS in patients (``.patients`` of a ``RequiredInformationSize``).
    alpha, power : float
        Two-sided type I error and power (``beta = 1 - power`` for the inner wedge).
    labels : sequence of str, optional
        Look labels (e.g. "Shu 2020").
    benefit_side : {"lower", "upper"}
        Which monitoring boundary means benefit ("lower": Z < 0 favours treatment).
    futility : bool
        Compute the inner wedge.
    last_estimate, last_standard_error : float, optional
        Pooled estimate (log scale for ratio measures) and SE at the last look, for
        the TSA-adjusted confidence interval.
    ratio_measure : bool
        Exponentiate the estimate and CI.
    conventions : TSAConventions
        Look and spending conventions.

    Returns
    -------
    TSAResult

    References
    ----------
    Wetterslev et al. (2008); TSA manual (Thorlund et al. 2011/2017).
    """
    z_values, n = _checked_curve(z, cumulative_n)
    alpha, power = check_open_unit("alpha", alpha), check_open_unit("power", power)
    check_choice("benefit_side", benefit_side, ("lower", "upper"))
    ris = _ris_patients(required_information_size)
    fractions = n / ris
    looks = _select_looks(fractions, conventions)
    design = _design(looks, alpha, 1.0 - power, futility, conventions)
    upper, wedge = _per_look(design.upper, looks), _per_look(design.wedge, looks)
    verdict, verdict_look = _verdict(z_values, upper, wedge, looks, benefit_side)
    bound = _ci_boundary(fractions, upper, looks, alpha, conventions)
    estimate, ci = _adjusted_ci(last_estimate, last_standard_error, bound, ratio_measure)
    return TSAResult(
        _labels(labels, z_values.size), n, fractions, z_values, looks.analysed, upper, -upper,
        wedge, -wedge, _alpha_spent_per_look(design, looks), ris, alpha, power, benefit_side,
        float(design.upper[-1]), design.wedge_drift, verdict, verdict_look, ci, estimate, ratio_measure,
        _curve(design, alpha, 1.0 - power, float(fractions[-1]), conventions), conventions,
        required_information_size if isinstance(required_information_size, RequiredInformationSize) else None,
        heterogeneity_note,
    )


#: Pooling of the cumulative Z-curve by default: RevMan's Mantel-Haenszel fixed-effect odds
#: ratio with 0.5 added to every cell of a trial with a zero cell (TSA program default).
DEFAULT_TSA_OPTIONS = BinaryOptions(measure="OR", method="MH", model="fixed", zero_cell="revman")


def diversity(variance_fixed: float, variance_random: float) -> float:
    """Diversity ``D^2 = (V_R - V_F) / V_R`` (Wetterslev et al. 2009).

    Parameters
    ----------
    variance_fixed, variance_random : float
        Variances of the fixed-effect and random-effects pooled estimates.

    References
    ----------
    Wetterslev J, Thorlund K, Brok J, Gluud C (2009). Estimating required information size
    by quantifying diversity in random-effects model meta-analyses. BMC Med Res Methodol 9:86.
    """
    if not (np.isfinite(variance_fixed) and variance_fixed > 0):
        raise DataError(f"variance_fixed must be a finite positive number, got {variance_fixed!r}")
    if not (np.isfinite(variance_random) and variance_random >= variance_fixed):
        raise DataError(f"variance_random must be finite and >= variance_fixed, got {variance_random!r}")
    return float((variance_random - variance_fixed) / variance_random)


def diversity_of_counts(data: pd.DataFrame, *, measure: str = "OR", columns: Mapping[str, str] | None = None,
                        source: str | None = None) -> float:
    """D^2 of 2x2 counts: inverse-variance fixed vs DerSimonian-Laird random-effects variance.

    Study estimates with RevMan's 0.5 correction of zero-cell trials (double-zero trials
    not estimable), as the TSA program computes D^2 from the DL model (Wetterslev 2009).
    Returns 0 when fewer than two trials are estimable (no heterogeneity to measure).
    """
    base = BinaryOptions(measure=measure, method="IV", model="fixed", zero_cell="revman", prediction=False)
    try:
        fixed = meta_binary(data, columns=columns, source=source, options=base)
        random = meta_binary(data, columns=columns, source=source,
                             options=base.replace(model="random", tau2_method="DL"))
    except NotEstimableError:
        return 0.0
    if fixed.k < 2:
        return 0.0
    return diversity(fixed.se**2, max(random.se**2, fixed.se**2))


def cumulative_z(data: pd.DataFrame, options: BinaryOptions = DEFAULT_TSA_OPTIONS, *,
                 columns: Mapping[str, str] | None = None, source: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pooled estimate (analysis scale) and its SE after each trial, in row order.

    Trials 1..k are pooled with :func:`mscmeta.engine.binary.meta_binary` and *options* for
    every k; a step where no trial is estimable yet is NaN (it cannot cross a boundary).
    """
    estimates, errors = np.full(len(data), np.nan), np.full(len(data), np.nan)
    for k in range(len(data)):
        try:
            fit = meta_binary(data.iloc[: k + 1], columns=columns, source=source, options=options)
        except NotEstimableError:
            continue
        estimates[k], errors[k] = fit.estimate, fit.se
    return estimates, errors


def _analysed_rows(data: pd.DataFrame, columns: Mapping[str, str] | None, source: str | None,
                   exclude_double_zero: bool) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[str]]:
    """Validated rows (canonical column names), dropping double-zero trials when asked."""
    labels, counts = check_binary(data, columns=columns, source=source)
    frame = pd.DataFrame({"study": labels, **counts})
    informative = (frame["events_t"] + frame["events_c"] > 0).to_numpy()
    if not informative.any():
        raise DataError(f"{source + ': ' if source else ''}no trial has an event in either arm: "
                        "nothing to monitor")
    if exclude_double_zero:
        frame = frame[informative].reset_index(drop=True)
    return frame, {c: frame[c].to_numpy(float) for c in BINARY_COLUMNS[1:]}, list(frame["study"])


def trial_sequential_analysis_from_counts(
    data: pd.DataFrame,
    *,
    relative_risk_reduction: float,
    control_proportion: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    diversity: float | None = None,
    inconsistency: float | None = None,
    options: BinaryOptions = DEFAULT_TSA_OPTIONS,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    exclude_double_zero: bool = True,
    benefit_side: BenefitSide = "lower",
    futility: bool = True,
    conventions: TSAConventions = TSAConventions(),
) -> TSAResult:
    """Trial sequential analysis of 2x2 counts, trials in the order of the rows.

    Parameters
    ----------
    data : DataFrame
        One row per trial, in the order the evidence accrued (e.g. publication date), with
        ``study, events_t, n_t, events_c, n_c`` (or names mapped by *columns*).
    relative_risk_reduction : float
        Anticipated RRR for the required information size.
    control_proportion : float, optional
        Anticipated control event proportion; default the pooled observed control
        proportion of the analysed trials (RTSA's default; the TSA manual's "control
        event proportion" from the data).
    alpha, power : float
        Two-sided type I error (alpha/2 spent on each side) and power.
    diversity, inconsistency : float, optional
        D^2 or I^2 in [0, 1) for the heterogeneity adjustment of the RIS
        (:func:`diversity_of_counts`).
    options : BinaryOptions
        Pooling of the cumulative Z-curve (default :data:`DEFAULT_TSA_OPTIONS`).
    exclude_double_zero : bool
        Drop trials without events in either arm from the information axis and the control
        proportion (RTSA's default: they carry no information on a ratio); ``False`` keeps
        their patients.
    benefit_side : {"lower", "upper"}
        "lower": Z < 0 (fewer events with treatment) is benefit, as for deaths.

    Returns
    -------
    TSAResult

    References
    ----------
    Wetterslev et al. (2008) J Clin Epidemiol 61:64; TSA manual (Thorlund et al. 2011/2017);
    RTSA ``RTSA()`` and ``metaPrepare``.
    """
    frame, counts, labels = _analysed_rows(data, columns, source, exclude_double_zero)
    patients = np.cumsum(counts["n_t"] + counts["n_c"])
    if control_proportion is None:
        control_proportion = float(counts["events_c"].sum() / counts["n_c"].sum())
    ris = required_information_size(control_proportion, relative_risk_reduction, alpha=alpha, power=power,
                                     diversity=diversity, inconsistency=inconsistency)
    estimates, errors = cumulative_z(frame, options, source=source)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_values = estimates / errors
    note = "" if ris.adjustment_measure == "none" else f", {ris.adjustment_measure}-adjusted ({ris.adjustment:.1%})"
    return trial_sequential_analysis(
        z_values, patients, ris, alpha=alpha, power=power, labels=labels, benefit_side=benefit_side,
        futility=futility, last_estimate=float(estimates[-1]), last_standard_error=float(errors[-1]),
        ratio_measure=options.is_ratio(), conventions=conventions, heterogeneity_note=note,
    )
