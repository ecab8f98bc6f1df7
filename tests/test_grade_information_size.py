"""Optimal information size against published sample-size examples."""

from __future__ import annotations

import math

import pytest

from mscmeta.engine.validation import DataError
from mscmeta.engine.grade.information_size import binary_ois, continuous_ois, two_proportion_sample_size


def test_jmp_two_sample_proportions_example():
    """JMP 13.2 help, "Two Sample Proportions": alpha 0.05, proportions 0.08 and 0.06, two-sided,
    power 0.8 -> "sample sizes of 2554" (per group; pooled-variance normal approximation)."""
    assert math.ceil(two_proportion_sample_size(0.08, 0.06)) == 2554


def test_zar_example_24_26_with_continuity_correction():
    """Zar JH, Biostatistical Analysis 4th ed. 1999, Example 24.26 (p. 561), as run in UNISTAT's
    manual 6.7.6.1: proportions 0.45 and 0.25, power 0.90, two-tailed 0.05 ->
    "Estimated Sample Size = 127.2343" (Fleiss continuity-corrected)."""
    n = two_proportion_sample_size(0.45, 0.25, power=0.90, continuity=True)
    assert n == pytest.approx(127.2343, abs=5e-5)


def test_lehr_rule_for_continuous_ois():
    """Lehr R. Sixteen S-squared over D-squared. Stat Med 1992;11:1099-1102: per-group n is about
    16 SD^2 / D^2 for alpha 0.05 two-sided and power 0.80 (the exact constant is 15.7)."""
    ois = continuous_ois(sd=10.0, mid=5.0)
    assert ois.per_arm == pytest.approx(16 * 10.0**2 / 5.0**2, rel=0.02)
    assert ois.total == 2 * math.ceil(ois.per_arm)


def test_binary_ois_uses_rrr_from_control_risk():
    """GRADE 6 (Guyatt 2011): OIS for a control risk and RRR 25%, alpha 0.05, beta 0.20; the
    intervention risk is control x (1 - RRR), so p2 = 0.15 for p1 = 0.20."""
    ois = binary_ois(0.20)
    assert ois.per_arm == pytest.approx(two_proportion_sample_size(0.20, 0.15))
    assert binary_ois(0.20, rrr=0.20).total > ois.total > binary_ois(0.40).total


@pytest.mark.parametrize(("call", "message"), [
    (lambda: binary_ois(0.0), "control risk (0.0)"),
    (lambda: binary_ois(0.2, rrr=1.0), "rrr (1.0)"),
    (lambda: two_proportion_sample_size(0.2, 0.2), "must differ"),
    (lambda: continuous_ois(0.0, 1.0), "sd (0.0)"),
    (lambda: continuous_ois(1.0, 0.0), "mid (0.0)"),
    (lambda: binary_ois(0.2, alpha=1.5), "alpha (1.5)"),
])
def test_errors(call, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
