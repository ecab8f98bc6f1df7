"""Summary-of-findings (SoF) table in GRADEpro's layout, plus a tidy numeric twin.

:func:`build_sof` takes one :class:`SofOutcome` per row group (an outcome, or one evidence set
of an outcome: e.g. mortality from all comparative studies and from randomised trials only),
rates the certainty (:mod:`mscmeta.engine.grade.domains`), computes the absolute effects (:mod:`mscmeta.engine.grade.absolute_effects`)
and returns a :class:`SofTable` with

* ``display``: text columns as GRADEpro prints them (outcome with follow-up, № of
  participants (studies), certainty symbols + word with footnote markers, relative effect
  (95% CI), assumed control risk, risk with control, risk with the intervention, risk
  difference, comments, footnote markers);
* ``tidy``: the same rows as numbers (one column per quantity, domain ratings as columns);
* ``footnotes``: the reasons of every downgrade and override, lettered a, b, c ...

Binary outcomes get one row per assumed control risk (GRADEpro: "Study population", then
e.g. "Moderate risk"); continuous outcomes one row.

References
----------
.. [1] Guyatt GH, Oxman AD, Santesso N, et al. GRADE guidelines: 12. Preparing summary of
   findings tables-binary outcomes. J Clin Epidemiol 2013;66:158-172.
.. [2] Guyatt GH, Thorlund K, Oxman AD, et al. GRADE guidelines: 13. Preparing summary of
   findings tables and evidence profiles-continuous outcomes. J Clin Epidemiol
   2013;66:173-183.
.. [3] Schünemann HJ, et al. Cochrane Handbook v6.4, chapter 14, section 14.1.6 and
   Figure 14.1.a.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from mscmeta.engine.validation import DataError
from mscmeta.engine.grade.absolute_effects import AbsoluteEffect, ContinuousEffect, ControlRisk, absolute_effect
from mscmeta.engine.grade.text import (
    format_certainty, format_continuous_difference, format_control_mean, format_count,
    format_frequency, format_relative_effect, format_risk_difference,
    format_risk_with_intervention, footnote_marker,
)
from mscmeta.engine.grade.domains import (
    DOMAIN_TITLES, DOMAINS, CertaintyAssessment, EvidenceBody, GradeParameters, Override,
    assess_certainty,
)

#: Table note printed under GRADEpro SoF tables (abridged).
TABLE_NOTE = (
    "*The risk in the intervention group (and its 95% confidence interval) is based on the assumed "
    "risk in the comparison group and the relative effect of the intervention (and its 95% CI)."
)


@dataclass(frozen=True)
class SofOutcome:
    """One row group of the SoF table.

    Attributes
    ----------
    evidence : EvidenceBody
        Studies (designs, risk of bias, weights), pooled effect, participants, events,
        heterogeneity, Egger p: everything the certainty rules read.
    control_risks : tuple of ControlRisk
        Binary outcomes: assumed control risks, one SoF row each. Empty: one "Study
        population" row from ``evidence.control_risk``.
    continuous : ContinuousEffect or None
        Continuous outcomes: control mean/text and units (its effect must be the evidence's).
    follow_up : str or None
        E.g. "28 days" (printed "Mortality (follow-up: 28 days)").
    comments : str
    """

    evidence: EvidenceBody
    control_risks: tuple[ControlRisk, ...] = ()
    continuous: ContinuousEffect | None = None
    follow_up: str | None = None
    comments: str = ""

    @property
    def name(self) -> str:
        return self.evidence.outcome

    def rows_of_control(self) -> tuple[ControlRisk, ...]:
        """Assumed control risks of this outcome (validated); empty for continuous outcomes."""
        if self.continuous is not None:
            return ()
        if self.control_risks:
            return tuple(c.validated(self.name) for c in self.control_risks)
        if self.evidence.control_risk is None:
            raise DataError(f"outcome {self.name!r}: binary outcome without a control risk")
        return (ControlRisk(self.evidence.control_risk, "Study population", "pooled control arms"),)


@dataclass(frozen=True)
class Footnote:
    """A lettered SoF footnote; identical texts share one letter across outcomes (as GRADEpro)."""

    marker: str
    outcomes: tuple[str, ...]
    domain: str
    text: str

    def __str__(self) -> str:
        return f"{self.marker}. {self.text}"

    def to_dict(self) -> dict[str, object]:
        return {"marker": self.marker, "outcomes": list(self.outcomes), "domain": self.domain, "text": self.text}


@dataclass(frozen=True)
class SofTable:
    """A built SoF table: display text, tidy numbers, footnotes and the assessments."""

    display: pd.DataFrame
    tidy: pd.DataFrame
    footnotes: tuple[Footnote, ...]
    assessments: tuple[CertaintyAssessment, ...]
    note: str = TABLE_NOTE
    params: GradeParameters = field(default_factory=GradeParameters)

    def __str__(self) -> str:
        lines = [self.display.to_string(index=False), "", self.note]
        lines += [str(f) for f in self.footnotes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "tidy": self.tidy.to_dict(orient="records"),
            "footnotes": [f.to_dict() for f in self.footnotes],
            "assessments": [a.to_dict() for a in self.assessments],
            "params": self.params.to_dict(),
        }


# ----------------------------------------------------------------------------- computation

def _sentence(text: str) -> str:
    text = str(text).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _footnote_texts(assessment: CertaintyAssessment) -> list[tuple[str, str]]:
    """(domain, text) of every downgrade, override and upgrade of one outcome."""
    texts = []
    for rating in assessment.domains:
        if not rating.levels and not rating.overridden:
            continue
        text = f"{DOMAIN_TITLES[rating.domain]}: {rating.rating}"
        if rating.overridden:
            text += f" (override; rule: {rating.rule_rating})"
        text += f". {_sentence(rating.reason)}"
        if rating.source:
            text += f" Source: {_sentence(rating.source)}"
        texts.append((rating.domain, text))
    for upgrade in assessment.upgrades:
        texts.append((upgrade.domain, f"Rated up {upgrade.levels} level(s): {_sentence(upgrade.reason)}"))
    return texts


def _attach_footnotes(assessment: CertaintyAssessment, notes: dict[str, Footnote]) -> str:
    """Add this outcome's footnotes to ``notes`` (keyed by text) and return its markers "a,b"."""
    markers = []
    for domain, text in _footnote_texts(assessment):
        note = notes.get(text)
        if note is None:
            note = Footnote(footnote_marker(len(notes)), (assessment.outcome,), domain, text)
        elif assessment.outcome not in note.outcomes:
            note = replace(note, outcomes=note.outcomes + (assessment.outcome,))
        notes[text] = note
        markers.append(note.marker)
    return ",".join(markers)


def _check_overrides(outcomes: Sequence[SofOutcome], overrides: Sequence[Override]) -> None:
    names = [o.name for o in outcomes]
    if len(set(names)) != len(names):
        raise DataError(f"SoF: outcome names repeated: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for item in overrides:
        if item.outcome not in names:
            raise DataError(f"override for outcome {item.outcome!r}: no such outcome in the table {names}")


def _absolute_rows(outcome: SofOutcome, per: int) -> list[AbsoluteEffect | None]:
    if outcome.continuous is not None:
        if outcome.continuous.effect != outcome.evidence.effect:
            raise DataError(f"outcome {outcome.name!r}: continuous effect differs from the evidence effect")
        outcome.continuous.validated(outcome.name)
        return [None]
    return [absolute_effect(outcome.evidence.effect, c, per=per, outcome=outcome.name)
            for c in outcome.rows_of_control()]


def _tidy_row(outcome: SofOutcome, assessment: CertaintyAssessment, absolute: AbsoluteEffect | None) -> dict:
    ev, effect = outcome.evidence, outcome.evidence.effect
    row = {
        "outcome": outcome.name, "follow_up": outcome.follow_up,
        "n_participants": ev.n_participants, "n_studies": ev.k,
        "n_rct": sum(s.design == "RCT" for s in ev.studies), "n_nrs": sum(s.design == "NRS" for s in ev.studies),
        "measure": effect.measure, "estimate": effect.estimate, "ci_low": effect.ci_low, "ci_high": effect.ci_high,
        "start_level": assessment.start_level, "certainty_level": assessment.level,
        "certainty": assessment.word.lower(),
    }
    for domain in DOMAINS:
        rating = assessment.domain(domain)
        row[f"{domain}"] = rating.rating
        row[f"{domain}_overridden"] = rating.overridden
    row["upgrade_levels"] = sum(u.levels for u in assessment.upgrades)
    if absolute is not None:
        row.update({k: v for k, v in absolute.to_dict().items() if k != "measure"})
    elif outcome.continuous is not None:
        row.update({"control_mean": outcome.continuous.control_mean, "units": outcome.continuous.units})
    return row


# ----------------------------------------------------------------------------- formatting

def _participants_text(evidence: EvidenceBody, thousands: bool) -> str:
    n_rct = sum(s.design == "RCT" for s in evidence.studies)
    n_nrs = evidence.k - n_rct
    parts = []
    if n_rct:
        parts.append(f"{n_rct} RCT{'s' if n_rct > 1 else ''}")
    if n_nrs:
        parts.append(f"{n_nrs} non-randomised stud{'ies' if n_nrs > 1 else 'y'}")
    return f"{format_count(evidence.n_participants, thousands=thousands)} ({', '.join(parts)})"


def _outcome_text(outcome: SofOutcome) -> str:
    return f"{outcome.name} (follow-up: {outcome.follow_up})" if outcome.follow_up else outcome.name


def _display_row(
    outcome: SofOutcome, assessment: CertaintyAssessment, absolute: AbsoluteEffect | None,
    markers: str, labels: tuple[str, str], thousands: bool,
) -> dict[str, str]:
    intervention, comparator = labels
    certainty = format_certainty(assessment.level) + (f" {markers}" if markers else "")
    row = {
        "Outcomes": _outcome_text(outcome),
        "№ of participants (studies)": _participants_text(outcome.evidence, thousands),
        "Certainty of the evidence (GRADE)": certainty,
        "Relative effect (95% CI)": format_relative_effect(outcome.evidence.effect),
    }
    if absolute is not None:
        row["Assumed control risk"] = absolute.control.label
        row[f"Risk with {comparator}"] = format_frequency(absolute.control.risk, absolute.per)
        row[f"Risk with {intervention}"] = format_risk_with_intervention(absolute)
        row[f"Risk difference with {intervention}"] = format_risk_difference(absolute)
    else:
        row["Assumed control risk"] = "—"
        row[f"Risk with {comparator}"] = format_control_mean(outcome.continuous, outcome.name)
        row[f"Risk with {intervention}"] = "—"
        row[f"Risk difference with {intervention}"] = format_continuous_difference(outcome.continuous)
    row["Comments"] = outcome.comments
    row["Footnotes"] = markers
    return row


def build_sof(
    outcomes: Iterable[SofOutcome], *, intervention: str = "MSC", comparator: str = "control",
    overrides: Iterable[Override] = (), params: GradeParameters | None = None, per: int = 1000,
    thousands_in_counts: bool = False,
) -> SofTable:
    """Build the SoF table.

    Parameters
    ----------
    outcomes : iterable of SofOutcome
        Row groups, in table order; names must be unique.
    intervention, comparator : str
        Used in the column headers ("Risk with standard care", "Risk difference with MSC").
    overrides : iterable of Override
        Each must name an outcome of the table.
    params : GradeParameters, optional
    per : int
        Frequencies per ``per`` participants (1,000).
    thousands_in_counts : bool
        Thousands separator in "№ of participants" (GRADEpro prints "2637 (9 RCTs)").

    Returns
    -------
    SofTable
    """
    outcomes, overrides = list(outcomes), list(overrides)
    if not outcomes:
        raise DataError("SoF: no outcomes")
    params = params or GradeParameters()
    _check_overrides(outcomes, overrides)
    display, tidy, assessments = [], [], []
    notes: dict[str, Footnote] = {}
    for outcome in outcomes:
        assessment = assess_certainty(outcome.evidence, params, overrides)
        markers = _attach_footnotes(assessment, notes)
        for absolute in _absolute_rows(outcome, per):
            display.append(_display_row(outcome, assessment, absolute, markers,
                                        (intervention, comparator), thousands_in_counts))
            tidy.append(_tidy_row(outcome, assessment, absolute))
        assessments.append(assessment)
    footnotes = tuple(sorted(notes.values(), key=lambda n: (len(n.marker), n.marker)))
    return SofTable(pd.DataFrame(display), pd.DataFrame(tidy), footnotes, tuple(assessments), params=params)
