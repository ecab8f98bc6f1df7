"""Text as GRADEpro prints it. Formatting only: every number comes from the computing modules.

Conventions (GRADEpro GDT summary-of-findings and evidence-profile output):

* frequencies are whole numbers "per 1,000" (thousands separator in the denominator);
* a risk difference reads ``"42 fewer per 1,000 (from 61 fewer to 14 fewer)"``: the word
  follows the sign of each unrounded value ("fewer" below zero, "more" above), the CI is
  printed in the order of the relative effect's limits (lower limit first);
* rounding is half up on the magnitude (``floor(|x| + 0.5)``), the rule of JavaScript's
  ``Math.round`` for positive numbers, which GRADEpro uses;
* relative effects with two decimals, ``"RR 0.46 (0.34 to 0.63)"``;
* continuous differences ``"MD 4.72 lower (4.91 lower to 4.52 lower)"``;
* event rates in evidence profiles ``"101/1448 (7.0%)"`` printed as ``"7%"`` (one decimal,
  a trailing ``.0`` dropped).

References
----------
.. [1] Kearon C, Akl EA, Comerota AJ, et al. Antithrombotic therapy for VTE disease:
   Antithrombotic Therapy and Prevention of Thrombosis, 9th ed: ACCP Evidence-Based Clinical
   Practice Guidelines. Chest 2012;141(2 Suppl):e419S-e494S, Tables 24-25 (GRADEpro output,
   e.g. "2 more per 1,000 (from 82 fewer to 141 more)").
.. [2] Schünemann HJ, et al. Cochrane Handbook v6.4, chapter 14, Figure 14.1.a.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mscmeta.engine.grade.absolute_effects import AbsoluteEffect, ContinuousEffect, EffectEstimate

#: Certainty words by level (4 = high ... 1 = very low).
CERTAINTY_WORDS: dict[int, str] = {4: "High", 3: "Moderate", 2: "Low", 1: "Very low"}


def round_half_up(value: float) -> int:
    """Round the magnitude half up and keep the sign: 2.5 -> 3, -2.5 -> -3, 26.505 -> 27."""
    magnitude = math.floor(abs(value) + 0.5)
    return -magnitude if value < 0 else magnitude


def format_count(number: int, *, thousands: bool = True) -> str:
    """Whole number, with a thousands separator by default: 1000 -> "1,000"."""
    return f"{int(number):,}" if thousands else str(int(number))


def format_frequency(risk: float, per: int = 1000) -> str:
    """A risk as GRADEpro's frequency: 0.479 -> "479 per 1,000"."""
    return f"{format_count(round_half_up(risk * per))} per {format_count(per)}"


def _direction(value_per: float) -> str:
    """Word for a difference: the sign of the unrounded value decides (0 exactly: "fewer")."""
    return "more" if value_per > 0 else "fewer"


def format_signed(value_per: float) -> str:
    """One end of a risk difference: -61.3 -> "61 fewer", 0.4 -> "0 more"."""
    return f"{format_count(abs(round_half_up(value_per)))} {_direction(value_per)}"


def format_risk_difference(effect: AbsoluteEffect) -> str:
    """GRADEpro's risk-difference text: "42 fewer per 1,000 (from 61 fewer to 14 fewer)"."""
    per = effect.per
    point = format_signed(effect.difference * per)
    low = format_signed(effect.difference_low * per)
    high = format_signed(effect.difference_high * per)
    return f"{point} per {format_count(per)} (from {low} to {high})"


def format_risk_with_intervention(effect: AbsoluteEffect) -> str:
    """Risk with the intervention and its CI: "1 per 1,000 (0 to 3)"."""
    per = effect.per
    low = format_count(round_half_up(effect.risk_intervention_low * per))
    high = format_count(round_half_up(effect.risk_intervention_high * per))
    return f"{format_frequency(effect.risk_intervention, per)} ({low} to {high})"


def format_decimal(value: float, decimals: int = 2) -> str:
    """Fixed decimals, half up on the magnitude (so 0.125 -> "0.13", not banker's "0.12")."""
    scaled = round_half_up(value * 10**decimals + (1e-9 if value >= 0 else -1e-9))
    text = f"{abs(scaled) / 10**decimals:.{decimals}f}"
    return f"-{text}" if scaled < 0 else text


def format_relative_effect(effect: EffectEstimate, decimals: int = 2) -> str:
    """Relative-effect column: "OR 0.61 (0.40 to 0.93)"; "—" for MD/SMD (GRADEpro leaves it empty)."""
    if effect.measure in {"MD", "SMD"}:
        return "—"
    numbers = (format_decimal(v, decimals) for v in (effect.estimate, effect.ci_low, effect.ci_high))
    est, low, high = numbers
    return f"{effect.measure} {est} ({low} to {high})"


def _higher_lower(value: float, decimals: int) -> str:
    text = format_decimal(abs(value), decimals)
    if float(text) == 0:
        return text
    return f"{text} {'higher' if value > 0 else 'lower'}"


def format_continuous_difference(effect: ContinuousEffect, decimals: int = 2) -> str:
    """Difference column of a continuous outcome: "MD 4.72 lower (4.91 lower to 4.52 lower)".

    Units, when given, follow the point estimate: "MD 2.1 days lower (3.5 lower to 0.7 lower)".
    """
    est = effect.effect
    units = f" {effect.units}" if effect.units else ""
    point = format_decimal(abs(est.estimate), decimals)
    word = "" if float(point) == 0 else (" higher" if est.estimate > 0 else " lower")
    low = _higher_lower(est.ci_low, decimals)
    high = _higher_lower(est.ci_high, decimals)
    return f"{est.measure} {point}{units}{word} ({low} to {high})"


def format_control_mean(effect: ContinuousEffect, outcome: str, decimals: int = 1) -> str:
    """Control column of a continuous outcome: "The mean length of stay was 18.2 days"."""
    label = effect.outcome_label or (outcome[:1].lower() + outcome[1:])
    if effect.control_text:
        return f"The mean {label} {effect.control_text}"
    if effect.control_mean is None:
        return "—"
    units = f" {effect.units}" if effect.units else ""
    return f"The mean {label} was {format_decimal(effect.control_mean, decimals)}{units}"


def format_event_rate(events: int, total: int) -> str:
    """Evidence-profile cell: "101/1448 (7%)", "375/3088 (12.1%)" (one decimal, ".0" dropped)."""
    percent = format_decimal(100.0 * events / total, 1)
    if percent.endswith(".0"):
        percent = percent[:-2]
    return f"{events}/{total} ({percent}%)"


def format_certainty(level: int, filled: str = "⊕", empty: str = "◯") -> str:
    """Symbols and word: 2 -> "⊕⊕◯◯ Low"."""
    return f"{filled * level}{empty * (4 - level)} {CERTAINTY_WORDS[level]}"


def format_p(p_value: float) -> str:
    """A p-value as footnotes print it: 0.031 -> "0.03", 0.0004 -> "< 0.001"."""
    if p_value < 0.001:
        return "< 0.001"
    return format_decimal(p_value, 3 if p_value < 0.01 else 2)


def format_percent(value: float, decimals: int = 0) -> str:
    """A percentage: 61.6 -> "62%"."""
    return f"{format_decimal(value, decimals)}%"


def footnote_marker(index: int) -> str:
    """Footnote letters a, b, ..., z, aa, ab, ... for a 0-based index."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters
