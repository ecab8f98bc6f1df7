"""Study-level effect sizes of 2x2 tables and the zero-cell conventions.

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
  ``escalc(measure="PETO")``).

Zero-cell conventions (:class:`ZeroCellRule`):

``"revman"``
    Cochrane Handbook 5.1 section 9.4.4 / RevMan 5: 0.5 is added to every cell of a study
    with a zero cell. Studies with no events (or only events) in both arms are "not
    estimable" for OR and RR and excluded; for RD they are kept. For RD the point estimate
    uses the raw counts and only its variance the corrected counts (R ``meta``'s RevMan 5
    emulation, ``metabin``). Peto's method never uses a correction.
``"none"``
    metafor ``rma.mh``/``rma.peto`` defaults: no correction inside the Mantel-Haenszel or
    Peto estimator; the study-level estimates (shown per study and used for Cochran's Q)
    come from ``escalc(add=1/2, to="only0", drop00=TRUE)``, i.e. 0.5 added to the cells of
    zero-cell studies and double-zero studies dropped.
``"escalc"``
    metafor ``escalc``/``rma`` defaults: ``add=1/2, to="only0", drop00=FALSE`` -- double-zero
    studies are kept with the 0.5 correction. Selected with ``zero_cell="none",
    keep_double_zero=True`` (or ``zero_cell="escalc"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class ZeroCellRule:
    """How zero cells are handled at the study level and inside MH/Peto pooling.

    Attributes
    ----------
    label : str
        ``"revman"``, ``"none"`` or ``"escalc"``.
    study_add : float
        Value added to every cell of a study with a zero cell for the study-level
        estimates (``escalc(add=..., to="only0")``).
    study_drop00 : bool
        Drop studies with no events (or only events) in both arms from the study-level
        estimates (``escalc(drop00=TRUE)``).
    rd_raw_estimate : bool
        RevMan: the study risk difference uses the raw counts, only its variance the
        corrected counts.
    peto_study_add : float
        Value added to zero-cell studies for the study-level Peto estimates (0 in RevMan,
        0.5 in metafor's ``rma.peto`` which calls ``escalc(measure="PETO", add=1/2)``).
    pool_add : float
        Value added to every cell of zero-cell studies inside the Mantel-Haenszel
        estimator (0.5 RevMan, 0 metafor).
    pool_drop00 : bool
        Exclude double-zero studies from OR/RR pooling (they carry no information; with
        ``pool_add=0`` they contribute nothing anyway).
    keep_double_zero : bool
        Whether double-zero studies were asked to be kept.
    """

    label: str
    study_add: float
    study_drop00: bool
    rd_raw_estimate: bool
    peto_study_add: float
    pool_add: float
    pool_drop00: bool
    keep_double_zero: bool

    @classmethod
    def from_options(cls, zero_cell: str, keep_double_zero: bool = False) -> ZeroCellRule:
        """Build the rule from the user options (``zero_cell`` already normalised)."""
        if zero_cell == "escalc":
            zero_cell, keep_double_zero = "none", True
        if zero_cell == "revman":
            return cls(
                label="revman",
                study_add=0.5,
                study_drop00=not keep_double_zero,
                rd_raw_estimate=True,
                peto_study_add=0.0,
                pool_add=0.5,
                pool_drop00=not keep_double_zero,
                keep_double_zero=keep_double_zero,
            )
        if zero_cell == "none":
            return cls(
                label="escalc" if keep_double_zero else "none",
                study_add=0.5,
                study_drop00=not keep_double_zero,
                rd_raw_estimate=False,
                peto_study_add=0.5,
                pool_add=0.0,
                pool_drop00=not keep_double_zero,
                keep_double_zero=keep_double_zero,
            )
        raise ValueError(f"unknown zero-cell convention {zero_cell!r}")  # pragma: no cover - normalised upstream

    def describe(self) -> str:
        """One sentence naming the convention (for reports and notes)."""
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
    return (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)


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
        else:  # pragma: no cover - normalised upstream
            raise ValueError(f"unknown measure {measure!r}")
    return yi, vi


def escalc_binary(
    measure: str,
    ai: np.ndarray,
    n1i: np.ndarray,
    ci: np.ndarray,
    n2i: np.ndarray,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Study-level effect sizes exactly as metafor's ``escalc`` computes them.

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "PETO"}
    ai, n1i, ci, n2i : array_like
        Events and totals in the treatment and control arm.
    add : float
        Continuity correction (metafor default 1/2).
    to : {"only0", "all", "if0all", "none"}
        Which studies get the correction (metafor semantics).
    drop00 : bool
        Set studies without events (or with only events) in both arms to NaN.

    Returns
    -------
    yi, vi : ndarray
        NaN where the effect is not defined (metafor returns ``NA``).
    """
    a = np.asarray(ai, dtype=float)
    c = np.asarray(ci, dtype=float)
    b = np.asarray(n1i, dtype=float) - a
    d = np.asarray(n2i, dtype=float) - c
    dz = double_zero_mask(a, b, c, d) if drop00 else np.zeros(a.shape, dtype=bool)
    if to == "all":
        inc = np.full(a.shape, float(add))
    elif to == "only0":
        inc = np.where(zero_cell_mask(a, b, c, d), float(add), 0.0)
    elif to == "if0all":
        inc = np.full(a.shape, float(add) if zero_cell_mask(a, b, c, d).any() else 0.0)
    elif to == "none":
        inc = np.zeros(a.shape)
    else:
        raise ValueError(f"unknown 'to' value {to!r}; valid: all, only0, if0all, none")
    yi, vi = _raw_effect(measure, a + inc, b + inc, c + inc, d + inc)
    bad = dz | ~np.isfinite(yi) | ~np.isfinite(vi)
    yi = np.where(bad, np.nan, yi)
    vi = np.where(bad, np.nan, vi)
    return yi, vi


@dataclass(frozen=True)
class StudyEffects:
    """Study-level estimates under a zero-cell convention.

    Attributes
    ----------
    yi, vi : ndarray
        Estimate and sampling variance on the analysis scale (NaN where not estimable).
    corrected : ndarray of bool
        0.5 was added to the cells of the study for ``yi``/``vi``.
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


def _double_zero_note(a: float, c: float) -> str:
    return "no events in either arm" if a == 0 and c == 0 else "all participants had the event in both arms"


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
    one-step log odds ratio per study (corrected only under metafor conventions).
    """
    a = np.asarray(ai, dtype=float)
    c = np.asarray(ci, dtype=float)
    b = np.asarray(n1i, dtype=float) - a
    d = np.asarray(n2i, dtype=float) - c
    dz = double_zero_mask(a, b, c, d)
    zc = zero_cell_mask(a, b, c, d)
    add = rule.peto_study_add if measure == "PETO" else rule.study_add
    inc = np.where(zc, add, 0.0)
    yi, vi = _raw_effect(measure, a + inc, b + inc, c + inc, d + inc)
    if measure == "RD" and rule.rd_raw_estimate:
        with np.errstate(divide="ignore", invalid="ignore"):
            yi = a / (a + b) - c / (c + d)
    drop = dz & rule.study_drop00 & (measure != "RD" or not rule.rd_raw_estimate)
    ok = ~drop & np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    yi = np.where(ok, yi, np.nan)
    vi = np.where(ok, vi, np.nan)
    corrected = ok & (inc > 0)
    notes = []
    for i in range(len(a)):
        if not ok[i]:
            if dz[i]:
                notes.append(f"not estimable: {_double_zero_note(a[i], c[i])}")
            else:
                notes.append("not estimable")
        elif corrected[i]:
            what = "variance" if measure == "RD" and rule.rd_raw_estimate else "estimate"
            extra = f" ({_double_zero_note(a[i], c[i])})" if dz[i] else ""
            notes.append(f"0.5 added to each cell for the study {what}{extra}")
        else:
            notes.append("")
    return StudyEffects(yi=yi, vi=vi, corrected=corrected, double_zero=dz, estimable=ok, notes=notes)
