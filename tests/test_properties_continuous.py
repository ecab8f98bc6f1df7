"""Property tests (hypothesis) for continuous outcomes, conversions, bias tests and trim-and-fill.

Invariants that must hold for any valid input:

* swapping the two arms negates the mean difference and Hedges' g and keeps their variances;
* the order of the studies never changes a pooled result, a small-study test or trim-and-fill;
* median/IQR/range conversion: symmetric summaries give mean = median; the conversion is
  location-scale equivariant; the exact normal quantiles the methods assume give back the
  normal mean and SD; population quartiles of a large sample give the SD to within 1%.
"""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from mscmeta.engine.validation import DataError
from mscmeta.engine.bias import begg_test, egger_test, harbord_test, peters_test, trim_and_fill
from mscmeta.engine.continuous import fivenum_to_mean_sd, mean_difference, meta_continuous, standardised_mean_difference

SETTINGS = settings(max_examples=40, deadline=None)

mean = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
sd = st.floats(min_value=0.5, max_value=50, allow_nan=False, allow_infinity=False)
size = st.integers(min_value=2, max_value=300)


@st.composite
def arm_table(draw, min_k: int = 3, max_k: int = 8) -> pd.DataFrame:
    k = draw(st.integers(min_value=min_k, max_value=max_k))
    rows = [dict(study=f"s{i}", mean_t=draw(mean), sd_t=draw(sd), n_t=draw(size),
                 mean_c=draw(mean), sd_c=draw(sd), n_c=draw(size)) for i in range(k)]
    return pd.DataFrame(rows)


@st.composite
def effects(draw, min_k: int = 3, max_k: int = 12):
    """Effect sizes with distinct values (a tiny irrational offset per study avoids exact rank ties)."""
    k = draw(st.integers(min_value=min_k, max_value=max_k))
    base = draw(st.lists(st.floats(min_value=-2, max_value=2, allow_nan=False), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(min_value=0.01, max_value=1.0, allow_nan=False), min_size=k, max_size=k))
    yi = np.asarray(base) + 1e-3 * np.sqrt(np.arange(2, k + 2) * np.pi)
    return yi, np.asarray(vi) + 1e-4 * np.sqrt(np.arange(3, k + 3) * np.e)


@SETTINGS
@given(arm_table())
def test_swapping_arms_negates_md_and_smd(table):
    t = (table["mean_t"], table["sd_t"], table["n_t"])
    c = (table["mean_c"], table["sd_c"], table["n_c"])
    for effect in (mean_difference, standardised_mean_difference):
        y1, v1 = effect(*t, *c)
        y2, v2 = effect(*c, *t)
        np.testing.assert_allclose(y2, -y1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v2, v1, rtol=1e-12)


@SETTINGS
@given(arm_table(), st.randoms(use_true_random=False), st.sampled_from(["MD", "SMD"]), st.sampled_from(["fixed", "random"]))
def test_study_order_never_changes_pooled_result(table, rnd, measure, model):
    perm = list(range(len(table)))
    rnd.shuffle(perm)
    a = meta_continuous(table, measure=measure, model=model, tau2_method="REML")
    b = meta_continuous(table.iloc[perm].reset_index(drop=True), measure=measure, model=model, tau2_method="REML")
    for attr in ("estimate", "se", "ci_low", "ci_high", "Q", "tau2"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-7, atol=1e-9)


@SETTINGS
@given(effects(), st.randoms(use_true_random=False), st.sampled_from(["fixed", "random"]), st.sampled_from(["L0", "R0"]))
def test_study_order_never_changes_trim_and_fill(data, rnd, model, estimator):
    yi, vi = data
    perm = np.array(rnd.sample(range(len(yi)), len(yi)))
    try:
        a = trim_and_fill(yi, vi, estimator=estimator, model=model, tau2_method="REML")
    except DataError:
        # REML may not converge on pathological data (metafor refuses too): then the
        # refusal itself must not depend on the order of the studies.
        with pytest.raises(DataError):
            trim_and_fill(yi[perm], vi[perm], estimator=estimator, model=model, tau2_method="REML")
        return
    b = trim_and_fill(yi[perm], vi[perm], estimator=estimator, model=model, tau2_method="REML")
    assert (a.k0, a.side) == (b.k0, b.side)
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.sort(b.filled["yi"]), np.sort(a.filled["yi"]), rtol=1e-7, atol=1e-9)


@SETTINGS
@given(effects(), st.randoms(use_true_random=False))
def test_study_order_never_changes_small_study_tests(data, rnd):
    yi, vi = data
    perm = np.array(rnd.sample(range(len(yi)), len(yi)))
    for model in ("lm", "rma"):
        try:
            a = egger_test(yi, vi, model=model)
        except DataError:  # REML did not converge (metafor refuses too): so must the permuted data
            with pytest.raises(DataError):
                egger_test(yi[perm], vi[perm], model=model)
            continue
        b = egger_test(yi[perm], vi[perm], model=model)
        np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-7, atol=1e-9)
    a, b = begg_test(yi, vi), begg_test(yi[perm], vi[perm])
    np.testing.assert_allclose([b.coefficient, b.p_value], [a.coefficient, a.p_value], rtol=1e-10, atol=1e-12)


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(40, 200), st.integers(1, 30), st.integers(40, 200)),
                min_size=3, max_size=10, unique_by=lambda r: r[1] + r[3]),
       st.randoms(use_true_random=False))
def test_peters_and_harbord_order_invariant_and_arm_swap(rows, rnd):
    et, nt, ec, nc = (np.array(col) for col in zip(*rows, strict=True))
    perm = np.array(rnd.sample(range(len(et)), len(et)))
    for test in (peters_test, harbord_test):
        a = test(et, nt, ec, nc)
        b = test(et[perm], nt[perm], ec[perm], nc[perm])
        np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-7, atol=1e-9)
    # swapping arms negates the log odds ratio and Harbord's score, so the statistics change sign
    np.testing.assert_allclose(harbord_test(ec, nc, et, nt).statistic, -harbord_test(et, nt, ec, nc).statistic, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(peters_test(ec, nc, et, nt).statistic, -peters_test(et, nt, ec, nc).statistic, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(mean, st.floats(0.1, 10), st.floats(1.0, 3.0), st.integers(5, 500))
def test_symmetric_summaries_give_mean_equal_median(median, half_iqr, range_factor, n):
    half_range = half_iqr * range_factor
    out = fivenum_to_mean_sd(
        n=[n, n, n], median=[median] * 3,
        q1=[np.nan, median - half_iqr, median - half_iqr], q3=[np.nan, median + half_iqr, median + half_iqr],
        minimum=[median - half_range, np.nan, median - half_range], maximum=[median + half_range, np.nan, median + half_range],
    )
    assert out["converted"].all()
    np.testing.assert_allclose(out["mean"], median, rtol=1e-12, atol=1e-9)
    assert (out["sd"] > 0).all()


@SETTINGS
@given(st.floats(-50, 50), st.floats(0.2, 20), st.integers(5, 2000), st.floats(-100, 100), st.floats(0.1, 10))
def test_exact_normal_quantiles_round_trip_and_equivariance(mu, sigma, n, shift, scale):
    # the sample quantiles that Wan et al. (2014) eq. (9) and (16) assume for a normal sample of size n
    half_range = sigma * norm.ppf((n - 0.375) / (n + 0.25))
    half_iqr = sigma * norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    args = dict(
        n=[n, n, n], median=[mu] * 3,
        q1=[np.nan, mu - half_iqr, mu - half_iqr], q3=[np.nan, mu + half_iqr, mu + half_iqr],
        minimum=[mu - half_range, np.nan, mu - half_range], maximum=[mu + half_range, np.nan, mu + half_range],
    )
    out = fivenum_to_mean_sd(**args)
    np.testing.assert_allclose(out["mean"], mu, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out["sd"], sigma, rtol=1e-10)
    moved = {k: (v if k == "n" else [scale * x + shift for x in v]) for k, v in args.items()}
    out2 = fivenum_to_mean_sd(**moved)
    np.testing.assert_allclose(out2["mean"], scale * out["mean"] + shift, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out2["sd"], scale * out["sd"], rtol=1e-9)


@SETTINGS
@given(st.floats(-50, 50), st.floats(0.2, 20), st.integers(200, 5000))
def test_population_quartiles_give_sd_within_one_percent(mu, sigma, n):
    q = norm.ppf(0.75) * sigma
    out = fivenum_to_mean_sd(n=n, median=mu, q1=mu - q, q3=mu + q)
    np.testing.assert_allclose(out.loc[0, "mean"], mu, atol=1e-9)
    assert abs(out.loc[0, "sd"] / sigma - 1) < 0.01
