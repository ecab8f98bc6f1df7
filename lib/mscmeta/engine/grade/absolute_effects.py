"""Anticipated absolute effects as GRADEpro computes them.

A summary-of-findings (SoF) table turns the pooled relative effect into a risk with the
intervention for an assumed control risk (ACR), and into a risk difference per 1,000:

* risk ratio:   ``risk_int = RR * ACR`` (capped at 1);
* odds ratio:   ``risk_int = OR * ACR / (1 - ACR + OR * ACR)``;
* hazard ratio: ``risk_int = 1 - (1 - ACR) ** HR`` (proportional hazards; the GRADE
  handbook writes it as ``RR = (1 - exp(HR * ln(1 - CER))) / CER``);
* risk difference: ``risk_int = ACR + RD`` (clipped to [0, 1]).

The confidence limits of the absolute effect are those of the relative effect pushed through
the same formula with the ACR held fixed (GRADEpro does not propagate the uncertainty of the
ACR). The default ACR is the "study population" risk: total events / total participants over
the control arms of the included studies.

Continuous outcomes (MD, SMD) keep their difference as it is; see :class:`ContinuousEffect`.

Computation lives here; the text GRADEpro prints is made by :mod:`mscmeta.engine.grade.text`.

References
----------
.. [1] Schünemann H, Brożek J, Guyatt G, Oxman A (eds). GRADE Handbook, 2013, section 5
   ("Absolute effect"; worked examples RR 0.83 with CER 40 %, OR 0.64 with CER 112/438).
.. [2] Guyatt GH, Oxman AD, Santesso N, et al. GRADE guidelines: 12. Preparing summary of
   findings tables-binary outcomes. J Clin Epidemiol 2013;66:158-172.
.. [3] Skoetz N, Goldkuhle M, van Dalen EC, et al. GRADE guidelines 27: how to calculate
   absolute effects for time-to-event outcomes in summary of findings tables and Evidence
   Profiles. J Clin Epidemiol 2020;118:124-131.
.. [4] Schünemann HJ, Higgins JPT, Vist GE, et al. Chapter 14: Completing 'Summary of
   findings' tables and grading the certainty of the evidence. Cochrane Handbook v6.4, 2023.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from mscmeta.engine.grade.text import format_risk_difference
from mscmeta.engine.validation import DataError

#: Ratio measures: absolute effects derived through an assumed control risk.
RATIO_MEASURES: frozenset[str] = frozenset({"RR", "OR", "HR"})
#: Binary measures (ratio measures plus the risk difference).
BINARY_MEASURES: frozenset[str] = RATIO_MEASURES | {"RD"}
#: Continuous measures.
CONTINUOUS_MEASURES: frozenset[str] = frozenset({"MD", "SMD"})
ALL_MEASURES: frozenset[str] = BINARY_MEASURES | CONTINUOUS_MEASURES


def _where(outcome: str | None) -> str:
    return f"outcome {outcome!r}: " if outcome else ""


def _finite(value: float, name: str, outcome: str | None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{_where(outcome)}{name}: not a number ({value!r})") from None
    if not math.isfinite(number):
        raise DataError(f"{_where(outcome)}{name}: not finite ({value!r})")
    return number


@dataclass(frozen=True)
class EffectEstimate:
    """A pooled effect with its confidence interval, on the natural (not log) scale.

    Attributes
    ----------
    measure : str
        ``"RR"``, ``"OR"``, ``"HR"``, ``"RD"`` (proportion, e.g. -0.04), ``"MD"`` or ``"SMD"``.
    estimate, ci_low, ci_high : float
        Point estimate and confidence limits.
    level : float
        Confidence level of the interval (0.95 by default).
    """

    measure: str
    estimate: float
    ci_low: float
    ci_high: float
    level: float = 0.95

    def validated(self, outcome: str | None = None) -> EffectEstimate:
        """Return self after checking measure, finiteness, order and range; else DataError."""
        where = f"{_where(outcome)}effect"
        if self.measure not in ALL_MEASURES:
            raise DataError(f"{where}: measure {self.measure!r} not one of {sorted(ALL_MEASURES)}")
        est = _finite(self.estimate, "effect estimate", outcome)
        low = _finite(self.ci_low, "effect ci_low", outcome)
        high = _finite(self.ci_high, "effect ci_high", outcome)
        if not low <= est <= high:
            raise DataError(f"{where}: estimate {est} not inside its CI ({low} to {high})")
        if self.measure in RATIO_MEASURES and low <= 0:
            raise DataError(f"{where}: {self.measure} ci_low ({low}) must be > 0")
        if self.measure == "RD" and not -1 <= low <= high <= 1:
            raise DataError(f"{where}: RD CI ({low} to {high}) outside [-1, 1]")
        if not 0 < self.level < 1:
            raise DataError(f"{where}: level ({self.level}) not in (0, 1)")
        return self

    @property
    def null_value(self) -> float:
        """Value of no effect: 1 for ratio measures, 0 for differences."""
        return 1.0 if self.measure in RATIO_MEASURES else 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ControlRisk:
    """An assumed control risk (ACR) and where it comes from.

    Attributes
    ----------
    risk : float
        Proportion in [0, 1].
    label : str
        Row label in the SoF table: ``"Study population"`` (GRADEpro's default name for the
        pooled control-arm risk), or e.g. ``"Moderate risk"``, ``"High risk"``.
    source : str
        Where the number comes from, e.g. ``"pooled control arms: 45/160"``.
    """

    risk: float
    label: str = "Study population"
    source: str = "user-given"

    def validated(self, outcome: str | None = None) -> ControlRisk:
        risk = _finite(self.risk, "control risk", outcome)
        if not 0.0 <= risk <= 1.0:
            raise DataError(f"{_where(outcome)}control risk ({risk}) not in [0, 1]")
        return self

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def control_risk_from_arms(
    events: Sequence[int], totals: Sequence[int], *, outcome: str | None = None,
    label: str = "Study population",
) -> ControlRisk:
    """Pooled control risk as GRADEpro's default: total events / total participants.

    Parameters
    ----------
    events, totals : sequence of int
        Events and participants of the control arm of each included study.
    outcome : str, optional
        Named in error messages.
    label : str
        SoF row label.

    Returns
    -------
    ControlRisk
        ``risk = sum(events) / sum(totals)`` with ``source`` giving the counts.

    References
    ----------
    GRADE Handbook 2013, section 5 ("CER = number of people with events in control group /
    total number of people in control group").
    """
    if len(events) != len(totals) or not events:
        raise DataError(f"{_where(outcome)}control arms: {len(events)} event counts for {len(totals)} arm totals")
    for i, (e, n) in enumerate(zip(events, totals, strict=True), start=1):
        if int(e) != e or int(n) != n or e < 0 or n <= 0 or e > n:
            raise DataError(f"{_where(outcome)}control arm {i}: events {e!r} of {n!r} not valid counts")
    total_events, total_n = int(sum(events)), int(sum(totals))
    return ControlRisk(total_events / total_n, label, f"pooled control arms: {total_events}/{total_n}")


def intervention_risk(measure: str, ratio: float, control_risk: float) -> float:
    """Risk with the intervention implied by a relative effect and a control risk.

    Parameters
    ----------
    measure : {"RR", "OR", "HR", "RD"}
    ratio : float
        The relative effect (or the risk difference for ``"RD"``).
    control_risk : float
        Assumed control risk, a proportion.

    Returns
    -------
    float
        Proportion in [0, 1] (RR and RD results are clipped to that range).
    """
    if measure == "RR":
        return min(1.0, ratio * control_risk)
    if measure == "OR":
        return ratio * control_risk / (1.0 - control_risk + ratio * control_risk)
    if measure == "HR":
        if control_risk >= 1.0:
            return 1.0
        return 1.0 - (1.0 - control_risk) ** ratio
    if measure == "RD":
        return min(1.0, max(0.0, control_risk + ratio))
    raise DataError(f"measure {measure!r}: no absolute risk for this measure")


@dataclass(frozen=True)
class AbsoluteEffect:
    """Anticipated absolute effect of a binary outcome for one assumed control risk.

    Risks and differences are proportions (multiply by ``per`` for "per 1,000"). The
    ``*_low``/``*_high`` attributes follow the lower/upper limit of the *relative* effect,
    which is also the order in which GRADEpro prints them.
    """

    measure: str
    control: ControlRisk
    risk_intervention: float
    risk_intervention_low: float
    risk_intervention_high: float
    per: int = 1000

    @property
    def difference(self) -> float:
        return self.risk_intervention - self.control.risk

    @property
    def difference_low(self) -> float:
        return self.risk_intervention_low - self.control.risk

    @property
    def difference_high(self) -> float:
        return self.risk_intervention_high - self.control.risk

    def __str__(self) -> str:
        return format_risk_difference(self)

    def to_dict(self) -> dict[str, object]:
        return {
            "measure": self.measure, "control_risk": self.control.risk,
            "control_label": self.control.label, "control_source": self.control.source,
            "risk_intervention": self.risk_intervention,
            "risk_intervention_low": self.risk_intervention_low,
            "risk_intervention_high": self.risk_intervention_high,
            "risk_difference": self.difference, "risk_difference_low": self.difference_low,
            "risk_difference_high": self.difference_high, "per": self.per,
        }


def absolute_effect(
    effect: EffectEstimate, control: ControlRisk | float, *, per: int = 1000,
    outcome: str | None = None,
) -> AbsoluteEffect:
    """Absolute effect of a binary outcome, GRADEpro style.

    Parameters
    ----------
    effect : EffectEstimate
        Pooled RR, OR, HR or RD with its CI.
    control : ControlRisk or float
        Assumed control risk (a bare float is labelled "Study population", user-given).
    per : int
        Denominator of the printed frequencies (1,000 by default).
    outcome : str, optional
        Named in error messages.

    Returns
    -------
    AbsoluteEffect
    """
    effect = effect.validated(outcome)
    if effect.measure not in BINARY_MEASURES:
        raise DataError(f"{_where(outcome)}effect: measure {effect.measure!r} has no risk per {per}")
    if not isinstance(control, ControlRisk):
        control = ControlRisk(_finite(control, "control risk", outcome))
    control = control.validated(outcome)
    if int(per) != per or per < 1:
        raise DataError(f"{_where(outcome)}per: {per!r} is not a positive whole number")
    risks = [intervention_risk(effect.measure, value, control.risk)
             for value in (effect.estimate, effect.ci_low, effect.ci_high)]
    return AbsoluteEffect(effect.measure, control, *risks, per=int(per))


@dataclass(frozen=True)
class ContinuousEffect:
    """A continuous outcome's SoF entries: control mean (or a text) and the MD/SMD.

    Attributes
    ----------
    effect : EffectEstimate
        ``"MD"`` (in ``units``) or ``"SMD"``.
    control_mean : float or None
        Mean in the control groups (e.g. pooled or median); ``None`` when only a text is given.
    units : str
        Units of the MD and the control mean, e.g. ``"days"`` (empty for SMD or unitless).
    control_text : str or None
        Free text for the control column (e.g. "ranged across control groups from 6 to 9").
    outcome_label : str or None
        Wording of the outcome inside "The mean ... was"; defaults to the outcome name.
    """

    effect: EffectEstimate
    control_mean: float | None = None
    units: str = ""
    control_text: str | None = None
    outcome_label: str | None = None

    def validated(self, outcome: str | None = None) -> ContinuousEffect:
        self.effect.validated(outcome)
        if self.effect.measure not in CONTINUOUS_MEASURES:
            raise DataError(f"{_where(outcome)}effect: measure {self.effect.measure!r} is not MD or SMD")
        if self.control_mean is not None:
            _finite(self.control_mean, "control mean", outcome)
        return self

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["effect"] = self.effect.to_dict()
        return data
