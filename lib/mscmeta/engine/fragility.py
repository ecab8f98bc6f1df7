"""Fragility index of a pooled meta-analysis result (Atal et al. 2019).

Definition (Atal et al. 2019): the minimum number of patients, from one or
more trials, whose event status would have to change (event <-> non-event,
arm sizes fixed) to change the statistical significance of the pooled effect.

Algorithm (greedy, iterative - as in the algorithm schematic of the authors'
web app and their code ``fragility_sign_ma.R`` / ``fragility_non_sign_ma.R``
of github:iatal/fragility_ma @ c270a79, which the web app runs; the paper's
full text was not accessible here):

1. Pool the data; significant means the (1 - alpha) CI of the log effect
   excludes 0.
2. Each iteration evaluates every *single* event-status modification of the
   current data set, one arm of one trial at a time, in the direction that
   moves the estimate towards (significant case) or across (non-significant
   case) the null, and keeps the modification whose CI bound is closest to
   / furthest across the null; the next iteration starts from it.
3. Stop as soon as significance has flipped; the number of iterations is the
   fragility index.

Moves and the bound driving the greedy choice:

=============================  =================================  ===============
case                           candidate moves                    choose
=============================  =================================  ===============
significant, CI below null     control -1 event, treatment +1     max ``ci_high``
significant, CI above null     treatment -1 event, control +1     min ``ci_low``
non-significant, path "up"     control -1 event, treatment +1     max ``ci_low``
non-significant, path "down"   treatment -1 event, control +1     min ``ci_high``
=============================  =================================  ===============

Stop rules (Atal's code, log scale): significant-below stops when
``ci_high >= 0``; significant-above when ``ci_low <= 0``; path "up" when
``ci_low >= 0``; path "down" when ``ci_high <= 0`` (a bound exactly at the
null thus counts as non-significant for the first two and significant for the
last two - measure-zero boundary cases, kept as in the original).
For a non-significant result both paths are run; a path is skipped when even
its worst case cannot reach significance (path "up": all treatment patients
with events, no control events; "down": the reverse), as in the original;
if both are impossible the index is undefined (``None``; Atal: ``Inf``).
The fragility index is the shorter path; on equal length path "up" wins
(Atal: ``if (ci_low >= 1) DR <- ddoiA``).

Deterministic tie-break (exactly the original's ``which.max``/``which.min``
plus ``if (Ladd > Lsupp) add else remove``): candidates are ordered as
*all removals* (by study order) followed by *all additions* (by study
order) and the first candidate with the best bound is taken - i.e. ties go
to a removal, then to the lowest study index. Infeasible moves (events < 0 or
> arm size) and modified data sets whose pool is not estimable (``nan``) are
skipped. If no feasible move remains the index is undefined.

The greedy search is not guaranteed to find the global minimum;
:func:`exact_fragility_index` does an exhaustive search over the same move
set for small problems.

Pooling interface
-----------------
:func:`fragility_of` takes a pooled Mantel-Haenszel result (:func:`~mscmeta.engine.binary.meta_binary`)
and uses its measure, zero-cell convention and level (:class:`MantelHaenszelPool`, the
engine's own MH estimator); :func:`fragility_index` takes counts and any pool.

``pool(events_t, n_t, events_c, n_c) -> (log_estimate, ci_low, ci_high)``:
float arrays in, the pooled log effect (log OR / log RR / any effect whose
null is 0) and its ``(1 - alpha)`` confidence interval out; return ``nan``
values when not estimable. The pool owns its CI level: a pool carrying an
``alpha`` attribute (like :class:`MantelHaenszelPool`) is checked against the
``alpha`` given to :func:`fragility_index`. CI-based (not p-value based),
because the original algorithm ranks modifications by the CI bound.

Caveat for sparse data: with the RevMan convention, studies without events in either arm
are not pooled, yet the search may add events to them (each such change makes the study
count); with few deaths the index can be small in absolute terms and it depends on the pool
(convention, measure) it is computed for.

Moved from the standalone module of /work/scratch/bayes (verified there against the authors'
code, R ``fragility`` 1.6.1 and metafor; tests in ``tests/test_fragility.py``).

References
----------
Atal I, Porcher R, Boutron I, Ravaud P (2019). The statistical significance of
meta-analyses is frequently fragile: definition of a fragility index for
meta-analyses. J Clin Epidemiol 111:32-40. doi:10.1016/j.jclinepi.2019.03.012
Walsh M et al. (2014). J Clin Epidemiol 67:622-628 (fragility index of a trial).
Robins J, Breslow N, Greenland S (1986). Biometrics 42:311-323 (MH OR variance).
Greenland S, Robins JM (1985). Biometrics 41:55-68 (MH RR variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special

from mscmeta.engine.effects import ZeroCellRule
from mscmeta.engine.mantel_haenszel import mantel_haenszel
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import DataError, NotEstimableError

__all__ = ["PoolFn", "MantelHaenszelPool", "Modification", "FragilityResult",
           "fragility_index", "fragility_of", "exact_fragility_index"]

FloatArray = NDArray[np.float64]
PoolFn = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], tuple[float, float, float]]
_NAN3 = (math.nan, math.nan, math.nan)


# --------------------------------------------------------------------------
# Mantel-Haenszel pool (the engine's estimator and zero-cell conventions)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class MantelHaenszelPool:
    """Fixed-effect Mantel-Haenszel pool with the engine's zero-cell conventions.

    ``zero_cell="revman"`` (default; RevMan 5 / R ``meta::metabin(method="MH")`` defaults,
    i.e. metafor ``rma.mh(add=c(1/2, 1/2), to=c("only0", "only0"), drop00=c(TRUE, TRUE))``):
    tables with no events (or only events) in both arms dropped, 0.5 added to every cell of
    the others with a zero cell; ``"none"``: metafor ``rma.mh`` defaults (no correction).
    MH estimate with the Robins-Breslow-Greenland (OR) or Greenland-Robins (RR) variance
    (:func:`mscmeta.engine.mantel_haenszel.mantel_haenszel`); Wald CI ``log +- z se``.

    Parameters
    ----------
    measure : {"OR", "RR"}
    alpha : float
        Two-sided level of the returned confidence interval.
    zero_cell : {"revman", "none"}
    """

    measure: str = "OR"
    alpha: float = 0.05
    zero_cell: str = "revman"

    def __post_init__(self) -> None:
        if self.measure not in ("OR", "RR"):
            raise DataError(f"MantelHaenszelPool: measure must be 'OR' or 'RR', got {self.measure!r}")
        if not 0 < self.alpha < 1:
            raise DataError(f"MantelHaenszelPool: alpha must be in (0, 1), got {self.alpha!r}")
        if self.zero_cell not in ("revman", "none"):
            raise DataError(f"MantelHaenszelPool: zero_cell must be 'revman' or 'none', got {self.zero_cell!r}")

    def __call__(self, events_t: FloatArray, n_t: FloatArray, events_c: FloatArray,
                 n_c: FloatArray) -> tuple[float, float, float]:
        rule = ZeroCellRule.from_options(self.zero_cell)
        a, b, c, d = (np.asarray(x, dtype=float) for x in (events_t, n_t - events_t, events_c, n_c - events_c))
        drop = ((a == 0) & (c == 0)) | (((b == 0) & (d == 0)) if rule.pool.active or self.measure == "OR" else False)
        a, b, c, d = a[~drop], b[~drop], c[~drop], d[~drop]
        if a.size == 0:
            return _NAN3
        try:
            fit = mantel_haenszel(a, b, c, d, self.measure, correction=rule.pool)
        except NotEstimableError:
            return _NAN3
        if not (math.isfinite(fit.estimate) and math.isfinite(fit.se)):
            return _NAN3
        z = float(special.ndtri(1.0 - self.alpha / 2.0))
        return fit.estimate, fit.estimate - z * fit.se, fit.estimate + z * fit.se


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Modification:
    """One event-status change: ``change = +1`` turns a non-event into an event,
    ``-1`` an event into a non-event, in ``arm`` (``"treatment"``/``"control"``)
    of study ``study``; pooled log estimate and CI after this step."""

    step: int
    study: str
    study_index: int
    arm: str
    change: int
    events_after: int
    log_estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class FragilityResult:
    """Outcome of :func:`fragility_index`.

    ``fragility_index`` is ``None`` when significance cannot be altered;
    ``fragility_quotient`` = index / total number of patients.
    """

    fragility_index: int | None
    initially_significant: bool
    direction: str
    modifications: tuple[Modification, ...]
    initial: tuple[float, float, float]
    final: tuple[float, float, float]
    events_t: tuple[int, ...]
    events_c: tuple[int, ...]
    alpha: float
    fragility_quotient: float | None

    def modifications_frame(self) -> pd.DataFrame:
        """One row per event-status change: ``step, study, arm, change, events_after``, and the
        pooled log estimate and CI after the step."""
        cols = ["step", "study", "arm", "change", "events_after", "log_estimate", "ci_low", "ci_high"]
        return pd.DataFrame([{c: getattr(m, c) for c in cols} for m in self.modifications], columns=cols)

    def __str__(self) -> str:
        lo, hi = self.initial[1], self.initial[2]
        head = (f"Fragility index (Atal et al. 2019, alpha = {self.alpha:g}): "
                f"{'undefined' if self.fragility_index is None else self.fragility_index} ({self.direction}); "
                f"initial log estimate {self.initial[0]:.4f} [{lo:.4f}, {hi:.4f}]")
        steps = [f"  {m.step}. {m.study}, {m.arm} arm: {'+1' if m.change > 0 else '-1'} event "
                 f"(now {m.events_after}) -> [{m.ci_low:.4f}, {m.ci_high:.4f}]" for m in self.modifications]
        return "\n".join([head, *steps])

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly mapping."""
        out = dict(self.__dict__)
        out["modifications"] = [dict(m.__dict__) for m in self.modifications]
        out["initial"], out["final"] = list(self.initial), list(self.final)
        out["events_t"], out["events_c"] = list(self.events_t), list(self.events_c)
        return out


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    n_t: FloatArray
    n_c: FloatArray
    studies: tuple[str, ...]
    pool: PoolFn


def _validate(events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike,
              studies: Sequence[str] | None
              ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, tuple[str, ...]]:
    """Check counts (non-negative integers, events <= arm size, equal lengths)."""
    cols = {"events_t": events_t, "n_t": n_t, "events_c": events_c, "n_c": n_c}
    arr = {k: np.asarray(v, dtype=float).ravel() for k, v in cols.items()}
    k = arr["events_t"].size
    if k == 0:
        raise DataError("events_t: no studies given")
    names = tuple(str(s) for s in studies) if studies is not None else tuple(
        f"study {i + 1}" for i in range(k))
    if len(names) != k:
        raise DataError(f"studies: length {len(names)} differs from events_t length {k}")
    for col, values in arr.items():
        if values.size != k:
            raise DataError(f"{col}: length {values.size} differs from events_t length {k}")
        for i, x in enumerate(values):
            if not (math.isfinite(x) and x >= 0 and x == int(x)):
                raise DataError(f"study {names[i]!r}: {col} must be a non-negative integer (got {x!r})")
    for ev, tot in (("events_t", "n_t"), ("events_c", "n_c")):
        for i in np.nonzero(arr[ev] > arr[tot])[0][:1]:
            raise DataError(f"study {names[i]!r}: {ev} ({arr[ev][i]:g}) exceeds {tot} ({arr[tot][i]:g})")
    return arr["events_t"], arr["n_t"], arr["events_c"], arr["n_c"], names


def _pooled(prob: _Problem, e_t: FloatArray, e_c: FloatArray) -> tuple[float, float, float]:
    est, lo, hi = prob.pool(e_t.copy(), prob.n_t.copy(), e_c.copy(), prob.n_c.copy())
    return float(est), float(lo), float(hi)


def _candidates(prob: _Problem, e_t: FloatArray, e_c: FloatArray,
                upward: bool) -> Iterator[tuple[int, str, int]]:
    """Feasible single moves in tie-break order: removals (by study), then additions.

    ``upward`` moves raise the log effect (control -1, treatment +1); otherwise
    treatment -1, control +1.
    """
    remove_arm, add_arm = ("control", "treatment") if upward else ("treatment", "control")
    for arm, change in ((remove_arm, -1), (add_arm, +1)):
        events = e_c if arm == "control" else e_t
        sizes = prob.n_c if arm == "control" else prob.n_t
        for i in range(len(events)):
            if 0 <= events[i] + change <= sizes[i]:
                yield i, arm, change


def _apply(e_t: FloatArray, e_c: FloatArray, i: int, arm: str, change: int
           ) -> tuple[FloatArray, FloatArray]:
    e_t, e_c = e_t.copy(), e_c.copy()
    (e_c if arm == "control" else e_t)[i] += change
    return e_t, e_c


# bound index (1 = ci_low, 2 = ci_high) and sign (+1 maximise, -1 minimise) per case
_CASES = {
    "sig-below": (2, +1, True, lambda r: r[2] >= 0),
    "sig-above": (1, -1, False, lambda r: r[1] <= 0),
    "up": (1, +1, True, lambda r: r[1] >= 0),
    "down": (2, -1, False, lambda r: r[2] <= 0),
}


def _greedy_path(prob: _Problem, e_t: FloatArray, e_c: FloatArray, case: str,
                 max_steps: int) -> tuple[list[Modification], FloatArray, FloatArray, bool]:
    """Run the greedy iterations of one case; return (steps, e_t, e_c, flipped)."""
    bound, sign, upward, flipped = _CASES[case]
    steps: list[Modification] = []
    while len(steps) < max_steps:
        best: tuple[float, int, str, int, tuple[float, float, float]] | None = None
        for i, arm, change in _candidates(prob, e_t, e_c, upward):
            res = _pooled(prob, *_apply(e_t, e_c, i, arm, change))
            score = sign * res[bound]
            if math.isfinite(score) and (best is None or score > best[0]):
                best = (score, i, arm, change, res)
        if best is None:
            return steps, e_t, e_c, False
        _, i, arm, change, res = best
        e_t, e_c = _apply(e_t, e_c, i, arm, change)
        after = int((e_c if arm == "control" else e_t)[i])
        steps.append(Modification(len(steps) + 1, prob.studies[i], i, arm, change, after, *res))
        if flipped(res):
            return steps, e_t, e_c, True
    return steps, e_t, e_c, False


def _significant(res: tuple[float, float, float]) -> bool:
    return res[2] < 0 or res[1] > 0


def _path_possible(prob: _Problem, upward: bool) -> bool:
    """Worst-case check of the non-significant case (Atal's ``worst_case``)."""
    zeros = np.zeros_like(prob.n_t)
    e_t, e_c = (prob.n_t, zeros) if upward else (zeros, prob.n_c)
    res = _pooled(prob, e_t, e_c)
    return res[1] >= 0 if upward else res[2] <= 0


def _check_pool_alpha(pool: PoolFn, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise DataError(f"alpha: must be in (0, 1), got {alpha!r}")
    pool_alpha = getattr(pool, "alpha", None)
    if pool_alpha is not None and not math.isclose(float(pool_alpha), alpha):
        raise DataError(f"alpha: {alpha} differs from the pool's alpha {pool_alpha}")


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def fragility_index(events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike,
                    pool: PoolFn | None = None, alpha: float = 0.05,
                    studies: Sequence[str] | None = None,
                    max_steps: int | None = None) -> FragilityResult:
    """Fragility index of a pooled two-arm meta-analysis (Atal et al. 2019, greedy).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like of int
        Events and arm sizes, treatment and control, one entry per study.
    pool : callable, optional
        ``pool(events_t, n_t, events_c, n_c) -> (log_estimate, ci_low, ci_high)``
        at level ``1 - alpha`` (``nan`` if not estimable). Default:
        ``MantelHaenszelPool("OR", alpha)`` (RevMan conventions).
    alpha : float
        Significance level; must match ``pool.alpha`` when the pool has one.
    studies : sequence of str, optional
        Study labels for the modification list.
    max_steps : int, optional
        Iteration cap per path (default: total number of patients).

    Returns
    -------
    FragilityResult

    Raises
    ------
    DataError
        Invalid counts/options. ``NotEstimableError`` if the original data
        cannot be pooled.

    References
    ----------
    Atal et al. (2019), J Clin Epidemiol 111:32-40; github:iatal/fragility_ma.
    """
    e_t, nt, e_c, nc, names = _validate(events_t, n_t, events_c, n_c, studies)
    pool = MantelHaenszelPool("OR", alpha) if pool is None else pool
    _check_pool_alpha(pool, alpha)
    prob = _Problem(nt, nc, names, pool)
    initial = _pooled(prob, e_t, e_c)
    if not all(math.isfinite(x) for x in initial):
        raise NotEstimableError("pool: the pooled estimate of the original data is not estimable")
    cap = int(nt.sum() + nc.sum()) if max_steps is None else int(max_steps)
    if _significant(initial):
        case = "sig-below" if initial[2] < 0 else "sig-above"
        steps, ft, fc, ok = _greedy_path(prob, e_t, e_c, case, cap)
        return _result(prob, initial, steps, ft, fc, ok, True, alpha,
                       "significant -> non-significant")
    best = None
    for case in ("up", "down"):
        if _path_possible(prob, upward=(case == "up")):
            limit = cap if best is None else len(best[0]) - 1
            steps, ft, fc, ok = _greedy_path(prob, e_t, e_c, case, limit)
            if ok and (best is None or len(steps) < len(best[0])):
                best = (steps, ft, fc)
    if best is None:
        return _result(prob, initial, [], e_t, e_c, False, False, alpha,
                       "non-significant; significance cannot be reached")
    return _result(prob, initial, best[0], best[1], best[2], True, False, alpha,
                   "non-significant -> significant")


def _result(prob: _Problem, initial: tuple[float, float, float], steps: list[Modification],
            e_t: FloatArray, e_c: FloatArray, flipped: bool, significant: bool, alpha: float,
            direction: str) -> FragilityResult:
    index = len(steps) if flipped else None
    total = float(prob.n_t.sum() + prob.n_c.sum())
    final = (steps[-1].log_estimate, steps[-1].ci_low, steps[-1].ci_high) if steps else initial
    if not flipped:
        direction += "" if "cannot" in direction else " (cannot be altered)"
    return FragilityResult(index, significant, direction, tuple(steps), initial, final,
                           tuple(int(x) for x in e_t), tuple(int(x) for x in e_c), alpha,
                           None if index is None else index / total)


def _move_space(prob: _Problem, e_t: FloatArray, e_c: FloatArray, upward: bool
                ) -> tuple[list[tuple[int, str, int]], list[int]]:
    """All (study, arm, change) directions of a case and how often each can be applied."""
    moves, caps = [], []
    for i, arm, change in _candidates(prob, e_t, e_c, upward):
        events = e_c if arm == "control" else e_t
        sizes = prob.n_c if arm == "control" else prob.n_t
        moves.append((i, arm, change))
        caps.append(int(events[i]) if change < 0 else int(sizes[i] - events[i]))
    return moves, caps


def _bounded_compositions(total: int, caps: list[int]) -> Iterator[tuple[int, ...]]:
    """All ``x`` with ``sum(x) = total`` and ``0 <= x_j <= caps[j]``."""
    if not caps:
        if total == 0:
            yield ()
        return
    for first in range(min(total, caps[0]), -1, -1):
        for rest in _bounded_compositions(total - first, caps[1:]):
            yield (first,) + rest


def exact_fragility_index(events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike,
                          n_c: ArrayLike, pool: PoolFn | None = None, alpha: float = 0.05,
                          max_changes: int = 6) -> int | None:
    """Exhaustive minimum over the same move set as :func:`fragility_index`.

    Tries every combination of ``1, 2, ..., max_changes`` single-event changes
    (same directions as the greedy algorithm in each case, same stop rules)
    and returns the smallest number that flips significance, or ``None`` if
    none up to ``max_changes`` does. Exponential cost: for small checks only.
    """
    e_t, nt, e_c, nc, names = _validate(events_t, n_t, events_c, n_c, None)
    pool = MantelHaenszelPool("OR", alpha) if pool is None else pool
    _check_pool_alpha(pool, alpha)
    prob = _Problem(nt, nc, names, pool)
    initial = _pooled(prob, e_t, e_c)
    if _significant(initial):
        cases = ["sig-below" if initial[2] < 0 else "sig-above"]
    else:
        cases = [c for c in ("up", "down") if _path_possible(prob, c == "up")]
    for total in range(1, max_changes + 1):
        for case in cases:
            upward, flipped = _CASES[case][2], _CASES[case][3]
            moves, caps = _move_space(prob, e_t, e_c, upward)
            for counts in _bounded_compositions(total, caps):
                ft, fc = e_t.copy(), e_c.copy()
                for (i, arm, change), times in zip(moves, counts):
                    (fc if arm == "control" else ft)[i] += change * times
                res = _pooled(prob, ft, fc)
                if all(math.isfinite(x) for x in res) and flipped(res):
                    return total
    return None


def fragility_of(result: MetaResult, max_steps: int | None = None) -> FragilityResult:
    """Fragility index of a pooled Mantel-Haenszel OR or RR (Atal et al. 2019).

    The pool is the result's own: its measure, its zero-cell convention (``"revman"`` or
    ``"none"``) and ``alpha = 1 - level``; study labels and counts from ``result.studies``.

    Raises
    ------
    DataError
        The result is not a fixed-effect Mantel-Haenszel OR or RR, or uses a custom
        continuity correction.
    """
    if result.method != "MH" or result.model != "fixed" or result.measure not in ("OR", "RR"):
        raise DataError("the fragility index is computed for a fixed-effect Mantel-Haenszel OR or RR "
                        f"(this is a {result.model}-effect {result.method} {result.measure})")
    if result.zero_cell not in ("revman", "none"):
        raise DataError(f"the fragility index supports the 'revman' and 'none' zero-cell conventions, not "
                        f"{result.zero_cell!r}")
    st = result.studies
    alpha = round(1.0 - float(result.level), 12)
    pool = MantelHaenszelPool(result.measure, alpha, result.zero_cell)
    return fragility_index(st["events_t"], st["n_t"], st["events_c"], st["n_c"], pool=pool, alpha=alpha,
                           studies=[str(s) for s in st["study"]], max_steps=max_steps)

