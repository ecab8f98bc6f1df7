"""Certainty of evidence by GRADE's five downgrading domains, with stated rules and overrides.

Each domain has a data-driven default rule whose thresholds are parameters of
:class:`GradeParameters` (with their source). Every rating carries a reason text made from the
numbers (it becomes a SoF footnote). An :class:`Override` replaces a rule's rating for one
outcome and domain and is marked as such in the output.

Rules (defaults; see :class:`GradeParameters` for every threshold and its source)
--------------------------------------------------------------------------------------
Start
    Randomised trials only: high. Non-randomised studies only: low (GRADE 3). A body mixing
    both starts at ``mixed_start_level`` (low): the level of its lowest design. An outcome may
    give its own start with a reason (``EvidenceBody.start_override``).
Risk of bias
    Study judgements (RoB 2: low / some concerns / high; ROBINS-I: low / moderate / serious /
    critical, mapped to low / some concerns / high / high; RoB 1 "unclear" = some concerns)
    are weighted by the analysis weight. Very serious if >= 50 % of the weight is at high
    risk; serious if >= 25 % is at high risk or < 75 % is at low risk; else not serious.
Inconsistency
    Single study: not serious (not assessable). Otherwise a heterogeneity signal is
    I^2 >= 50 % with Q p < 0.10, or two study CIs that do not overlap. Serious if there is a
    signal and the study point estimates lie on both sides of the decision threshold (or,
    without study estimates, the prediction interval crosses it; if neither is given, the
    side condition is assumed met). Very serious if also I^2 >= 75 % with Q p < 0.10, the
    estimates (or the prediction interval) shown on both sides, and no study CIs known to
    overlap all pairwise.
Indirectness
    Not serious by default (a judgement): set by override.
Imprecision
    Two reasons: (a) the CI includes no effect and an appreciable effect (RR/OR/HR < 0.75 or
    > 1.25; SMD beyond +-0.5; MD beyond +-MID when given; RD: no effect only), and (b) fewer
    participants than the OIS (binary: RRR 25 %, alpha 0.05, power 0.80 at the control risk;
    continuous: MID and SD, else the rule of thumb N < 400). Either reason: serious (the two
    are routes to the same downgrade; ``imprecision_reasons_add`` makes both together very
    serious). Very serious: CI includes both appreciable benefit and harm, N below half the
    OIS, N < 100, or fewer than 30 events.
Publication bias
    Not assessable with fewer than 10 studies (rated not serious, labelled so). With >= 10
    studies and an Egger p < 0.10: serious ("strongly suspected"); otherwise "undetected".

References
----------
.. [1] Balshem H, Helfand M, Schünemann HJ, et al. GRADE guidelines: 3. Rating the quality of
   evidence. J Clin Epidemiol 2011;64:401-406.
.. [2] Guyatt GH, Oxman AD, Vist G, et al. GRADE guidelines: 4. Rating the quality of
   evidence-study limitations (risk of bias). J Clin Epidemiol 2011;64:407-415.
.. [3] Guyatt GH, Oxman AD, Montori V, et al. GRADE guidelines: 5. Rating the quality of
   evidence-publication bias. J Clin Epidemiol 2011;64:1277-1282.
.. [4] Guyatt GH, Oxman AD, Kunz R, et al. GRADE guidelines 6. Rating the quality of
   evidence-imprecision. J Clin Epidemiol 2011;64:1283-1293.
.. [5] Guyatt GH, Oxman AD, Kunz R, et al. GRADE guidelines: 7. Rating the quality of
   evidence-inconsistency. J Clin Epidemiol 2011;64:1294-1302.
.. [6] Guyatt GH, Oxman AD, Sultan S, et al. GRADE guidelines: 9. Rating up the quality of
   evidence. J Clin Epidemiol 2011;64:1311-1316.
.. [7] Zeng L, Brignardello-Petersen R, Hultcrantz M, et al. GRADE Guidance 34: update on
   rating imprecision using a minimally contextualized approach. J Clin Epidemiol
   2022;150:216-224.
.. [8] Guyatt G, Zhao Y, Mayer M, et al. GRADE guidance 36: updates to GRADE's approach to
   addressing inconsistency. J Clin Epidemiol 2023;158:70-83.
.. [9] Pollock A, Farmer SE, Brady MC, et al. An algorithm was developed to assign GRADE levels
   of evidence to comparisons within systematic reviews. J Clin Epidemiol 2016;70:106-110.
.. [10] Deeks JJ, Higgins JPT, Altman DG (eds). Chapter 10: Analysing data and undertaking
   meta-analyses, section 10.10.2 (I^2 bands; Q test at p < 0.10). Cochrane Handbook v6.4.
.. [11] Page MJ, Higgins JPT, Sterne JAC. Chapter 13: Assessing risk of bias due to missing
   results, section 13.3.5.4 (tests for funnel plot asymmetry only with >= 10 studies).
.. [12] Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a
   simple, graphical test. BMJ 1997;315:629-634 (asymmetry at p < 0.10).
.. [13] Schünemann H, Brożek J, Guyatt G, Oxman A (eds). GRADE Handbook, 2013, section
   5.2.4.1 (continuous outcomes without MID: effect size 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations

from mscmeta.engine.validation import DataError
from mscmeta.engine.grade.absolute_effects import RATIO_MEASURES, EffectEstimate
from mscmeta.engine.grade.text import CERTAINTY_WORDS, format_certainty, format_decimal, format_p, format_percent
from mscmeta.engine.grade.information_size import InformationSize, binary_ois, continuous_ois

#: Ratings of a downgrading domain, by levels rated down.
RATINGS: tuple[str, ...] = ("not serious", "serious", "very serious")
#: The five downgrading domains.
DOMAINS: tuple[str, ...] = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
#: Domain names as printed.
DOMAIN_TITLES: dict[str, str] = {
    "risk_of_bias": "Risk of bias", "inconsistency": "Inconsistency", "indirectness": "Indirectness",
    "imprecision": "Imprecision", "publication_bias": "Publication bias", "large_effect": "Large effect",
}
#: Study designs: randomised (RCT) and non-randomised (NRS).
DESIGNS: tuple[str, ...] = ("RCT", "NRS")
#: Study-level risk-of-bias judgements and their tier (RoB 2, ROBINS-I, RoB 1).
ROB_TIERS: dict[str, str] = {
    "low": "low", "some concerns": "some concerns", "high": "high",
    "moderate": "some concerns", "serious": "high", "critical": "high", "unclear": "some concerns",
}
LEVEL_NAMES: dict[str, int] = {"high": 4, "moderate": 3, "low": 2, "very low": 1}


@dataclass(frozen=True)
class GradeParameters:
    """Thresholds of the default rules, each with its source.

    Attributes
    ----------
    mixed_start_level : int
        Start of a body mixing randomised and non-randomised studies (2 = low: the lowest
        design present). Engine rule; GRADE 24 (Cuello-Garcia 2022) advises rating the two
        bodies separately and presenting both.
    rob_very_serious_high_share : float
        Weight share at high risk from which risk of bias is very serious (0.50: "most
        information" from high-risk studies; Cochrane Handbook 5.1 Table 12.2.d, GRADE 4).
    rob_serious_high_share : float
        Weight share at high risk from which risk of bias is serious (0.25; complement of
        Pollock 2016's ">= 75 % at low risk").
    rob_min_low_share : float
        Serious if less than this weight share is at low risk (0.75; Pollock 2016).
    i2_serious, i2_very_serious : float
        I^2 (percent) from which heterogeneity counts as substantial (50) / considerable (75)
        (Cochrane Handbook 10.10.2 bands; GRADE 7).
    q_alpha : float
        Q test significance level (0.10; Cochrane Handbook 10.10.2).
    ois_rrr, ois_alpha, ois_power : float
        OIS of a binary outcome: RRR 0.25, alpha 0.05, power 0.80 (GRADE 6).
    ratio_thresholds : tuple of float
        Appreciable benefit / harm of RR, OR, HR: (0.75, 1.25) (GRADE 6 "rough guide").
    smd_thresholds : tuple of float
        Appreciable SMD: (-0.5, 0.5) (GRADE Handbook 5.2.4.1 without a known MID).
    continuous_rule_of_thumb_n : int
        Total N below which a continuous outcome fails the OIS when no MID/SD is given (400;
        GRADE 6).
    ois_far_fraction : float
        N below this fraction of the OIS is "far less than the OIS": very serious (0.5; our
        operationalisation of GRADE 34).
    very_few_participants : int
        Fewer participants: very serious (100; Pollock 2016 "1-99 participants").
    very_few_events : int
        Fewer total events (binary): very serious (30; engine choice, not from GRADE).
    pb_min_studies : int
        Fewest studies for a funnel-plot asymmetry test (10; Cochrane Handbook 13.3.5.4).
    egger_alpha : float
        Egger test significance level (0.10; Egger 1997).
    imprecision_reasons_add : bool
        Rate down two levels when both imprecision reasons hold (CI and OIS). Off by default:
        GRADE 6 and the GRADE Handbook §5.2.4 treat the OIS and the CI as two routes to the
        same downgrade, and reserve two levels for very wide CIs (appreciable benefit *and*
        harm) or very little information (GRADE 34).
    allow_upgrade : bool
        Rate up non-randomised bodies for a large effect (GRADE 9); off by default.
    large_effect, very_large_effect : float
        Ratio from which an effect is large (2; RR > 2 or < 0.5) / very large (5) (GRADE 9).
    """

    mixed_start_level: int = 2
    rob_very_serious_high_share: float = 0.50
    rob_serious_high_share: float = 0.25
    rob_min_low_share: float = 0.75
    i2_serious: float = 50.0
    i2_very_serious: float = 75.0
    q_alpha: float = 0.10
    ois_rrr: float = 0.25
    ois_alpha: float = 0.05
    ois_power: float = 0.80
    ratio_thresholds: tuple[float, float] = (0.75, 1.25)
    smd_thresholds: tuple[float, float] = (-0.5, 0.5)
    continuous_rule_of_thumb_n: int = 400
    ois_far_fraction: float = 0.5
    very_few_participants: int = 100
    very_few_events: int = 30
    pb_min_studies: int = 10
    egger_alpha: float = 0.10
    imprecision_reasons_add: bool = False
    allow_upgrade: bool = False
    large_effect: float = 2.0
    very_large_effect: float = 5.0

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class StudyEvidence:
    """One study of a body of evidence.

    Attributes
    ----------
    study : str
        Study label.
    design : {"RCT", "NRS"}
        Randomised trial or non-randomised study.
    risk_of_bias : str
        Overall judgement (see :data:`ROB_TIERS`).
    weight : float
        Weight in the analysis (any positive scale; shares are taken).
    estimate, ci_low, ci_high : float or None
        The study's effect and CI on the pooled measure's natural scale (for inconsistency).
    """

    study: str
    design: str
    risk_of_bias: str
    weight: float
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Heterogeneity:
    """Heterogeneity statistics of the pooled analysis.

    Attributes
    ----------
    i2 : float or None
        I^2 in percent.
    i2_ci : tuple of float or None
        Its confidence interval, percent.
    q_p : float or None
        p-value of Cochran's Q test.
    prediction_interval : tuple of float or None
        Prediction interval, natural scale.
    """

    i2: float | None = None
    i2_ci: tuple[float, float] | None = None
    q_p: float | None = None
    prediction_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class EvidenceBody:
    """Everything the domain rules read for one outcome.

    Attributes
    ----------
    outcome : str
    studies : tuple of StudyEvidence
    effect : EffectEstimate
        Pooled effect (RR, OR, HR, RD, MD or SMD).
    n_participants : int
        Participants in the analysis.
    n_events : int or None
        Total events, both arms (binary outcomes).
    control_risk : float or None
        Control risk for the OIS (binary outcomes).
    heterogeneity : Heterogeneity or None
    egger_p : float or None
        Egger test p-value (read only with >= ``pb_min_studies`` studies).
    sd, mid : float or None
        SD and minimal important difference of a continuous outcome (OIS, thresholds).
    thresholds : tuple of float or None
        Appreciable benefit / harm on the effect scale, replacing the defaults.
    start_override : tuple of (str, str) or None
        ``(level, reason)``, e.g. ``("high", "ROBINS-I used; GRADE 18")``.
    """

    outcome: str
    studies: tuple[StudyEvidence, ...]
    effect: EffectEstimate
    n_participants: int
    n_events: int | None = None
    control_risk: float | None = None
    heterogeneity: Heterogeneity | None = None
    egger_p: float | None = None
    sd: float | None = None
    mid: float | None = None
    thresholds: tuple[float, float] | None = None
    start_override: tuple[str, str] | None = None

    @property
    def k(self) -> int:
        return len(self.studies)

    def to_dict(self) -> dict[str, object]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["studies"] = [s.to_dict() for s in self.studies]
        data["effect"] = self.effect.to_dict()
        data["heterogeneity"] = self.heterogeneity.to_dict() if self.heterogeneity else None
        return data


@dataclass(frozen=True)
class Override:
    """A judgement replacing a rule's rating for one outcome and domain.

    Attributes
    ----------
    outcome, domain : str
    rating : {"not serious", "serious", "very serious"}
    reason : str
        Footnote text.
    source : str
        Who or what supports it (e.g. "panel judgement 2024-05-02", a citation).
    """

    outcome: str
    domain: str
    rating: str
    reason: str
    source: str = ""

    def validated(self) -> Override:
        where = f"override for outcome {self.outcome!r}, domain {self.domain!r}"
        if self.domain not in DOMAINS:
            raise DataError(f"{where}: domain not one of {list(DOMAINS)}")
        if self.rating not in RATINGS:
            raise DataError(f"{where}: rating {self.rating!r} not one of {list(RATINGS)}")
        if not str(self.reason).strip():
            raise DataError(f"{where}: reason is empty")
        return self

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class DomainRating:
    """The rating of one domain with its reason (a SoF footnote).

    Attributes
    ----------
    domain : str
    rating : str
        ``"not serious"``, ``"serious"`` or ``"very serious"``.
    reason : str
    overridden : bool
        True when an :class:`Override` replaced the rule's rating.
    rule_rating : str
        What the rule said (equals ``rating`` unless overridden).
    source : str
    label : str
        Column text (publication bias: "undetected" / "strongly suspected" / "not assessable").
    details : dict
        The numbers the rule used.
    """

    domain: str
    rating: str
    reason: str
    overridden: bool = False
    rule_rating: str = ""
    source: str = ""
    label: str = ""
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return RATINGS.index(self.rating)

    def __str__(self) -> str:
        mark = " (override)" if self.overridden else ""
        return f"{DOMAIN_TITLES[self.domain]}: {self.rating}{mark} - {self.reason}"

    def to_dict(self) -> dict[str, object]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["details"] = dict(self.details)
        data["levels"] = self.levels
        return data


@dataclass(frozen=True)
class Upgrade:
    """A rating up (large effect), with its reason."""

    domain: str
    levels: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"domain": self.domain, "levels": self.levels, "reason": self.reason}


@dataclass(frozen=True)
class CertaintyAssessment:
    """Certainty of evidence of one outcome.

    Attributes
    ----------
    outcome : str
    start_level : int
        4 (high) or 2 (low), or the start override.
    start_reason : str
    domains : tuple of DomainRating
        In the order of :data:`DOMAINS`.
    upgrades : tuple of Upgrade
    """

    outcome: str
    start_level: int
    start_reason: str
    domains: tuple[DomainRating, ...]
    upgrades: tuple[Upgrade, ...] = ()

    @property
    def level(self) -> int:
        """Final level: start - levels down + levels up, floored at 1, capped at 4."""
        down = sum(d.levels for d in self.domains)
        up = sum(u.levels for u in self.upgrades)
        return max(1, min(4, self.start_level - down + up))

    @property
    def word(self) -> str:
        return CERTAINTY_WORDS[self.level]

    @property
    def symbols(self) -> str:
        return format_certainty(self.level).split(" ")[0]

    def domain(self, name: str) -> DomainRating:
        for rating in self.domains:
            if rating.domain == name:
                return rating
        raise DataError(f"outcome {self.outcome!r}: no domain {name!r}")

    def __str__(self) -> str:
        return format_certainty(self.level)

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome, "start_level": self.start_level, "start_reason": self.start_reason,
            "level": self.level, "certainty": self.word.lower(), "symbols": self.symbols,
            "domains": [d.to_dict() for d in self.domains], "upgrades": [u.to_dict() for u in self.upgrades],
        }


# ----------------------------------------------------------------------------- validation

def _check_number(value: object, outcome: str, name: str, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise DataError(f"outcome {outcome!r}: {name} ({value!r}) not a number in [{low:g}, {high:g}]")


def _validate_study(study: StudyEvidence, outcome: str) -> None:
    where = f"outcome {outcome!r}: study {study.study!r}"
    if study.design not in DESIGNS:
        raise DataError(f"{where}: design {study.design!r} not one of {list(DESIGNS)}")
    if study.risk_of_bias not in ROB_TIERS:
        raise DataError(f"{where}: risk_of_bias {study.risk_of_bias!r} not one of {list(ROB_TIERS)}")
    _check_number(study.weight, outcome, f"study {study.study!r} weight", 0.0, math.inf)
    values = (study.estimate, study.ci_low, study.ci_high)
    if any(v is not None for v in values):
        if any(v is None or not math.isfinite(v) for v in values):
            raise DataError(f"{where}: estimate and CI must be given together ({values})")
        if not study.ci_low <= study.estimate <= study.ci_high:
            raise DataError(f"{where}: estimate {study.estimate} not inside its CI")


def validate_evidence(evidence: EvidenceBody) -> EvidenceBody:
    """Check an evidence body; raise :class:`DataError` naming outcome, field and value."""
    outcome = evidence.outcome
    if not str(outcome).strip():
        raise DataError("evidence: outcome name is empty")
    if not evidence.studies:
        raise DataError(f"outcome {outcome!r}: no studies")
    for study in evidence.studies:
        _validate_study(study, outcome)
    if sum(s.weight for s in evidence.studies) <= 0:
        raise DataError(f"outcome {outcome!r}: study weights sum to 0")
    evidence.effect.validated(outcome)
    n = evidence.n_participants
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"outcome {outcome!r}: n_participants ({n!r}) not a positive whole number")
    if evidence.n_events is not None:
        _check_number(evidence.n_events, outcome, "n_events", 0, n)
    if evidence.control_risk is not None:
        _check_number(evidence.control_risk, outcome, "control_risk", 0.0, 1.0)
    if evidence.egger_p is not None:
        _check_number(evidence.egger_p, outcome, "egger_p", 0.0, 1.0)
    _validate_heterogeneity(evidence.heterogeneity, outcome)
    _validate_thresholds(evidence)
    return evidence


def _validate_heterogeneity(het: Heterogeneity | None, outcome: str) -> None:
    if het is None:
        return
    if het.i2 is not None:
        _check_number(het.i2, outcome, "I2", 0.0, 100.0)
    if het.q_p is not None:
        _check_number(het.q_p, outcome, "Q p-value", 0.0, 1.0)
    for name, pair in (("I2 CI", het.i2_ci), ("prediction interval", het.prediction_interval)):
        if pair is not None and (len(pair) != 2 or not pair[0] <= pair[1]):
            raise DataError(f"outcome {outcome!r}: {name} {pair!r} is not (low, high)")


def _validate_thresholds(evidence: EvidenceBody) -> None:
    outcome, null = evidence.outcome, evidence.effect.null_value
    if evidence.thresholds is not None:
        low, high = evidence.thresholds
        if not low < null < high:
            raise DataError(f"outcome {outcome!r}: thresholds {evidence.thresholds!r} must bracket {null:g}")
    for name in ("sd", "mid"):
        value = getattr(evidence, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise DataError(f"outcome {outcome!r}: {name} ({value!r}) must be positive")


# ----------------------------------------------------------------------------- start

def start_level(evidence: EvidenceBody, params: GradeParameters) -> tuple[int, str]:
    """Start level and reason: RCTs high, NRS low, mixed ``params.mixed_start_level`` (GRADE 3)."""
    if evidence.start_override is not None:
        word, reason = evidence.start_override
        if word not in LEVEL_NAMES or not str(reason).strip():
            raise DataError(f"outcome {evidence.outcome!r}: start_override {evidence.start_override!r} "
                            f"needs a level in {list(LEVEL_NAMES)} and a reason")
        return LEVEL_NAMES[word], f"{reason} (start set by override)"
    designs = {s.design for s in evidence.studies}
    if designs == {"RCT"}:
        return 4, "randomised trials start at high certainty (GRADE 3)"
    if designs == {"NRS"}:
        return 2, "non-randomised studies start at low certainty (GRADE 3)"
    word = CERTAINTY_WORDS[params.mixed_start_level].lower()
    return params.mixed_start_level, f"randomised and non-randomised studies pooled: start at {word} (lowest design)"


# ----------------------------------------------------------------------------- risk of bias

def _weight_shares(studies: Sequence[StudyEvidence]) -> dict[str, float]:
    total = sum(s.weight for s in studies)
    shares = {"low": 0.0, "some concerns": 0.0, "high": 0.0}
    for study in studies:
        shares[ROB_TIERS[study.risk_of_bias]] += study.weight / total
    return shares


def rate_risk_of_bias(evidence: EvidenceBody, params: GradeParameters) -> DomainRating:
    """Risk of bias from the weight shares at high risk and at low risk (GRADE 4, Pollock 2016)."""
    shares = _weight_shares(evidence.studies)
    high, low = shares["high"], shares["low"]
    if high >= params.rob_very_serious_high_share:
        rating = "very serious"
    elif high >= params.rob_serious_high_share or low < params.rob_min_low_share:
        rating = "serious"
    else:
        rating = "not serious"
    reason = (f"{format_percent(100 * high)} of the weight from studies at high risk of bias, "
              f"{format_percent(100 * shares['some concerns'])} at some concerns, "
              f"{format_percent(100 * low)} at low risk")
    return DomainRating("risk_of_bias", rating, reason, rule_rating=rating, details=shares)


# ----------------------------------------------------------------------------- inconsistency

def _non_overlapping_pairs(studies: Sequence[StudyEvidence]) -> int | None:
    with_ci = [s for s in studies if s.ci_low is not None]
    if len(with_ci) < 2:
        return None
    return sum(1 for a, b in combinations(with_ci, 2) if a.ci_low > b.ci_high or b.ci_low > a.ci_high)


def _both_sides(evidence: EvidenceBody, target: float) -> bool | None:
    estimates = [s.estimate for s in evidence.studies if s.estimate is not None]
    if len(estimates) >= 2:
        return min(estimates) < target < max(estimates)
    het = evidence.heterogeneity
    if het is not None and het.prediction_interval is not None:
        low, high = het.prediction_interval
        return low < target < high
    return None


def _inconsistency_text(het: Heterogeneity, sides: bool | None, pairs: int | None, target: str) -> str:
    parts = []
    if het.i2 is not None:
        ci = f" (95% CI {format_percent(het.i2_ci[0])} to {format_percent(het.i2_ci[1])})" if het.i2_ci else ""
        parts.append(f"I² = {format_percent(het.i2)}{ci}")
    if het.q_p is not None:
        parts.append(f"Q p = {format_p(het.q_p)}")
    if sides is not None:
        parts.append(f"point estimates {'on both sides' if sides else 'on one side'} of {target}")
    if pairs is not None:
        parts.append(f"{pairs} pair(s) of study CIs without overlap" if pairs else "study CIs overlap")
    if het.prediction_interval is not None:
        low, high = het.prediction_interval
        parts.append(f"prediction interval {format_decimal(low)} to {format_decimal(high)}")
    return "; ".join(parts) or "no heterogeneity statistics given"


def rate_inconsistency(evidence: EvidenceBody, params: GradeParameters) -> DomainRating:
    """Inconsistency from I^2, Q p, CI overlap and point estimates vs the threshold (GRADE 7, 36)."""
    if evidence.k < 2:
        return DomainRating("inconsistency", "not serious", "single study: inconsistency not assessable",
                            rule_rating="not serious", details={"k": evidence.k})
    het = evidence.heterogeneity or Heterogeneity()
    target = evidence.effect.null_value
    pairs = _non_overlapping_pairs(evidence.studies)
    sides = _both_sides(evidence, target)
    q_signal = het.q_p is None or het.q_p < params.q_alpha
    stat = het.i2 is not None and het.i2 >= params.i2_serious and q_signal
    signal = stat or bool(pairs)
    rating = "not serious"
    if signal and sides is not False:
        rating = "serious"
        if stat and het.i2 >= params.i2_very_serious and sides is True and pairs != 0:
            rating = "very serious"
    details = {"i2": het.i2, "i2_ci": het.i2_ci, "q_p": het.q_p, "both_sides": sides,
               "non_overlapping_pairs": pairs, "threshold": target}
    reason = _inconsistency_text(het, sides, pairs, "no effect")
    return DomainRating("inconsistency", rating, reason, rule_rating=rating, details=details)


# ----------------------------------------------------------------------------- indirectness

def rate_indirectness(evidence: EvidenceBody, params: GradeParameters) -> DomainRating:
    """Not serious by default: indirectness is a judgement, set by override."""
    return DomainRating("indirectness", "not serious",
                        "no indirectness assumed by default (a judgement; set by override)",
                        rule_rating="not serious")


# ----------------------------------------------------------------------------- imprecision

def decision_thresholds(evidence: EvidenceBody, params: GradeParameters) -> tuple[float, float] | None:
    """Appreciable benefit / harm thresholds on the effect scale (None: no effect only)."""
    if evidence.thresholds is not None:
        return evidence.thresholds
    measure = evidence.effect.measure
    if measure in RATIO_MEASURES:
        return params.ratio_thresholds
    if measure == "SMD":
        return params.smd_thresholds
    if measure == "MD" and evidence.mid is not None:
        return (-evidence.mid, evidence.mid)
    return None


def information_size(evidence: EvidenceBody, params: GradeParameters) -> InformationSize | None:
    """OIS of the outcome, or None when it cannot be computed (continuous: rule of thumb)."""
    measure = evidence.effect.measure
    kwargs = {"alpha": params.ois_alpha, "power": params.ois_power}
    if measure in RATIO_MEASURES or measure == "RD":
        risk = evidence.control_risk
        if risk is None or not 0 < risk < 1:
            return None
        return binary_ois(risk, rrr=params.ois_rrr, **kwargs)
    if measure == "SMD":
        return continuous_ois(1.0, abs(params.smd_thresholds[1]), **kwargs)
    if evidence.sd is not None and evidence.mid is not None:
        return continuous_ois(evidence.sd, evidence.mid, **kwargs)
    return None


def _ci_position(evidence: EvidenceBody, thresholds: tuple[float, float] | None) -> dict[str, bool]:
    effect = evidence.effect
    includes_null = effect.ci_low <= effect.null_value <= effect.ci_high
    below = thresholds is not None and effect.ci_low < thresholds[0]
    above = thresholds is not None and effect.ci_high > thresholds[1]
    appreciable = (below or above) if thresholds is not None else True
    return {"includes_null": includes_null, "appreciable_benefit_or_harm": below or above,
            "both_appreciable": below and above, "ci_reason": includes_null and appreciable}


def _ois_position(evidence: EvidenceBody, params: GradeParameters, ois: InformationSize | None) -> dict:
    n = evidence.n_participants
    if ois is None:
        needed = params.continuous_rule_of_thumb_n if evidence.effect.measure in {"MD", "SMD"} else None
        return {"ois": needed, "ois_reason": needed is not None and n < needed, "far_below": False}
    return {"ois": ois.total, "ois_reason": n < ois.total, "far_below": n < params.ois_far_fraction * ois.total}


def _imprecision_text(evidence: EvidenceBody, ci: dict, pos: dict, ois: InformationSize | None) -> str:
    e = evidence.effect
    ci_text = f"95% CI {format_decimal(e.ci_low)} to {format_decimal(e.ci_high)}"
    if ci["both_appreciable"]:
        ci_text += " includes appreciable benefit and appreciable harm"
    elif ci["ci_reason"]:
        ci_text += " includes no effect and an appreciable effect" if ci["appreciable_benefit_or_harm"] \
            else " includes no effect"
    else:
        ci_text += " excludes no effect" if not ci["includes_null"] else " excludes appreciable effects"
    n_text = f"{evidence.n_participants:,} participants"
    if evidence.n_events is not None:
        n_text += f", {evidence.n_events:,} events"
    if pos["ois"] is None:
        return f"{ci_text}; {n_text} (OIS not computable: no control risk)"
    basis = f"OIS {pos['ois']:,}" + (f": {ois.basis}" if ois else ": rule of thumb for continuous outcomes")
    return f"{ci_text}; {n_text} vs {basis}"


def rate_imprecision(evidence: EvidenceBody, params: GradeParameters) -> DomainRating:
    """Imprecision: CI vs no effect and appreciable thresholds, and N vs the OIS (GRADE 6, 34)."""
    thresholds = decision_thresholds(evidence, params)
    ois = information_size(evidence, params)
    ci = _ci_position(evidence, thresholds)
    pos = _ois_position(evidence, params, ois)
    few_events = evidence.n_events is not None and evidence.n_events < params.very_few_events
    few_people = evidence.n_participants < params.very_few_participants
    reasons = int(ci["ci_reason"]) + int(pos["ois_reason"])
    very = ci["both_appreciable"] or pos["far_below"] or few_events or few_people
    if params.imprecision_reasons_add and reasons == 2:
        very = True
    rating = RATINGS[2] if very else RATINGS[min(reasons, 1)]
    details = {**ci, **pos, "thresholds": thresholds, "few_events": few_events, "few_participants": few_people}
    reason = _imprecision_text(evidence, ci, pos, ois)
    if few_events or few_people:
        reason += "; very few events or participants"
    return DomainRating("imprecision", rating, reason, rule_rating=rating, details=details)


# ----------------------------------------------------------------------------- publication bias

def rate_publication_bias(evidence: EvidenceBody, params: GradeParameters) -> DomainRating:
    """Egger test read only with >= ``pb_min_studies`` studies (Cochrane Handbook 13.3.5.4).

    Counts the studies with an estimate when study estimates are given (a study without events
    in either arm adds nothing to a funnel plot), else all studies.
    """
    with_estimate = sum(s.estimate is not None for s in evidence.studies)
    k = with_estimate if with_estimate else evidence.k
    details = {"k": k, "egger_p": evidence.egger_p}
    if k < params.pb_min_studies:
        reason = f"not assessable: {k} studies (< {params.pb_min_studies}); funnel-plot tests not used"
        return DomainRating("publication_bias", "not serious", reason, rule_rating="not serious",
                            label="not assessable", details=details)
    if evidence.egger_p is not None and evidence.egger_p < params.egger_alpha:
        reason = f"Egger test p = {format_p(evidence.egger_p)} ({k} studies)"
        return DomainRating("publication_bias", "serious", reason, rule_rating="serious",
                            label="strongly suspected", details=details)
    shown = "no asymmetry test given"
    if evidence.egger_p is not None:
        shown = f"Egger test p = {format_p(evidence.egger_p)}"
    return DomainRating("publication_bias", "not serious", f"{shown} ({k} studies)",
                        rule_rating="not serious", label="undetected", details=details)


# ----------------------------------------------------------------------------- upgrading

def rate_large_effect(
    evidence: EvidenceBody, params: GradeParameters, start: int, domains: Sequence[DomainRating],
) -> tuple[Upgrade, ...]:
    """Rate up non-randomised evidence for a large effect (GRADE 9), only when asked.

    Applies when ``params.allow_upgrade``, the body starts low, no domain is rated down, the
    measure is a ratio and its CI excludes no effect: +1 if the estimate is beyond
    ``large_effect`` (RR > 2 or < 0.5), +2 beyond ``very_large_effect`` (RR > 5 or < 0.2).
    """
    effect = evidence.effect
    if not params.allow_upgrade or start > 2 or any(d.levels for d in domains):
        return ()
    if effect.measure not in RATIO_MEASURES or effect.ci_low <= 1 <= effect.ci_high:
        return ()
    size = max(effect.estimate, 1 / effect.estimate)
    levels = 2 if size >= params.very_large_effect else 1 if size >= params.large_effect else 0
    if not levels:
        return ()
    reason = f"{effect.measure} {format_decimal(effect.estimate)}: {'very ' if levels == 2 else ''}large effect"
    return (Upgrade("large_effect", levels, reason),)


# ----------------------------------------------------------------------------- overrides

def _overrides_for(outcome: str, overrides: Iterable[Override]) -> dict[str, Override]:
    chosen: dict[str, Override] = {}
    for item in overrides:
        item.validated()
        if item.outcome != outcome:
            continue
        if item.domain in chosen:
            raise DataError(f"override for outcome {outcome!r}, domain {item.domain!r}: given twice")
        chosen[item.domain] = item
    return chosen


def apply_override(rating: DomainRating, override: Override | None) -> DomainRating:
    """Replace a rule's rating by an override, keeping what the rule said in ``rule_rating``."""
    if override is None:
        return rating
    return replace(rating, rating=override.rating, reason=override.reason, overridden=True,
                   rule_rating=rating.rating, source=override.source)


# ----------------------------------------------------------------------------- certainty

_RULES = {
    "risk_of_bias": rate_risk_of_bias, "inconsistency": rate_inconsistency,
    "indirectness": rate_indirectness, "imprecision": rate_imprecision,
    "publication_bias": rate_publication_bias,
}


def assess_certainty(
    evidence: EvidenceBody, params: GradeParameters | None = None,
    overrides: Iterable[Override] = (),
) -> CertaintyAssessment:
    """Certainty of evidence of one outcome.

    Parameters
    ----------
    evidence : EvidenceBody
    params : GradeParameters, optional
        Rule thresholds (defaults documented on the class).
    overrides : iterable of Override
        Only those naming ``evidence.outcome`` apply; one per domain.

    Returns
    -------
    CertaintyAssessment
        Start level, the five domain ratings (rule or override, with reasons), upgrades and
        the final level (floored at very low).
    """
    params = params or GradeParameters()
    evidence = validate_evidence(evidence)
    chosen = _overrides_for(evidence.outcome, overrides)
    start, start_reason = start_level(evidence, params)
    domains = tuple(apply_override(_RULES[name](evidence, params), chosen.get(name)) for name in DOMAINS)
    upgrades = rate_large_effect(evidence, params, start, domains)
    return CertaintyAssessment(evidence.outcome, start, start_reason, domains, upgrades)
