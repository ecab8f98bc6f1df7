"""Property tests (hypothesis) of the group-sequential boundaries and the TSA: invariants that
hold for any input, not reference values."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mscmeta.engine.group_sequential import crossing_probabilities, spending_boundaries
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.tsa import Verdict, diversity, trial_sequential_analysis

FAST = settings(max_examples=40, deadline=None)


@st.composite
def increasing_fractions(draw, max_looks: int = 10, upper: float = 1.0):
    """2..max_looks strictly increasing fractions in [0.02, upper], gaps >= 0.005."""
    size = draw(st.integers(min_value=2, max_value=max_looks))
    gaps = draw(st.lists(st.floats(0.005, 1.0), min_size=size, max_size=size))
    points = 0.02 + np.cumsum(gaps) / np.sum(gaps) * (upper - 0.02)
    return np.concatenate(([0.02], points[:-1]))[: size - 1].tolist() + [upper]


alphas = st.floats(0.001, 0.2)


@FAST
@given(increasing_fractions(), alphas, st.sampled_from(["obrien_fleming", "pocock"]), st.sampled_from([1, 2]))
def test_exit_probabilities_under_h0_sum_to_alpha(fractions, alpha, spending, sides):
    result = spending_boundaries(fractions, alpha, sides=sides, spending=spending)
    assert abs(result.total_exit_probability - alpha) < 1e-6
    cumulative = np.cumsum(result.exit_upper + result.exit_lower)
    np.testing.assert_allclose(cumulative, result.cumulative_alpha_spent, atol=1e-6)


@FAST
@given(st.integers(2, 20), alphas)
def test_obrien_fleming_boundaries_decrease_for_equally_spaced_looks(looks, alpha):
    """Holds for equal spacing; with very close unequal looks the Lan-DeMets boundary can
    rise (little alpha left to spend between highly correlated looks), e.g. t = 0.5, 0.51."""
    result = spending_boundaries(np.arange(1, looks + 1) / looks, alpha)
    assert (np.diff(result.upper) < 0).all()


@FAST
@given(increasing_fractions(), alphas)
def test_alpha_spent_increases_to_alpha_at_one(fractions, alpha):
    result = spending_boundaries(fractions, alpha)
    assert (np.diff(result.cumulative_alpha_spent) > 0).all()
    assert abs(result.cumulative_alpha_spent[-1] - alpha) < 1e-14


@FAST
@given(increasing_fractions(), alphas)
def test_two_sided_boundaries_are_symmetric(fractions, alpha):
    result = spending_boundaries(fractions, alpha)
    np.testing.assert_array_equal(result.lower, -result.upper)
    np.testing.assert_allclose(result.exit_lower, result.exit_upper, rtol=1e-10, atol=1e-15)


@FAST
@given(increasing_fractions(max_looks=6), st.floats(0.0, 3.0), st.floats(0.05, 1.0))
def test_upper_crossing_probability_increases_with_drift(fractions, drift, step):
    bounds = spending_boundaries(fractions, 0.05)
    low, _ = crossing_probabilities(fractions, bounds.upper, bounds.lower, drift)
    high, _ = crossing_probabilities(fractions, bounds.upper, bounds.lower, drift + step)
    assert high.sum() > low.sum()


@FAST
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(0.01, 1.0)), min_size=2, max_size=12))
def test_diversity_at_least_inconsistency(trials):
    """Wetterslev et al. (2009) show D^2 >= I^2 for DerSimonian-Laird meta-analyses."""
    effects, variances = map(np.array, zip(*trials, strict=True))
    fixed = fixed_effect(effects, variances)
    random = random_effects(effects, variances, tau2_method="DL")
    d2 = diversity(fixed.se**2, max(random.se**2, fixed.se**2))
    assert 0.0 <= fixed.I2 / 100 <= d2 + 1e-9 < 1.0 + 1e-12


@FAST
@given(st.lists(st.floats(-4, 4), min_size=5, max_size=5), st.sampled_from(["lower", "upper"]))
def test_mirror_symmetry_of_verdict(z, side):
    """Flipping the sign of Z and the benefit side leaves the verdict unchanged."""
    n = [150, 350, 600, 800, 1000]
    other = "upper" if side == "lower" else "lower"
    first = trial_sequential_analysis(z, n, 1000, benefit_side=side)
    mirrored = trial_sequential_analysis(-np.asarray(z), n, 1000, benefit_side=other)
    assert first.verdict is mirrored.verdict and first.verdict_look == mirrored.verdict_look
    assert first.verdict in set(Verdict)
