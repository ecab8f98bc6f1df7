"""Invariants of the binary-outcome engine (hypothesis property tests).

* swapping the arms inverts OR/RR (negates the log) and negates the RD;
* the order of the studies never changes a result;
* duplicating every study halves the variance of the fixed-effect estimate;
* tau^2 >= 0 (and I^2 in [0, 100]) for every estimator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.pooling import random_effects
from mscmeta.engine.tau2 import TAU2_METHODS, ConvergenceError
from mscmeta.engine.validation import DataError, NotEstimableError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANALYSES = [
    {"measure": "OR", "method": "MH"},
    {"measure": "RR", "method": "MH"},
    {"measure": "RD", "method": "MH"},
    {"measure": "OR", "method": "Peto"},
    {"measure": "OR", "method": "IV"},
    {"measure": "RR", "method": "IV"},
    {"measure": "RD", "method": "IV"},
]


@st.composite
def tables(draw, min_k: int = 1, max_k: int = 6) -> pd.DataFrame:
    k = draw(st.integers(min_k, max_k))
    rows = []
    for i in range(k):
        n_t = draw(st.integers(1, 60))
        n_c = draw(st.integers(1, 60))
        rows.append({"study": f"study {i}", "events_t": draw(st.integers(0, n_t)), "n_t": n_t,
                     "events_c": draw(st.integers(0, n_c)), "n_c": n_c})
    return pd.DataFrame(rows)


def fit(data: pd.DataFrame, **kwargs):
    """The result, or the class of the refusal (a refusal is a legitimate outcome)."""
    try:
        return meta_binary(data, **kwargs)
    except (NotEstimableError, ConvergenceError) as err:
        return type(err)
    except DataError as err:
        if "at least 2 studies" in str(err) or "Hartung-Knapp" in str(err):
            return DataError
        raise


def swap(data: pd.DataFrame) -> pd.DataFrame:
    return data.rename(columns={"events_t": "events_c", "n_t": "n_c", "events_c": "events_t", "n_c": "n_t"})


@pytest.mark.parametrize("opts", ANALYSES, ids=lambda o: f"{o['method']}-{o['measure']}")
@pytest.mark.parametrize("zero_cell", ["revman", "none"])
@SETTINGS
@given(data=tables())
def test_swapping_arms_inverts_the_effect(opts, zero_cell, data):
    a = fit(data, zero_cell=zero_cell, **opts)
    b = fit(swap(data), zero_cell=zero_cell, **opts)
    if isinstance(a, type) or isinstance(b, type):
        assert a == b  # refused for both or for neither
        return
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-9, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9)
    assert b.Q == pytest.approx(a.Q, rel=1e-9, abs=1e-9)
    assert b.k == a.k


@SETTINGS
@given(data=tables(min_k=2), method=st.sampled_from(["DL", "REML", "PM"]), hksj=st.booleans())
def test_swapping_arms_random_effects(data, method, hksj):
    a = fit(data, measure="OR", method="IV", model="random", tau2_method=method, hksj=hksj)
    b = fit(swap(data), measure="OR", method="IV", model="random", tau2_method=method, hksj=hksj)
    if isinstance(a, type) or isinstance(b, type):
        assert a == b
        return
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-8, abs=1e-10)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("opts", ANALYSES + [{"measure": "OR", "method": "MH", "model": "random"},
                                             {"measure": "RR", "method": "IV", "model": "random", "tau2_method": "REML"}],
                         ids=lambda o: "-".join(map(str, o.values())))
@SETTINGS
@given(data=tables(min_k=2), seed=st.integers(0, 2**32 - 1))
def test_study_order_never_changes_a_result(opts, data, seed):
    order = np.random.default_rng(seed).permutation(len(data))
    a = fit(data, **opts)
    b = fit(data.iloc[order].reset_index(drop=True), **opts)
    if isinstance(a, type) or isinstance(b, type):
        assert a == b
        return
    for attr in ("estimate", "se", "ci_low", "ci_high", "Q", "I2", "tau2"):
        assert getattr(b, attr) == pytest.approx(getattr(a, attr), rel=1e-8, abs=1e-10, nan_ok=True), attr
    assert a.k == b.k
    # study rows follow the input order
    assert b.studies["study"].tolist() == data["study"].iloc[order].tolist()
    weights_a = dict(zip(a.studies["study"], a.studies["weight"], strict=True))
    for study, w in zip(b.studies["study"], b.studies["weight"], strict=True):
        assert w == pytest.approx(weights_a[study], rel=1e-8, nan_ok=True)


@pytest.mark.parametrize("opts", ANALYSES, ids=lambda o: f"{o['method']}-{o['measure']}")
@SETTINGS
@given(data=tables())
def test_duplicating_every_study_halves_the_fixed_effect_variance(opts, data):
    copy = data.assign(study=data["study"] + " (copy)")
    doubled = pd.concat([data, copy], ignore_index=True)
    a = fit(data, **opts)
    b = fit(doubled, **opts)
    if isinstance(a, type) or isinstance(b, type):
        assert a == b
        return
    assert b.estimate == pytest.approx(a.estimate, rel=1e-9, abs=1e-12)
    assert b.se**2 == pytest.approx(a.se**2 / 2, rel=1e-9)
    assert b.k == 2 * a.k


@SETTINGS
@given(
    yi=st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=8),
    vi_seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(TAU2_METHODS),
)
def test_tau2_is_never_negative(yi, vi_seed, method):
    vi = np.random.default_rng(vi_seed).uniform(0.01, 2.0, size=len(yi))
    try:
        res = random_effects(yi, vi, tau2_method=method)
    except ConvergenceError:
        return
    assert res.tau2 >= 0
    assert 0 <= res.I2 <= 100 and res.H2 >= 1
    lo, hi = res.tau2_ci
    assert 0 <= lo <= hi
    assert res.ci_low <= res.estimate <= res.ci_high
    assert res.pi_low <= res.ci_low and res.pi_high >= res.ci_high


@SETTINGS
@given(data=tables(min_k=2), method=st.sampled_from(TAU2_METHODS))
def test_tau2_nonnegative_on_binary_data(data, method):
    res = fit(data, measure="OR", method="IV", model="random", tau2_method=method)
    assume(not isinstance(res, type))
    assert res.tau2 >= 0 and 0 <= res.I2 <= 100
    w = res.studies["weight"].dropna()
    assert w.sum() == pytest.approx(100.0)
