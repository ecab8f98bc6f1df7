"""Certainty rules: every threshold at and across its boundary; overrides; certainty bounds.

The thresholds are those documented in GradeParameters (GRADE 3, 4, 5, 6, 7, 9, 34, 36;
Pollock 2016; Cochrane Handbook 10.10.2 and 13.3.5.4). The tests fix the rule's *reading* of
each threshold (">=" vs ">") so that a change of rule is visible.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscmeta.engine.validation import DataError
from mscmeta.engine.grade.absolute_effects import EffectEstimate
from mscmeta.engine.grade.domains import (
    DOMAINS, RATINGS, EvidenceBody, GradeParameters, Heterogeneity, Override, StudyEvidence,
    assess_certainty, information_size, rate_imprecision, rate_inconsistency,
    rate_publication_bias, rate_risk_of_bias, start_level,
)

P = GradeParameters()


def study(name="s", design="RCT", rob="low", weight=1.0, est=None, low=None, high=None):
    return StudyEvidence(name, design, rob, weight, est, low, high)


def body(studies=None, effect=("RR", 0.8, 0.7, 0.9), n=5000, **kwargs):
    studies = tuple(studies or [study("a"), study("b")])
    return EvidenceBody("Mortality", studies, EffectEstimate(*effect), n, **kwargs)


# ----------------------------------------------------------------------------- start (GRADE 3)

def test_start_levels():
    assert start_level(body([study(design="RCT")]), P)[0] == 4
    assert start_level(body([study(design="NRS")]), P)[0] == 2
    mixed = body([study("a", "RCT"), study("b", "NRS")])
    assert start_level(mixed, P) == (2, "randomised and non-randomised studies pooled: start at low (lowest design)")
    assert start_level(mixed, replace(P, mixed_start_level=4))[0] == 4
    chosen = body([study(design="NRS")], start_override=("high", "ROBINS-I, GRADE 18"))
    assert start_level(chosen, P) == (4, "ROBINS-I, GRADE 18 (start set by override)")
    with pytest.raises(DataError, match="start_override"):
        start_level(body(start_override=("great", "x")), P)


# ----------------------------------------------------------------------------- risk of bias

def rob_body(shares):
    """Weights: high, some concerns, low."""
    high, some, low = shares
    return body([study("h", rob="high", weight=high), study("s", rob="some concerns", weight=some),
                 study("l", rob="low", weight=low)])


@pytest.mark.parametrize(("shares", "expected"), [
    ((0.00, 0.24, 0.76), "not serious"),
    ((0.24, 0.00, 0.76), "not serious"),
    ((0.25, 0.00, 0.75), "serious"),       # high share at 25 %: serious (>=)
    ((0.00, 0.25, 0.75), "not serious"),   # low share exactly 75 %: not below it
    ((0.00, 0.26, 0.74), "serious"),       # low share below 75 % (Pollock 2016)
    ((0.49, 0.00, 0.51), "serious"),
    ((0.50, 0.00, 0.50), "very serious"),  # half the weight at high risk (>=)
])
def test_risk_of_bias_thresholds(shares, expected):
    rating = rate_risk_of_bias(rob_body(shares), P)
    assert rating.rating == expected


def test_risk_of_bias_maps_robins_i_and_reports_shares():
    ev = body([study("a", "NRS", "serious", 3), study("b", "NRS", "moderate", 1)])
    rating = rate_risk_of_bias(ev, P)
    assert rating.rating == "very serious"
    assert rating.reason == "75% of the weight from studies at high risk of bias, 25% at some concerns, 0% at low risk"
    critical = rate_risk_of_bias(body([study("a", rob="critical", weight=1), study("b", weight=3)]), P)
    assert critical.rating == "serious"


# ----------------------------------------------------------------------------- inconsistency

def incon(i2=None, q_p=None, ests=((0.6, 0.4, 0.9), (1.3, 1.0, 1.7)), pi=None, i2_ci=None):
    studies = [study(f"s{i}", est=e, low=lo, high=hi) for i, (e, lo, hi) in enumerate(ests)] if ests else None
    return body(studies, heterogeneity=Heterogeneity(i2, i2_ci, q_p, pi))


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"i2": 50.0, "q_p": 0.09}, "serious"),
    ({"i2": 49.9, "q_p": 0.09, "ests": ((0.6, 0.4, 1.1), (1.3, 1.0, 1.7))}, "not serious"),
    ({"i2": 60.0, "q_p": 0.10, "ests": ((0.6, 0.4, 1.1), (1.3, 1.0, 1.7))}, "not serious"),  # Q p < 0.10 needed
    ({"i2": 75.0, "q_p": 0.01}, "very serious"),        # I2 >= 75 and CIs without overlap
    ({"i2": 74.9, "q_p": 0.01}, "serious"),
    ({"i2": 90.0, "q_p": 0.001, "ests": ((0.3, 0.2, 0.45), (0.7, 0.5, 0.9))}, "not serious"),  # one side (GRADE 36)
    ({"i2": 0.0, "q_p": 0.5}, "serious"),               # CIs without overlap, both sides of 1
    ({"i2": 80.0, "q_p": 0.01, "ests": None}, "serious"),  # no study data, no PI: conservative
    ({"i2": 80.0, "q_p": 0.01, "ests": None, "pi": (0.5, 0.95)}, "not serious"),
    ({"i2": 80.0, "q_p": 0.01, "ests": None, "pi": (0.5, 1.6)}, "very serious"),
])
def test_inconsistency_rule(kwargs, expected):
    assert rate_inconsistency(incon(**kwargs), P).rating == expected


def test_inconsistency_single_study_and_reason_text():
    single = rate_inconsistency(body([study()]), P)
    assert (single.rating, single.reason) == ("not serious", "single study: inconsistency not assessable")
    rating = rate_inconsistency(incon(i2=62.0, q_p=0.03, i2_ci=(10.0, 85.0)), P)
    assert rating.reason.startswith("I² = 62% (95% CI 10% to 85%); Q p = 0.03; point estimates on both sides")


# ----------------------------------------------------------------------------- indirectness

def test_indirectness_default_and_override():
    default = assess_certainty(body()).domain("indirectness")
    assert default.rating == "not serious" and not default.overridden
    ov = Override("Mortality", "indirectness", "serious", "surrogate outcome", "panel 2024")
    rated = assess_certainty(body(), overrides=[ov]).domain("indirectness")
    assert (rated.rating, rated.overridden, rated.rule_rating, rated.source) == ("serious", True, "not serious", "panel 2024")
    assert rated.reason == "surrogate outcome"


# ----------------------------------------------------------------------------- imprecision

def ois_total(risk=0.2):
    return information_size(body(control_risk=risk), P).total


@pytest.mark.parametrize(("ci", "n_factor", "expected"), [
    ((0.80, 1.20), 1.0, "not serious"),     # includes 1, excludes 0.75 and 1.25; OIS met (N == OIS)
    ((0.70, 1.10), 1.0, "serious"),         # includes 1 and appreciable benefit
    ((0.80, 1.30), 1.0, "serious"),         # includes 1 and appreciable harm
    ((0.70, 1.30), 1.0, "very serious"),    # appreciable benefit and harm (GRADE 34)
    ((0.60, 0.90), 0.99, "serious"),        # CI fine, N below OIS
    ((0.60, 0.90), 0.50, "serious"),        # N exactly half the OIS: not "far below"
    ((0.60, 0.90), 0.49, "very serious"),   # N below half the OIS
    ((0.70, 1.10), 0.99, "serious"),        # both reasons: one level (GRADE 6, Handbook 5.2.4)
])
def test_imprecision_binary(ci, n_factor, expected):
    n = max(1, int(ois_total() * n_factor))
    ev = body(effect=("RR", 0.8 if ci[0] < 0.8 < ci[1] else 0.75, *ci), n=n, n_events=500, control_risk=0.2)
    assert rate_imprecision(ev, P).rating == expected


@pytest.mark.parametrize(("events", "n", "expected"), [
    (30, 5000, "not serious"), (29, 5000, "very serious"), (60, 100, "not serious"), (60, 99, "very serious"),
])
def test_imprecision_very_few_events_or_participants(events, n, expected):
    """Events < 30 (engine choice) or participants < 100 (Pollock 2016): very serious; OIS met (76)."""
    ev = body(effect=("RR", 0.5, 0.4, 0.6), n=n, n_events=events, control_risk=0.95)
    params = replace(P, ois_far_fraction=0.0)
    assert rate_imprecision(ev, params).rating == expected


def test_imprecision_continuous_thresholds():
    md = body(effect=("MD", -1.0, -2.0, 0.5), n=400)
    assert rate_imprecision(md, P).rating == "serious"               # includes 0, no MID; N = 400 meets rule of thumb
    assert rate_imprecision(replace(md, n_participants=399), P).rating == "serious"  # both reasons: one level
    additive = replace(P, imprecision_reasons_add=True)
    assert rate_imprecision(replace(md, n_participants=399), additive).rating == "very serious"
    assert rate_imprecision(replace(md, mid=3.0), P).rating == "not serious"   # CI within +-MID
    smd_fine = body(effect=("SMD", -0.1, -0.4, 0.2), n=500)
    smd_wide = body(effect=("SMD", -0.3, -0.6, 0.1), n=500)
    assert rate_imprecision(smd_fine, P).rating == "not serious"     # within +-0.5 (GRADE handbook 5.2.4.1)
    assert rate_imprecision(smd_wide, P).rating == "serious"


def test_imprecision_reason_names_ci_and_ois():
    ev = body(effect=("OR", 0.61, 0.40, 0.93), n=560, n_events=150, control_risk=0.30)
    rating = rate_imprecision(ev, P)
    assert rating.reason == ("95% CI 0.40 to 0.93 excludes no effect; 560 participants, 150 events vs OIS "
                             f"{ois_total(0.30):,}: control risk 30.0%, RRR 25%, alpha 0.05, power 0.8")


# ----------------------------------------------------------------------------- publication bias

@pytest.mark.parametrize(("k", "egger_p", "rating", "label"), [
    (9, 0.001, "not serious", "not assessable"),
    (10, 0.099, "serious", "strongly suspected"),
    (10, 0.10, "not serious", "undetected"),
    (12, None, "not serious", "undetected"),
])
def test_publication_bias(k, egger_p, rating, label):
    ev = body([study(f"s{i}") for i in range(k)], egger_p=egger_p)
    result = rate_publication_bias(ev, P)
    assert (result.rating, result.label) == (rating, label)


def test_publication_bias_counts_only_studies_with_an_estimate():
    """Studies without events in either arm (no estimate) add nothing to a funnel plot."""
    with_estimates = [study(f"s{i}", est=0.8, low=0.5, high=1.2) for i in range(9)]
    ev = body(with_estimates + [study("double zero", weight=0.0)], egger_p=0.01)
    result = rate_publication_bias(ev, P)
    assert (result.rating, result.label) == ("not serious", "not assessable")
    assert result.details["k"] == 9


def test_imprecision_both_reasons_two_levels_only_when_asked():
    n = max(1, int(ois_total() * 0.99))
    ev = body(effect=("RR", 0.8, 0.70, 1.10), n=n, n_events=500, control_risk=0.2)
    assert rate_imprecision(ev, P).rating == "serious"
    assert rate_imprecision(ev, replace(P, imprecision_reasons_add=True)).rating == "very serious"


# ----------------------------------------------------------------------------- certainty

def test_certainty_floor_and_symbols():
    ev = body([study("a", rob="high"), study("b", rob="high")], effect=("RR", 1.0, 0.5, 2.0), n=50,
              n_events=5, control_risk=0.1)
    result = assess_certainty(ev)
    assert result.level == 1 and str(result) == "⊕◯◯◯ Very low"
    assert result.start_level - sum(d.levels for d in result.domains) < 1


def test_certainty_levels_from_overrides():
    ev = body(effect=("RR", 0.8, 0.7, 0.9), n=5000, n_events=1000, control_risk=0.2)
    assert str(assess_certainty(ev)) == "⊕⊕⊕⊕ High"
    one = [Override("Mortality", "risk_of_bias", "serious", "x")]
    assert str(assess_certainty(ev, overrides=one)) == "⊕⊕⊕◯ Moderate"
    two = one + [Override("Mortality", "imprecision", "serious", "y")]
    assert str(assess_certainty(ev, overrides=two)) == "⊕⊕◯◯ Low"
    other = [Override("Other outcome", "imprecision", "very serious", "z")]
    assert assess_certainty(ev, overrides=other).level == 4


def test_large_effect_upgrade_only_when_asked():
    nrs = [study("a", "NRS"), study("b", "NRS")]
    large = body(nrs, effect=("RR", 0.45, 0.35, 0.58), n=20000, n_events=2000, control_risk=0.2)
    very = body(nrs, effect=("RR", 0.20, 0.15, 0.27), n=20000, n_events=2000, control_risk=0.2)
    edge = body(nrs, effect=("RR", 2.0, 1.6, 2.5), n=20000, n_events=2000, control_risk=0.2)
    on = replace(P, allow_upgrade=True)
    assert assess_certainty(large).level == 2
    assert assess_certainty(large, on).level == 3
    assert assess_certainty(very, on).level == 4
    assert assess_certainty(edge, on).level == 3    # RR exactly 2: large (>=)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("make", "message"), [
    (lambda: body([study(design="cohort")]), "study 's': design 'cohort'"),
    (lambda: body([study(rob="bad")]), "risk_of_bias 'bad'"),
    (lambda: body([study(weight=-1.0)]), "weight (-1.0)"),
    (lambda: body(n=0), "n_participants (0)"),
    (lambda: body(n_events=6000), "n_events (6000)"),
    (lambda: body(heterogeneity=Heterogeneity(i2=120.0)), "I2 (120.0)"),
    (lambda: body(heterogeneity=Heterogeneity(q_p=-0.1)), "Q p-value (-0.1)"),
    (lambda: body(thresholds=(1.1, 1.25)), "thresholds (1.1, 1.25) must bracket 1"),
    (lambda: body([study(est=0.5, low=0.6, high=0.9)]), "estimate 0.5 not inside its CI"),
])
def test_evidence_errors_are_one_line_and_named(make, message):
    with pytest.raises(DataError, match=re.escape(message)) as info:
        assess_certainty(make())
    assert str(info.value).startswith("outcome 'Mortality': ") and "\n" not in str(info.value)


@pytest.mark.parametrize(("override", "message"), [
    (Override("Mortality", "bias", "serious", "x"), "domain 'bias'"),
    (Override("Mortality", "imprecision", "extremely serious", "x"), "rating 'extremely serious'"),
    (Override("Mortality", "imprecision", "serious", " "), "reason is empty"),
])
def test_override_errors(override, message):
    with pytest.raises(DataError, match=re.escape(message)):
        assess_certainty(body(), overrides=[override])


def test_duplicate_override_rejected():
    twice = [Override("Mortality", "imprecision", "serious", "x")] * 2
    with pytest.raises(DataError, match="given twice"):
        assess_certainty(body(), overrides=twice)


# ----------------------------------------------------------------------------- properties

@given(
    designs=st.lists(st.sampled_from(["RCT", "NRS"]), min_size=1, max_size=6),
    ratings=st.lists(st.sampled_from(RATINGS), min_size=5, max_size=5),
)
def test_certainty_between_very_low_and_start(designs, ratings):
    studies = [study(f"s{i}", d) for i, d in enumerate(designs)]
    ev = body(studies, effect=("RR", 0.8, 0.7, 0.9), n=5000, n_events=1000, control_risk=0.2)
    overrides = [Override("Mortality", d, r, "property test") for d, r in zip(DOMAINS, ratings, strict=True)]
    result = assess_certainty(ev, overrides=overrides)
    assert 1 <= result.level <= result.start_level
    assert result.level == max(1, result.start_level - sum(RATINGS.index(r) for r in ratings))


@given(
    rob=st.lists(st.sampled_from(["low", "some concerns", "high", "serious", "critical", "moderate"]),
                 min_size=1, max_size=8),
    i2=st.floats(0, 100), q_p=st.floats(0, 1), n=st.integers(1, 100_000),
    est=st.floats(0.05, 20), width=st.floats(1.0, 30.0),
)
def test_rules_never_leave_the_scale(rob, i2, q_p, n, est, width):
    studies = [study(f"s{i}", rob=r, weight=1 + i) for i, r in enumerate(rob)]
    ev = body(studies, effect=("OR", est, est / width, est * width), n=n, control_risk=0.3,
              heterogeneity=Heterogeneity(i2, None, q_p))
    result = assess_certainty(ev)
    assert all(d.rating in RATINGS for d in result.domains)
    assert 1 <= result.level <= 4
