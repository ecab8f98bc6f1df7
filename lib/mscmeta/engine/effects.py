"""Study-level effect sizes of 2x2 tables, continuity corrections and the zero-cell conventions.

Notation (as in metafor's ``escalc``): ``ai``/``bi`` events/non-events in the treatment
arm, ``ci``/``di`` in the control arm, ``n1i = ai + bi``, ``n2i = ci + di``.

Effect measures (analysis scale) and their large-sample variances:

* log odds ratio ``log(ai*di / (bi*ci))``, variance ``1/ai + 1/bi + 1/ci + 1/di``
  (Woolf; metafor ``escalc(measure="OR")``);
* log risk ratio ``log((ai/n1i) / (ci/n2i))``, variance ``1/ai - 1/n1i + 1/ci - 1/n2i``
  (metafor ``escalc(measure="RR")``);
* risk difference ``ai/n1i - ci/n2i``, variance ``p1(1-p1)/n1i + p2(1-p2)/n2i``
  (metafor ``escalc(measure="RD", vtype="LS")``);
* Peto log odds ratio ``(ai - Ei) / Vi`` with variance ``1/Vi``, ``Ei = (ai+ci) n1i/Ni``,
  ``Vi = (ai+ci)(bi+di) n1i n2i / (Ni^2 (Ni-1))`` (Yusuf et al. 1985; metafor
  ``escalc(measure="PETO")``);
* arcsine (square-root) difference ``asin(sqrt(ai/n1i)) - asin(sqrt(ci/n2i))``, variance
  ``1/(4 n1i) + 1/(4 n2i)`` (Rücker et al. 2009; metafor ``escalc(measure="AS")``). It is
  defined for zero cells, so it is never corrected, and double-zero studies keep their
  estimate 0 (metafor ignores ``add``/``to`` for AS).

Continuity corrections (:class:`ContinuityCorrection`, metafor's ``add`` and ``to``):
``add`` is added to every cell of the studies that ``to`` selects -- ``"only0"`` studies
with a zero cell, ``"if0all"`` every study if any (retained) study has a zero cell,
``"all"`` every study, ``"none"`` no study. The **treatment-arm correction** of Sweeting,
Sutton & Lambert (2004) adds ``k_T = 2 add n1i/(n1i + n2i)`` to both cells of the treatment
arm and ``k_C = 2 add n2i/(n1i + n2i)`` to both cells of the control arm: the correction is
proportional to the reciprocal of the size of the *opposite* arm and sums to ``2 add``, so
with ``add = 1/2`` it is R ``meta``'s ``incr="TACC"`` (``incr.e = n.e/(n.e + n.c)``) and
with equal arms it equals the constant correction.

Zero-cell conventions (:class:`ZeroCellRule`):

``"revman"``
    Cochrane Handbook 5.1 section 9.4.4 / RevMan 5: 0.5 is added to every cell of a study
    with a zero cell. Studies with no events (or only events) in both arms are "not
    estimable" for OR and RR and excluded; for RD they are kept. For RD the point estimate
    uses the raw counts and only its variance the corrected counts (R ``meta``'s RevMan 5
    emulation, ``metabin``). Peto's method never uses a correction. With explicit ``add``,
    ``to`` or ``correction`` the same correction is applied to the study estimates and
    inside the MH (and Peto) estimator: metafor ``rma.mh(add=c(a, a), to=c(t, t),
    drop00=c(TRUE, TRUE))``.
``"none"``
    metafor ``rma.mh``/``rma.peto`` defaults: no correction inside the Mantel-Haenszel or
    Peto estimator; the study-level estimates (shown per study and used for Cochran's Q)
    come from ``escalc(add=1/2, to="only0", drop00=TRUE)``, i.e. 0.5 added to the cells of
    zero-cell studies and double-zero studies dropped. Explicit ``add``/``to``/``correction``
    change only the study-level estimates: ``rma.mh(add=c(a, 0), to=c(t, "none"))``.
``"escalc"``
    metafor ``escalc``/``rma`` defaults: ``add=1/2, to="only0", drop00=FALSE`` -- double-zero
    studies are kept with the 0.5 correction. Selected with ``zero_cell="none",
    keep_double_zero=True`` (or ``zero_cell="escalc"``).

References
----------
Sweeting MJ, Sutton AJ, Lambert PC (2004). What to add to nothing? Use and avoidance of
continuity corrections in meta-analysis of sparse data. Stat Med 23:1351-1375.
Rücker G, Schwarzer G, Carpenter J, Olkin I (2009). Why add anything to nothing? The
arcsine difference as a measure of treatment effect in meta-analysis with zero cells.
Stat Med 28:721-738.
Viechtbauer W (2010). J Stat Softw 36(3): metafor ``escalc`` (``add``, ``to``, ``drop00``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mscmeta.engine.options import ADD_TO, ZERO_CELLS


@dataclass(frozen=True)
class ContinuityCorrection:
    """What is added to the cells of which studies (metafor ``add``/``to``; Sweeting 2004).

    Attributes
    ----------
    add : float
        The constant added to every cell (the average per-cell increment of the
        treatment-arm correction).
    to : {"only0", "if0all", "all", "none"}
        Which studies are corrected (metafor semantics).
    treatment_arm : bool
        Split ``2 add`` between the arms in proportion to their sizes (Sweeting et al. 2004).
    """

    add: float = 0.5
    to: str = "only0"
    treatment_arm: bool = False

    @property
    def active(self) -> bool:
        """True when the correction can change a cell."""
        return self.add > 0 and self.to != "none"

    def selected(self, a, b, c, d, retained=None) -> np.ndarray:
        """Studies that ``to`` corrects; *retained* limits the ``if0all`` check (metafor drops first)."""
        a = np.asarray(a, dtype=float)
        zero = zero_cell_mask(a, b, c, d)
        if self.to == "only0":
            return zero & self.active
        if self.to == "if0all":
            kept = np.ones(a.shape, dtype=bool) if retained is None else np.asarray(retained, dtype=bool)
            return np.full(a.shape, bool((zero & kept).any()) and self.active)
        if self.to == "all":
            return np.full(a.shape, self.active)
        if self.to == "none":
            return np.zeros(a.shape, dtype=bool)
        raise ValueError(f"unknown 'to' value {self.to!r}; valid: {', '.join(ADD_TO)}")  # pragma: no cover

    def increments(self, a, b, c, d, retained=None) -> tuple[np.ndarray, np.ndarray]:
        """Per-study increments ``(k_T, k_C)`` of the treatment and control cells (0 where not corrected)."""
        a, b, c, d = (np.asarray(x, dtype=float) for x in (a, b, c, d))
        sel = self.selected(a, b, c, d, retained)
        if self.treatment_arm:
            n1, n2 = a + b, c + d
            inc_t, inc_c = 2 * self.add * n1 / (n1 + n2), 2 * self.add * n2 / (n1 + n2)
        else:
            inc_t = inc_c = np.full(a.shape, float(self.add))
        return np.where(sel, inc_t, 0.0), np.where(sel, inc_c, 0.0)

    def apply(self, a, b, c, d, retained=None) -> tuple[np.ndarray, ...]:
        """The four cell arrays with the increments added."""
        inc_t, inc_c = self.increments(a, b, c, d, retained)
        return (np.asarray(a, dtype=float) + inc_t, np.asarray(b, dtype=float) + inc_t,
                np.asarray(c, dtype=float) + inc_c, np.asarray(d, dtype=float) + inc_c)

    def describe(self) -> str:
        """A phrase naming the correction (e.g. "0.5 added to every cell of studies with a zero cell")."""
        if not self.active:
            return "no continuity correction"
        what = (f"treatment-arm correction (Sweeting et al. 2004; {2 * self.add:g} split between the arms in "
                "proportion to their sizes)" if self.treatment_arm else f"{self.add:g} added to every cell")
        where = {"only0": "of studies with a zero cell", "if0all": "of every study (some study has a zero cell)",
                 "all": "of every study"}[self.to]
        return f"{what} {where}"


NO_CORRECTION = ContinuityCorrection(0.0, "none")


@dataclass(frozen=True)
class ZeroCellRule:
    """How zero cells are handled at the study level and inside MH/Peto pooling.

    Attributes
    ----------
    label : str
        ``"revman"``, ``"none"`` or ``"escalc"``; with explicit ``add``/``to``/``correction``
        the base label followed by the correction, e.g. ``"revman add=0.1 to=all"``.
    study : ContinuityCorrection
        Correction of the study-level estimates (``escalc(add=..., to=...)``).
    study_drop00 : bool
        Drop studies with no events (or only events) in both arms from the study-level
        estimates (``escalc(drop00=TRUE)``).
    rd_raw_estimate : bool
        RevMan: the study risk difference uses the raw counts, only its variance the
        corrected counts.
    peto_study : ContinuityCorrection
        Correction of the study-level Peto estimates (none in RevMan, 0.5 to zero-cell
        studies in metafor's ``rma.peto``, which calls ``escalc(measure="PETO", add=1/2)``).
    pool : ContinuityCorrection
        Correction inside the Mantel-Haenszel estimator (RevMan 0.5, metafor none).
    peto_pool : ContinuityCorrection
        Correction inside Peto's estimator (none unless given explicitly under RevMan).
    pool_drop00 : bool
        Exclude double-zero studies from OR/RR pooling (RevMan; without a correction in the
        estimator only the studies that add nothing are left out, see
        :mod:`mscmeta.engine.binary`).
    keep_double_zero : bool
        Whether double-zero studies were asked to be kept.
    """

    label: str
    study: ContinuityCorrection
    study_drop00: bool
    rd_raw_estimate: bool
    peto_study: ContinuityCorrection
    pool: ContinuityCorrection
    peto_pool: ContinuityCorrection
    pool_drop00: bool
    keep_double_zero: bool

    @classmethod
    def from_options(cls, zero_cell: str, keep_double_zero: bool = False, add: float | None = None,
                     to: str | None = None, correction: str = "constant") -> ZeroCellRule:
        """Build the rule from the user options (values already normalised)."""
        if zero_cell == "escalc":
            zero_cell, keep_double_zero = "none", True
        custom = add is not None or to is not None or correction != "constant"
        cc = ContinuityCorrection(0.5 if add is None else float(add), to or "only0", correction == "treatment-arm")
        base = "revman" if zero_cell == "revman" else ("escalc" if keep_double_zero else "none")
        label = base if not custom else f"{base} {'treatment-arm ' if cc.treatment_arm else ''}add={cc.add:g} to={cc.to}"
        if zero_cell == "revman":
            return cls(label=label, study=cc, study_drop00=not keep_double_zero, rd_raw_estimate=True,
                       peto_study=cc if custom else NO_CORRECTION, pool=cc, peto_pool=cc if custom else NO_CORRECTION,
                       pool_drop00=not keep_double_zero, keep_double_zero=keep_double_zero)
        if zero_cell == "none":
            return cls(label=label, study=cc, study_drop00=not keep_double_zero, rd_raw_estimate=False,
                       peto_study=cc, pool=NO_CORRECTION, peto_pool=NO_CORRECTION,
                       pool_drop00=not keep_double_zero, keep_double_zero=keep_double_zero)
        raise ValueError(f"unknown zero-cell convention {zero_cell!r}")  # pragma: no cover - normalised upstream

    @property
    def custom(self) -> bool:
        """True when ``add``/``to``/``correction`` were given explicitly."""
        return self.label not in ZERO_CELLS

    def describe(self) -> str:
        """One sentence naming the convention (for reports and notes)."""
        if self.custom:
            where = ("the study estimates and inside the MH/Peto estimator" if self.pool.active
                     else "the study estimates only (no correction inside the MH/Peto estimator)")
            dz = "double-zero studies kept" if self.keep_double_zero else "double-zero studies not estimable for OR/RR"
            return f"continuity correction: {self.study.describe()}, for {where}; {dz}"
        if self.label == "revman":
            text = (
                "RevMan 5 convention: 0.5 added to every cell of studies with a zero cell, "
                "also inside the Mantel-Haenszel estimator"
            )
            text += (
                "; double-zero studies kept with the correction"
                if self.keep_double_zero
                else "; studies without events (or with only events) in both arms not estimable for OR/RR"
            )
            return text
        if self.label == "none":
            return (
                "metafor rma.mh/rma.peto convention: no continuity correction inside the MH/Peto estimator; "
                "study-level estimates (display, Q) with 0.5 added to zero-cell studies, double-zero studies dropped"
            )
        return (
            "metafor escalc convention: 0.5 added to every cell of studies with a zero cell, "
            "double-zero studies kept (drop00=FALSE); no correction inside the MH/Peto estimator"
        )


def zero_cell_mask(ai: np.ndarray, bi: np.ndarray, ci: np.ndarray, di: np.ndarray) -> np.ndarray:
    """Studies with at least one zero cell (metafor ``to="only0"``)."""
    return (np.asarray(ai) == 0) | (np.asarray(bi) == 0) | (np.asarray(ci) == 0) | (np.asarray(di) == 0)


def double_zero_mask(ai: np.ndarray, bi: np.ndarray, ci: np.ndarray, di: np.ndarray) -> np.ndarray:
    """Studies with no events in both arms or only events in both arms (metafor ``drop00``)."""
    return ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))


def _raw_effect(measure: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Effect and variance from (possibly corrected) cells; inf/nan where undefined."""
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            yi = np.log(a) + np.log(d) - np.log(b) - np.log(c)
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "RR":
            yi = np.log(a / n1) - np.log(c / n2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        elif measure == "RD":
            p1, p2 = a / n1, c / n2
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        elif measure == "PETO":
            big_n = n1 + n2
            xt, yt = a + c, b + d
            ei = xt * n1 / big_n
            v = xt * yt * (n1 / big_n) * (n2 / big_n) / (big_n - 1)
            yi = (a - ei) / v
            vi = 1 / v
        elif measure == "AS":
            yi = np.arcsin(np.sqrt(a / n1)) - np.arcsin(np.sqrt(c / n2))
            vi = 1 / (4 * n1) + 1 / (4 * n2)
        else:  # pragma: no cover - normalised upstream
            raise ValueError(f"unknown measure {measure!r}")
    return yi, vi


def _cells(ai, n1i, ci, n2i) -> tuple[np.ndarray, ...]:
    a = np.asarray(ai, dtype=float)
    c = np.asarray(ci, dtype=float)
    return a, np.asarray(n1i, dtype=float) - a, c, np.asarray(n2i, dtype=float) - c


def escalc_binary(
    measure: str,
    ai: np.ndarray,
    n1i: np.ndarray,
    ci: np.ndarray,
    n2i: np.ndarray,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    correction: str = "constant",
) -> tuple[np.ndarray, np.ndarray]:
    """Study-level effect sizes exactly as metafor's ``escalc`` computes them.

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "PETO", "AS"}
    ai, n1i, ci, n2i : array_like
        Events and totals in the treatment and control arm.
    add : float
        Continuity correction (metafor default 1/2); ignored for ``"AS"`` as in metafor.
    to : {"only0", "all", "if0all", "none"}
        Which studies get the correction (metafor semantics; ``"if0all"`` looks at the
        studies left after *drop00*, as metafor).
    drop00 : bool
        Set studies without events (or with only events) in both arms to NaN.
    correction : {"constant", "treatment-arm"}
        ``"treatment-arm"``: Sweeting et al. (2004), see the module docstring (R ``meta``
        ``incr="TACC"`` for ``add=1/2``).

    Returns
    -------
    yi, vi : ndarray
        NaN where the effect is not defined (metafor returns ``NA``).
    """
    if to not in ADD_TO:
        raise ValueError(f"unknown 'to' value {to!r}; valid: {', '.join(ADD_TO)}")
    a, b, c, d = _cells(ai, n1i, ci, n2i)
    dz = double_zero_mask(a, b, c, d) if drop00 else np.zeros(a.shape, dtype=bool)
    cc = ContinuityCorrection(float(add), to, correction == "treatment-arm")
    if measure != "AS":
        a, b, c, d = cc.apply(a, b, c, d, retained=~dz)
    yi, vi = _raw_effect(measure, a, b, c, d)
    bad = dz | ~np.isfinite(yi) | ~np.isfinite(vi)
    return np.where(bad, np.nan, yi), np.where(bad, np.nan, vi)


@dataclass(frozen=True)
class StudyEffects:
    """Study-level estimates under a zero-cell convention.

    Attributes
    ----------
    yi, vi : ndarray
        Estimate and sampling variance on the analysis scale (NaN where not estimable).
    corrected : ndarray of bool
        A continuity correction was added to the cells of the study for ``yi``/``vi``.
    double_zero : ndarray of bool
        No events (or only events) in both arms.
    estimable : ndarray of bool
        ``yi`` and ``vi`` are finite and ``vi > 0``.
    notes : list of str
        Per-study note ("" when nothing to say).
    """

    yi: np.ndarray
    vi: np.ndarray
    corrected: np.ndarray
    double_zero: np.ndarray
    estimable: np.ndarray
    notes: list[str]
    increments: tuple[np.ndarray, np.ndarray] | None = None


def _double_zero_note(a: float, c: float) -> str:
    return "no events in either arm" if a == 0 and c == 0 else "all participants had the event in both arms"


def correction_note(cc: ContinuityCorrection, inc_t: float, inc_c: float) -> str:
    """What was added to one study's cells, e.g. "0.5 added to each cell"."""
    if cc.treatment_arm:
        return f"{inc_t:.3g} added to each treatment cell and {inc_c:.3g} to each control cell"
    return f"{cc.add:g} added to each cell"


def _study_notes(ok, dz, corrected, a, c, cc, incs, what) -> list[str]:
    notes = []
    for i in range(len(a)):
        if not ok[i]:
            notes.append(f"not estimable: {_double_zero_note(a[i], c[i])}" if dz[i] else "not estimable")
        elif corrected[i]:
            extra = f" ({_double_zero_note(a[i], c[i])})" if dz[i] else ""
            notes.append(f"{correction_note(cc, incs[0][i], incs[1][i])} for the study {what}{extra}")
        else:
            notes.append("")
    return notes


def study_effects(
    measure: str,
    ai: np.ndarray,
    n1i: np.ndarray,
    ci: np.ndarray,
    n2i: np.ndarray,
    rule: ZeroCellRule,
) -> StudyEffects:
    """Study-level estimates for display, Cochran's Q and inverse-variance pooling.

    See the module docstring for the conventions. ``measure="PETO"`` gives Peto's
    one-step log odds ratio per study (corrected only under metafor conventions or an
    explicit correction); ``measure="AS"`` is never corrected and keeps double-zero studies.
    """
    a, b, c, d = _cells(ai, n1i, ci, n2i)
    dz = double_zero_mask(a, b, c, d)
    keeps_dz = measure == "AS" or (measure == "RD" and rule.rd_raw_estimate)
    drop = dz & rule.study_drop00 & (not keeps_dz)
    cc = NO_CORRECTION if measure == "AS" else (rule.peto_study if measure == "PETO" else rule.study)
    inc_t, inc_c = cc.increments(a, b, c, d, retained=~drop)
    yi, vi = _raw_effect(measure, a + inc_t, b + inc_t, c + inc_c, d + inc_c)
    if measure == "RD" and rule.rd_raw_estimate:
        with np.errstate(divide="ignore", invalid="ignore"):
            yi = a / (a + b) - c / (c + d)
    ok = ~drop & np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    yi = np.where(ok, yi, np.nan)
    vi = np.where(ok, vi, np.nan)
    corrected = ok & ((inc_t > 0) | (inc_c > 0))
    what = "variance" if measure == "RD" and rule.rd_raw_estimate else "estimate"
    notes = _study_notes(ok, dz, corrected, a, c, cc, (inc_t, inc_c), what)
    return StudyEffects(yi=yi, vi=vi, corrected=corrected, double_zero=dz, estimable=ok, notes=notes,
                        increments=(inc_t, inc_c))
