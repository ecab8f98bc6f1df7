"""Fragility index of a pooled meta-analysis (:mod:`mscmeta.engine.fragility`; Atal et al. 2019),
moved from the standalone module of /work/scratch/bayes (R scripts in its ``refgen/``).

Reference sources
-----------------
* ``[Atal]``: the worked example published with Atal et al. (2019)'s web app
  (github:iatal/fragility_ma, ``app/www/figure_tracking_FI.svg``, data
  ``app/data/example.csv``; Mantel-Haenszel risk ratio, fixed effect, RevMan
  conventions): the initial risk ratio, fragility index 4 and the four published
  steps with their risk ratios, kept as data with their source in
  ``tests/fixtures/reference/atal2019_fragility_example.csv``. Two published
  decimals: tolerance 0.005 (rounding).
* ``[metafor]``: metafor 3.8.1 / R 4.2.2, ``refgen/frag_refs.R``:
  ``rma.mh(measure=m, ai=e1, n1i=n1, ci=e0, n2i=n0, add=c(1/2,1/2),
  to=c("only0","only0"), drop00=c(TRUE,TRUE))`` - the RevMan MH pool;
  tolerance 1e-10 on the log scale (closed form).
* ``[Lin]``: R package fragility 1.6.1 (Lin & Chu), ``frag.ma`` sourced from
  github:cran/fragility @ fdc1535 with metafor 3.8.1, called as
  ``frag.ma(e0, n0, e1, n1, data=d, measure="OR", method="FE")`` (inverse-
  variance fixed effect; escalc's add=1/2 to="only0", drop00=FALSE); dat.ns
  from that package. Lin's greedy search uses the same objective and, for
  these data, the same tie order, but stops at the *first* candidate that
  flips significance while Atal's algorithm takes the *best* one, so the
  index and all steps but the last must agree.
* ``[AtalCode]``: the authors' own functions ``frag_ma`` / ``frag_ma_ns``
  (github:iatal/fragility_ma @ c270a79, ``app/functions_fragility/``) run
  unchanged in R 4.2.2 (``refgen/atal_refs.R``); only their pooling helper
  ``rev_ma()`` (R package meta, not installable here) is replaced by metafor
  3.8.1 ``rma.mh(..., add=c(1/2,1/2), to=c("only0","only0"),
  drop00=c(TRUE,TRUE))`` returning ``exp(c(ci.lb, ci.ub))``. Compared: the
  index and the final modified event counts (the path is not returned by
  their code). Includes data built to give exact ties (identical symmetric
  tables), which pins down the tie-break.
* ``[exhaustive]``: :func:`exact_fragility_index` enumerates every
  combination of changes; the greedy index can never be smaller, equals it
  whenever the optimum is 1, and for the data below equals it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.fragility import MantelHaenszelPool, exact_fragility_index, fragility_index, fragility_of
from mscmeta.engine.validation import DataError, NotEstimableError

ATAL = dict(events_t=[2, 4, 2, 1, 0, 7, 0, 2], n_t=[39, 25, 23, 9, 17, 182, 15, 17],
            events_c=[7, 2, 4, 2, 2, 16, 0, 2], n_c=[39, 11, 20, 12, 24, 189, 15, 19])
SPARSE = dict(events_t=[2, 0, 1, 3, 0, 4, 1, 6, 0], n_t=[20, 13, 50, 100, 10, 31, 12, 101, 20],
              events_c=[5, 2, 4, 5, 0, 9, 1, 10, 3], n_c=[20, 12, 50, 100, 10, 30, 12, 99, 20])
TRIALS = [f"Trial {i}" for i in range(1, 9)]
#: [Atal]'s published initial result and path (source per row).
ATAL_PUBLISHED = Path(__file__).parent / "fixtures" / "reference" / "atal2019_fragility_example.csv"


def _arrays(d: dict[str, list[int]]) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(d[k], dtype=float) for k in ("events_t", "n_t", "events_c", "n_c"))


def iv_fixed_or(et: np.ndarray, nt: np.ndarray, ec: np.ndarray, nc: np.ndarray,
                alpha: float = 0.05) -> tuple[float, float, float]:
    """Inverse-variance fixed-effect log OR, metafor rma.uni(method="FE") defaults:
    escalc adds 1/2 to all cells of tables with a zero cell, keeps double zeros."""
    a, b, c, d = et, nt - et, ec, nc - ec
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a, b, c, d = (x + 0.5 * zero for x in (a, b, c, d))
    w = 1.0 / (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d)
    est = float((w * np.log(a * d / (b * c))).sum() / w.sum())
    half = float(special.ndtri(1 - alpha / 2)) / math.sqrt(w.sum())
    return est, est - half, est + half


# ---------------------------------------------------------------- [Atal]
def _atal_published() -> list[dict[str, str]]:
    with ATAL_PUBLISHED.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_atal_published_example() -> None:
    """[Atal] example.csv, MH RR fixed effect: FI = 4 and the published path."""
    rows = _atal_published()
    initial, steps = rows[0], rows[1:]
    res = fragility_index(**ATAL, pool=MantelHaenszelPool("RR"), studies=TRIALS)
    assert res.fragility_index == 4 == len(steps)
    assert res.initially_significant
    assert [round(math.exp(x), 2) for x in res.initial] == [float(initial[k]) for k in ("rr", "ci_low", "ci_high")]
    path = [(m.study, m.arm, m.change, m.events_after) for m in res.modifications]
    assert path == [(r["study"], r["arm"], int(r["change"]), int(r["events_after"])) for r in steps]
    published = [tuple(float(r[k]) for k in ("rr", "ci_low", "ci_high")) for r in steps]
    for mod, ref in zip(res.modifications, published):
        got = [math.exp(x) for x in (mod.log_estimate, mod.ci_low, mod.ci_high)]
        assert got == pytest.approx(list(ref), abs=0.005)
    assert res.fragility_quotient == pytest.approx(4 / 656)  # 327 + 329 patients
    assert json.loads(json.dumps(res.to_dict()))["fragility_index"] == 4


def test_atal_example_is_optimal() -> None:
    """[exhaustive] no combination of <= 3 changes flips the Atal example (RR)."""
    pool = MantelHaenszelPool("RR")
    assert exact_fragility_index(**ATAL, pool=pool, max_changes=4) == 4


# ---------------------------------------------------------------- [AtalCode]
ATAL_CODE = [
    # (name, measure, events_t, n_t, events_c, n_c, FI, final events_t, final events_c)
    ("example", "RR", *ATAL.values(), 4, [2, 4, 2, 3, 0, 7, 1, 2], [7, 1, 4, 2, 2, 16, 0, 2]),
    ("example", "OR", *ATAL.values(), 4, [2, 4, 2, 3, 0, 7, 1, 2], [7, 1, 4, 2, 2, 16, 0, 2]),
    ("sparse", "OR", *SPARSE.values(), 8, [2, 0, 1, 3, 8, 4, 1, 6, 0], [5, 2, 4, 5, 0, 9, 1, 10, 3]),
    ("sparse", "RR", *SPARSE.values(), 8, [2, 0, 1, 3, 8, 4, 1, 6, 0], [5, 2, 4, 5, 0, 9, 1, 10, 3]),
    ("ties_below", "OR", [2, 2], [12, 12], [10, 10], [12, 12], 9, [6, 2], [5, 10]),
    ("ties_above", "OR", [10, 10], [12, 12], [2, 2], [12, 12], 9, [5, 10], [6, 2]),
    ("ns_up", "OR", [6, 5, 4], [20] * 3, [4, 4, 3], [20] * 3, 5, [6, 5, 4], [3, 2, 1]),
    ("ns_down", "OR", [3, 4, 2], [20] * 3, [5, 5, 4], [20] * 3, 4, [2, 2, 1], [5, 5, 4]),
    ("ns_ties", "OR", [5, 5], [12, 12], [5, 5], [12, 12], 7, [7, 6], [4, 2]),
    ("ns_sparse", "RR", [1, 0, 2], [15, 12, 20], [2, 1, 2], [15, 13, 20], 5, [0, 0, 0], [2, 1, 4]),
]


@pytest.mark.parametrize("case", ATAL_CODE, ids=[f"{c[0]}-{c[1]}" for c in ATAL_CODE])
def test_matches_authors_code(case: tuple) -> None:
    """[AtalCode] frag_ma()/frag_ma_ns() with rev_ma() = metafor rma.mh (RevMan settings)."""
    _, measure, et, nt, ec, nc, fi, final_t, final_c = case
    res = fragility_index(et, nt, ec, nc, pool=MantelHaenszelPool(measure))
    assert res.fragility_index == fi
    assert (list(res.events_t), list(res.events_c)) == (final_t, final_c)


# ---------------------------------------------------------------- [metafor]
@pytest.mark.parametrize("data, measure, ref", [
    (ATAL, "OR", (-0.793050268182349, -1.39462485682455, -0.191475679540146)),
    (ATAL, "RR", (-0.719049057423873, -1.27009561465963, -0.168002500188116)),
    (SPARSE, "OR", (-0.91243199271667, -1.4979284836176, -0.32693550181574)),
    (SPARSE, "RR", (-0.815012426109678, -1.3439055231084, -0.286119329110955)),
])
def test_mh_pool_matches_metafor(data: dict[str, list[int]], measure: str,
                                 ref: tuple[float, float, float]) -> None:
    """[metafor] rma.mh(measure, ..., add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE))"""
    got = MantelHaenszelPool(measure)(*_arrays(data))
    assert got == pytest.approx(ref, abs=1e-10)


def test_mh_pool_not_estimable() -> None:
    pool = MantelHaenszelPool("OR")
    got = pool(*_arrays(dict(events_t=[0, 0], n_t=[5, 6], events_c=[0, 0], n_c=[5, 7])))
    assert all(math.isnan(x) for x in got)
    with pytest.raises(NotEstimableError, match="not estimable"):
        fragility_index([0, 0], [5, 6], [0, 0], [5, 7])


# ---------------------------------------------------------------- [Lin]
LIN_CASES = {
    # name: (data, FI, [(study, g0, g1), ...] for all steps (Lin's last step excluded below))
    "atal": (ATAL, 3, [(4, 0, 1), (4, 0, 1), (2, -1, 0)]),
    "sparse": (SPARSE, 6, [(4, 0, 1)] * 3 + [(8, 0, 1)] * 2 + [(1, -1, 0)]),
    "ns3": (dict(events_t=[18, 31, 4, 9, 2], n_t=[150, 292, 71, 108, 66],
                 events_c=[11, 35, 1, 6, 5], n_c=[159, 300, 72, 104, 66]),
            14, [(2, 0, 1)] * 5 + [(2, -1, 0)] * 8 + [(1, -1, 0)]),
    "ns8": (dict(events_t=[0, 4, 1, 1, 4, 3], n_t=[22, 70, 28, 27, 21, 33],
                 events_c=[2, 3, 4, 0, 3, 6], n_c=[28, 75, 32, 30, 22, 16]),
            4, [(2, 0, -1), (2, 0, -1), (5, 0, -1), (2, 1, 0)]),
    "ns11": (dict(events_t=[3, 1, 0], n_t=[30, 17, 12], events_c=[7, 1, 2], n_c=[30, 16, 13]),
             2, [(2, 0, -1), (1, 1, 0)]),
    "ns15": (dict(events_t=[0, 4], n_t=[18, 14], events_c=[1, 7], n_c=[19, 15]),
             3, [(2, 0, -1), (2, 0, -1), (1, 1, 0)]),
}
LIN_LAST_BOUND = {"atal": 0.0181930029814406, "sparse": 0.0200872977542964,
                  "ns3": 0.0132786582808174, "ns8": -0.0130319529180192,
                  "ns11": -0.0502769392653393, "ns15": -0.0972358414352197}


@pytest.mark.parametrize("name", sorted(LIN_CASES))
def test_matches_lin_fragility_package(name: str) -> None:
    """[Lin] frag.ma(e0, n0, e1, n1, data=d, measure="OR", method="FE") (dat.ns ma.id 3, 8, 11, 15)."""
    data, fi, lin_path = LIN_CASES[name]
    res = fragility_index(**data, pool=iv_fixed_or)
    assert res.fragility_index == fi
    ours = [(m.study_index + 1, m.change if m.arm == "control" else 0,
             m.change if m.arm == "treatment" else 0) for m in res.modifications]
    assert ours[:-1] == lin_path[:-1]
    last = res.modifications[-1]
    if res.initially_significant:  # Atal keeps the best flipping move: at least as far past 0
        assert last.ci_high >= LIN_LAST_BOUND[name] - 1e-12
    elif last.ci_low >= 0:
        assert last.ci_low >= LIN_LAST_BOUND[name] - 1e-12
    else:
        assert last.ci_high <= LIN_LAST_BOUND[name] + 1e-12


def test_lin_intermediate_cis() -> None:
    """[Lin] ci.iter of frag.ma for "sparse" (steps 1-5): log-scale bounds, tol 1e-10."""
    res = fragility_index(**SPARSE, pool=iv_fixed_or)
    lin = [(-1.37134832037373, -0.206692699109868), (-1.30500566680077, -0.153072080263663),
           (-1.24521318293142, -0.103267109049069), (-1.1838658049525, -0.0566677076494531),
           (-1.12583667000756, -0.0110756615161693)]
    for mod, (lb, ub) in zip(res.modifications, lin):
        assert (mod.ci_low, mod.ci_high) == pytest.approx((lb, ub), abs=1e-10)


# ---------------------------------------------------------------- [exhaustive]
@pytest.mark.parametrize("name", ["ns8", "ns11", "ns15"])
def test_greedy_equals_exhaustive(name: str) -> None:
    data, fi, _ = LIN_CASES[name]
    assert exact_fragility_index(**data, pool=iv_fixed_or, max_changes=fi) == fi


def _repool(res_events_t: tuple[int, ...], data: dict[str, list[int]],
            res_events_c: tuple[int, ...]) -> tuple[float, float, float]:
    return MantelHaenszelPool("OR")(np.array(res_events_t, float), np.array(data["n_t"], float),
                                    np.array(res_events_c, float), np.array(data["n_c"], float))


@st.composite
def tiny_meta(draw: st.DrawFn) -> dict[str, list[int]]:
    k = draw(st.integers(1, 3))
    n_t = [draw(st.integers(4, 14)) for _ in range(k)]
    n_c = [draw(st.integers(4, 14)) for _ in range(k)]
    return dict(events_t=[draw(st.integers(0, n)) for n in n_t], n_t=n_t,
                events_c=[draw(st.integers(0, n)) for n in n_c], n_c=n_c)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_meta())
def test_properties_against_exhaustive_search(data: dict[str, list[int]]) -> None:
    """Greedy result is a valid path that flips significance, never beats the
    exhaustive optimum, and finds it whenever the optimum is 1."""
    pool = MantelHaenszelPool("OR")
    initial = pool(*_arrays(data))
    if not all(math.isfinite(x) for x in initial):
        return
    res = fragility_index(**data, pool=pool)
    sig0 = initial[2] < 0 or initial[1] > 0
    assert res.initially_significant == sig0
    if res.fragility_index is None:
        return
    final = _repool(res.events_t, data, res.events_c)
    assert final == pytest.approx(res.final, abs=1e-12)
    if sig0:
        assert not (final[2] < 0 or final[1] > 0)
    else:
        assert final[1] >= 0 or final[2] <= 0
    for m in res.modifications[:-1]:  # no earlier step already flipped
        assert (m.ci_high < 0 or m.ci_low > 0) if sig0 else (m.ci_low < 0 < m.ci_high)
    changes = sum(abs(a - b) for a, b in zip(res.events_t, data["events_t"]))
    changes += sum(abs(a - b) for a, b in zip(res.events_c, data["events_c"]))
    assert changes == res.fragility_index
    assert all(0 <= e <= n for e, n in zip(res.events_t + res.events_c, data["n_t"] + data["n_c"]))
    best = exact_fragility_index(**data, pool=pool, max_changes=min(res.fragility_index, 5))
    if res.fragility_index <= 5:
        assert best is not None and best <= res.fragility_index
    assert (best == 1) == (res.fragility_index == 1)


# ---------------------------------------------------------------- API / errors
def test_nonsignificant_cannot_be_altered() -> None:
    res = fragility_index([1], [3], [1], [3])  # even 3/3 vs 0/3 is not significant
    assert not res.initially_significant and res.fragility_index is None
    assert "cannot" in res.direction


@pytest.mark.parametrize("kwargs, message", [
    (dict(events_t=[5], n_t=[4], events_c=[1], n_c=[4]), "study 'study 1': events_t"),
    (dict(events_t=[1.5], n_t=[4], events_c=[1], n_c=[4]), "non-negative integer"),
    (dict(events_t=[1, 2], n_t=[4], events_c=[1, 1], n_c=[4, 4]), "n_t: length 1"),
    (dict(events_t=[1], n_t=[4], events_c=[1], n_c=[4], alpha=0.01), "differs from the pool"),
])
def test_input_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        fragility_index(**kwargs, pool=MantelHaenszelPool("OR", 0.05))  # type: ignore[arg-type]


def test_pool_options() -> None:
    with pytest.raises(DataError, match="measure"):
        MantelHaenszelPool("RD")
    with pytest.raises(DataError, match="alpha"):
        MantelHaenszelPool("OR", 1.5)


# ---------------------------------------------------------------- this review's primary scenario
PRIMARY = dict(events_t=[3, 10, 1, 2, 0, 0, 0, 0, 2, 0], n_t=[10, 20, 5, 12, 7, 9, 65, 12, 26, 29],
               events_c=[6, 16, 10, 7, 1, 0, 0, 3, 6, 2], n_c=[10, 20, 18, 12, 3, 9, 35, 29, 18, 29])


@pytest.mark.parametrize("measure", ["OR", "RR"])
def test_primary_scenario_matches_authors_code(measure: str) -> None:
    """[AtalCode] frag_ma() on analysis_mortality.csv (scenario primary), rev_ma() = metafor rma.mh with
    RevMan settings: significant, FI 12 for OR and RR, final EVENTS_1 3 10 5 2 0 7 0 0 2 0 and
    EVENTS_2 6 16 10 7 0 0 0 3 6 2 (7 events added to a study without deaths in either arm)."""
    import pandas as pd

    data = pd.DataFrame({"study": ["adas", "dilogo", "haberle", "lanzoni", "leng", "meng", "shi", "shu", "xu",
                                   "zhu"], **PRIMARY})
    res = fragility_of(meta_binary(data, measure=measure))
    assert res.initially_significant and res.fragility_index == 12
    assert list(res.events_t) == [3, 10, 5, 2, 0, 7, 0, 0, 2, 0]
    assert list(res.events_c) == [6, 16, 10, 7, 0, 0, 0, 3, 6, 2]
    frame = res.modifications_frame()
    assert len(frame) == 12 and set(frame["study"]) == {"haberle", "leng", "meng"}
    assert "Fragility index (Atal et al. 2019, alpha = 0.05): 12" in str(res)
    with pytest.raises(DataError, match="fixed-effect Mantel-Haenszel OR or RR"):
        fragility_of(meta_binary(data, method="IV"))
