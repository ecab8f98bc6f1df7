"""Cochran-Mantel-Haenszel test and Tarone's heterogeneity test for odds ratios.

Reproduces the two tests that metafor's ``rma.mh(measure="OR")`` prints
(``Cochran-Mantel-Haenszel Test`` and ``Tarone's Test for Heterogeneity``),
following the conventions of metafor 3.8.1, ``R/rma.mh.r``:

* **No continuity correction or exclusion of tables** in the tests: metafor's
  defaults ``add = c(1/2, 0)``, ``to = c("only0", "none")``,
  ``drop00 = c(TRUE, FALSE)`` apply the 1/2 correction and drop double-zero
  tables only for the study-level ``yi`` (first element), never for the
  Mantel-Haenszel computations (second element). Tables with no events (or
  only events) in both arms contribute nothing to either test.
* **CMH statistic** (hypergeometric variance, ``N - 1`` denominator)::

      CMH = (|sum_i (a_i - n1_i m1_i / N_i)| - 0.5 * correct)^2
            / sum_i n1_i n2_i m1_i m0_i / (N_i^2 (N_i - 1))

  with ``m1 = a + c`` (events), ``m0 = b + d``; ``correct=True`` is the
  default. metafor does *not* truncate ``|O - E| - 0.5`` at zero, so with
  ``|O - E| < 0.5`` the corrected statistic is positive; this is replicated.
  df = 1. Undefined (``nan``, metafor ``NA``: "test value not computable")
  when there are no events or no non-events at all (``sum m1 = 0`` or
  ``sum m0 = 0``).
* **Tarone's test** (Breslow-Day statistic with Tarone's correction),
  evaluated at the uncorrected Mantel-Haenszel OR ``psi = R/S``
  (``R = sum a d / N``, ``S = sum b c / N``). Expected counts ``E_i`` solve
  ``E (n2 - m1 + E) = psi (n1 - E)(m1 - E)``; only tables with ``E_i > 0``,
  ``m1_i > 0`` and ``m0_i > 0`` enter (``k_used`` = metafor's ``k.pos``)::

      BD = sum_i (a_i - E_i)^2 / V_i,  1/V_i = 1/E + 1/(n1-E) + 1/(m1-E) + 1/(n2-m1+E)
      X^2 = max(0, BD - (sum_i (a_i - E_i))^2 / sum_i V_i),   df = k_used - 1

  Undefined (``nan``) when ``R = 0`` or ``S = 0`` (MH OR not estimable); the
  p-value is ``nan`` when ``k_used <= 1`` (metafor prints ``p-val NA``).
* ``E_i`` is computed as ``2 psi n1 m1 / (A + sqrt(A^2 - 4 psi (psi-1) n1 m1))``
  with ``A = psi (n1 + m1) + n2 - m1``: algebraically identical to metafor's
  ``(A - B) / (2 (psi - 1))`` but free of cancellation when ``psi`` is close
  to (but not exactly) 1. Where metafor's form breaks down numerically (e.g.
  ``psi = 1 - 1e-16``, giving ``k.pos = 0`` and ``NA``), this module returns
  the mathematically correct statistic.
* Tables with an empty arm (``n1 = 0`` or ``n2 = 0``) are rejected
  (``DataError``); metafor would accept them (and give ``NaN`` if ``N = 1``).

References
----------
Mantel N, Haenszel W (1959). J Natl Cancer Inst 22:719-748.
Breslow NE, Day NE (1980). Statistical Methods in Cancer Research I. IARC.
Tarone RE (1985). On heterogeneity tests based on efficient scores.
Biometrika 72:91-95.
Rothman KJ, Greenland S, Lash TL (2008). Modern Epidemiology, 3rd ed., ch. 15.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
J Stat Softw 36(3). metafor 3.8.1, ``R/rma.mh.r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from mscmeta.engine.validation import DataError

__all__ = ["CMHTest", "TaroneTest", "MHTests", "tables_from_events", "cmh_test", "tarone_test", "mh_tests"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CMHTest:
    """Cochran-Mantel-Haenszel test of ``OR = 1`` (``nan`` where not computable)."""

    statistic: float
    df: int
    pvalue: float
    correct: bool
    computable: bool

    def to_dict(self) -> dict[str, object]:
        return _jsonable(self.__dict__)


@dataclass(frozen=True)
class TaroneTest:
    """Tarone's test for heterogeneity of odds ratios (plus the Breslow-Day value).

    ``k_used`` is the number of tables entering the statistic (metafor
    ``k.pos``); ``df = k_used - 1``; ``pvalue`` is ``nan`` when ``df < 1``.
    """

    statistic: float
    df: int
    pvalue: float
    breslow_day: float
    k_used: int
    computable: bool

    def to_dict(self) -> dict[str, object]:
        return _jsonable(self.__dict__)


@dataclass(frozen=True)
class MHTests:
    """Both tests, printed like metafor's ``print.rma.mh`` (measure ``"OR"``)."""

    cmh: CMHTest
    tarone: TaroneTest
    k: int

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "cmh": self.cmh.to_dict(), "tarone": self.tarone.to_dict()}

    def __str__(self) -> str:
        not_comp = "test value not computable for these data"
        cmh = (not_comp if not self.cmh.computable else
               f"CMH = {self.cmh.statistic:.4f}, df = 1, p-val {_fmt_p(self.cmh.pvalue)}")
        ta = self.tarone
        tar = (not_comp if not ta.computable else
               f"X^2 = {ta.statistic:.4f}, df = {ta.df}, p-val {_fmt_p(ta.pvalue)}")
        return (f"Cochran-Mantel-Haenszel Test:    {cmh}\n"
                f"Tarone's Test for Heterogeneity: {tar}")


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "NA"
    return "< 0.0001" if p < 1e-4 else f"= {p:.4f}"


def _jsonable(d: dict[str, object]) -> dict[str, object]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------
_COLUMNS = ("ai", "bi", "ci", "di")


def tables_from_events(events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike,
                       n_c: ArrayLike, studies: Sequence[str] | None = None
                       ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Convert events/totals per arm to 2x2 cells ``(ai, bi, ci, di)``.

    ``ai`` = treatment events, ``bi`` = treatment non-events, ``ci`` =
    control events, ``di`` = control non-events (metafor's layout).
    """
    cols = {"events_t": events_t, "n_t": n_t, "events_c": events_c, "n_c": n_c}
    arr = {name: np.asarray(v, dtype=float).ravel() for name, v in cols.items()}
    names = _study_names(len(arr["events_t"]), studies)
    for name, values in arr.items():
        _check_column(name, values, names)
    for ev, tot in (("events_t", "n_t"), ("events_c", "n_c")):
        bad = np.nonzero(arr[ev] > arr[tot])[0]
        if bad.size:
            i = bad[0]
            raise DataError(f"study {names[i]!r}: {ev} ({arr[ev][i]:g}) exceeds {tot} ({arr[tot][i]:g})")
    return (arr["events_t"], arr["n_t"] - arr["events_t"], arr["events_c"],
            arr["n_c"] - arr["events_c"])


def _study_names(k: int, studies: Sequence[str] | None) -> tuple[str, ...]:
    if studies is None:
        return tuple(f"study {i + 1}" for i in range(k))
    names = tuple(str(s) for s in studies)
    if len(names) != k:
        raise DataError(f"studies: length {len(names)} differs from the number of tables {k}")
    return names


def _check_column(name: str, values: FloatArray, studies: tuple[str, ...]) -> None:
    if values.size != len(studies):
        raise DataError(f"{name}: length {values.size} differs from the number of tables {len(studies)}")
    if np.all(np.isfinite(values) & (values >= 0)):
        return
    for i, x in enumerate(values):
        if not (math.isfinite(x) and x >= 0):
            raise DataError(f"study {studies[i]!r}: {name} must be a finite count >= 0 (got {x!r})")


def _tables(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike,
            studies: Sequence[str] | None) -> tuple[FloatArray, ...]:
    cells = [np.asarray(x, dtype=float).ravel() for x in (ai, bi, ci, di)]
    if cells[0].size == 0:
        raise DataError("ai: no tables given")
    names = _study_names(cells[0].size, studies)
    for name, values in zip(_COLUMNS, cells):
        _check_column(name, values, names)
    a, b, c, d = cells
    for arm, n in (("ai + bi", a + b), ("ci + di", c + d)):
        empty = np.nonzero(n == 0)[0]
        if empty.size:
            raise DataError(f"study {names[empty[0]]!r}: empty arm ({arm} = 0)")
    return a, b, c, d


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
def cmh_test(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike,
             correct: bool = True, studies: Sequence[str] | None = None) -> CMHTest:
    """Cochran-Mantel-Haenszel chi-square test (df = 1) as in metafor ``rma.mh``.

    Parameters
    ----------
    ai, bi, ci, di : array_like
        Treatment events, treatment non-events, control events, control
        non-events per table (no continuity correction is applied).
    correct : bool
        Subtract 0.5 from ``|O - E|`` (metafor's ``correct=TRUE`` default);
        not truncated at 0.
    studies : sequence of str, optional
        Labels used in error messages.

    Returns
    -------
    CMHTest
        ``statistic``/``pvalue`` are ``nan`` (``computable=False``) when no
        table has an event, or none has a non-event.

    References
    ----------
    Mantel & Haenszel (1959); metafor 3.8.1 ``R/rma.mh.r`` (``MH``, ``MHp``).
    """
    a, b, c, d = _tables(ai, bi, ci, di, studies)
    n1, n2, m1, m0 = a + b, c + d, a + c, b + d
    big_n = n1 + n2
    if m1.sum() == 0 or m0.sum() == 0:
        return CMHTest(math.nan, 1, math.nan, bool(correct), False)
    deviation = abs(float(np.sum(a - n1 * m1 / big_n))) - (0.5 if correct else 0.0)
    variance = float(np.sum(n1 * n2 * m1 * m0 / (big_n ** 2 * (big_n - 1.0))))
    statistic = deviation ** 2 / variance
    return CMHTest(statistic, 1, float(special.chdtrc(1, statistic)), bool(correct), True)


def _expected_a(psi: float, n1: FloatArray, n2: FloatArray, m1: FloatArray) -> FloatArray:
    """Expected treatment events under a common OR ``psi`` given the margins
    (the root of the Breslow-Day quadratic inside the admissible range)."""
    big_a = psi * (n1 + m1) + (n2 - m1)
    disc = np.sqrt(np.maximum(big_a ** 2 - 4.0 * psi * (psi - 1.0) * n1 * m1, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * psi * n1 * m1 / (big_a + disc)


def tarone_test(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike,
                studies: Sequence[str] | None = None) -> TaroneTest:
    """Tarone's test for heterogeneity of ORs, as in metafor ``rma.mh``.

    Parameters
    ----------
    ai, bi, ci, di : array_like
        2x2 cells per table (no continuity correction is applied).
    studies : sequence of str, optional
        Labels used in error messages.

    Returns
    -------
    TaroneTest
        ``nan`` statistic (``computable=False``) when the MH OR is not
        estimable (``sum a d / N = 0`` or ``sum b c / N = 0``); ``nan``
        p-value when fewer than two tables enter.

    References
    ----------
    Breslow & Day (1980); Tarone (1985); metafor 3.8.1 ``R/rma.mh.r``
    (``BD``, ``TA``, ``TAp``, ``k.pos``).
    """
    a, b, c, d = _tables(ai, bi, ci, di, studies)
    n1, n2, m1, m0 = a + b, c + d, a + c, b + d
    big_n = n1 + n2
    r_sum, s_sum = float(np.sum(a * d / big_n)), float(np.sum(b * c / big_n))
    if r_sum == 0 or s_sum == 0:
        return TaroneTest(math.nan, 0, math.nan, math.nan, 0, False)
    expected = _expected_a(r_sum / s_sum, n1, n2, m1)
    use = (expected > 0) & (m1 > 0) & (m0 > 0)
    e, a_u = expected[use], a[use]
    n1_u, n2_u, m1_u = n1[use], n2[use], m1[use]
    var = 1.0 / (1.0 / e + 1.0 / (n1_u - e) + 1.0 / (m1_u - e) + 1.0 / (n2_u - m1_u + e))
    breslow_day = max(0.0, float(np.sum((a_u - e) ** 2 / var)))
    k_used = int(use.sum())
    if k_used == 0:
        return TaroneTest(math.nan, 0, math.nan, breslow_day, 0, False)
    statistic = max(0.0, breslow_day - float(np.sum(a_u - e)) ** 2 / float(np.sum(var)))
    df = k_used - 1
    pvalue = float(special.chdtrc(df, statistic)) if df >= 1 else math.nan
    return TaroneTest(statistic, df, pvalue, breslow_day, k_used, True)


def mh_tests(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike,
             correct: bool = True, studies: Sequence[str] | None = None) -> MHTests:
    """Both tests as printed by metafor ``rma.mh(measure="OR")``.

    See :func:`cmh_test` and :func:`tarone_test`; use
    :func:`tables_from_events` for events/totals input.
    """
    return MHTests(cmh_test(ai, bi, ci, di, correct, studies),
                   tarone_test(ai, bi, ci, di, studies), int(np.asarray(ai).size))
