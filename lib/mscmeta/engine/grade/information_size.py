"""Optimal information size (OIS): the sample size of one adequately powered trial.

GRADE judges a body of evidence imprecise when it holds fewer participants than a single
conventional trial would need (GRADE 6). For a binary outcome the OIS is the total sample
size of a two-arm trial (1:1) detecting a relative risk reduction (RRR, 25 % or 20 % by
convention) from the control risk, with two-sided alpha 0.05 and power 0.80; for a
continuous outcome, detecting the minimal important difference (MID) given the SD.

Binary formula (normal approximation, pooled variance under H0; Fleiss), per arm::

    n = [z_{1-a/2} sqrt(2 p (1-p)) + z_{1-b} sqrt(p1 (1-p1) + p2 (1-p2))]^2 / (p1 - p2)^2,
    p = (p1 + p2) / 2

optionally with Fleiss' continuity correction ``n' = n/4 (1 + sqrt(1 + 4 / (n |p1-p2|)))^2``.
Continuous, per arm: ``n = 2 (z_{1-a/2} + z_{1-b})^2 SD^2 / MID^2``.

References
----------
.. [1] Guyatt GH, Oxman AD, Kunz R, et al. GRADE guidelines 6. Rating the quality of
   evidence-imprecision. J Clin Epidemiol 2011;64:1283-1293.
.. [2] Fleiss JL, Levin B, Paik MC. Statistical Methods for Rates and Proportions, 3rd ed.
   Wiley 2003, section 4.2.
.. [3] Zar JH. Biostatistical Analysis, 4th ed. 1999, Example 24.26 (p. 561).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.stats import norm

from mscmeta.engine.validation import DataError


@dataclass(frozen=True)
class InformationSize:
    """An optimal information size.

    Attributes
    ----------
    per_arm : float
        Unrounded sample size per arm.
    total : int
        Total OIS, ``2 * ceil(per_arm)``.
    basis : str
        What it was computed from, for footnotes.
    """

    per_arm: float
    total: int
    basis: str

    def __str__(self) -> str:
        return f"OIS {self.total:,} ({self.basis})"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _z_values(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise DataError(f"OIS: alpha ({alpha}) not in (0, 1)")
    if not 0 < power < 1:
        raise DataError(f"OIS: power ({power}) not in (0, 1)")
    return float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))


def two_proportion_sample_size(
    p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.80,
    continuity: bool = False,
) -> float:
    """Per-arm sample size to tell ``p1`` from ``p2`` (two-sided test, 1:1 allocation).

    Parameters
    ----------
    p1, p2 : float
        The two risks, each in (0, 1), not equal.
    alpha, power : float
        Two-sided type I error and power.
    continuity : bool
        Apply Fleiss' continuity correction.

    Returns
    -------
    float
        Unrounded per-arm size.
    """
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise DataError(f"OIS: risks p1 ({p1}) and p2 ({p2}) must differ and lie in (0, 1)")
    z_a, z_b = _z_values(alpha, power)
    p_bar = (p1 + p2) / 2
    delta = abs(p1 - p2)
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = root**2 / delta**2
    if continuity:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * delta))) ** 2
    return n


def binary_ois(
    control_risk: float, *, rrr: float = 0.25, alpha: float = 0.05, power: float = 0.80,
) -> InformationSize:
    """OIS of a binary outcome: a trial detecting a relative risk reduction ``rrr``.

    Parameters
    ----------
    control_risk : float
        Control event risk, in (0, 1).
    rrr : float
        Relative risk reduction to detect (GRADE 6: 0.25, or 0.20 for a stricter criterion).
    alpha, power : float
        Two-sided alpha (0.05) and power (0.80, i.e. beta 0.20), as GRADE 6.
    """
    if not 0 < rrr < 1:
        raise DataError(f"OIS: rrr ({rrr}) not in (0, 1)")
    if not 0 < control_risk < 1:
        raise DataError(f"OIS: control risk ({control_risk}) not in (0, 1)")
    per_arm = two_proportion_sample_size(control_risk, control_risk * (1 - rrr), alpha=alpha, power=power)
    basis = (f"control risk {100 * control_risk:.1f}%, RRR {100 * rrr:.0f}%, "
             f"alpha {alpha:g}, power {power:g}")
    return InformationSize(per_arm, 2 * math.ceil(per_arm), basis)


def continuous_ois(sd: float, mid: float, *, alpha: float = 0.05, power: float = 0.80) -> InformationSize:
    """OIS of a continuous outcome: a trial detecting the minimal important difference.

    Parameters
    ----------
    sd : float
        Standard deviation of the outcome (1 for an SMD).
    mid : float
        Minimal important difference, same units (magnitude used).
    """
    if not (math.isfinite(sd) and sd > 0):
        raise DataError(f"OIS: sd ({sd}) must be positive")
    if not (math.isfinite(mid) and mid != 0):
        raise DataError(f"OIS: mid ({mid}) must be non-zero")
    z_a, z_b = _z_values(alpha, power)
    per_arm = 2 * (z_a + z_b) ** 2 * sd**2 / mid**2
    basis = f"MID {abs(mid):.3g}, SD {sd:.3g}, alpha {alpha:g}, power {power:g}"
    return InformationSize(per_arm, 2 * math.ceil(per_arm), basis)
