"""The 2x2 tables a GLMM is fitted to, and metafor's study-selection conventions.

Conventions (all as in metafor 3.8-1, ``R/rma.glmm.r`` and ``R/escalc.r``):

* ``drop00=True``: a study with no events in both arms (``ai = ci = 0``) or with events
  for every participant in both arms (``bi = di = 0``) is uninformative about the odds
  ratio and is removed before fitting. It still counts in ``k_total``.
* Heterogeneity summaries I^2/H^2 use the Higgins-Thompson typical within-study variance
  of the per-study log odds ratios of ``escalc(measure="OR", add=1/2, to="only0",
  drop00=drop00)`` (metafor's default ``i2def="1"``).

The counts are validated before they get here (:func:`mscmeta.engine.validation.check_binary`).

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
Journal of Statistical Software 36(3):1-48. metafor ``rma.glmm`` and ``escalc``
documentation (version 3.8-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mscmeta.engine.effects import double_zero_mask, escalc_binary
from mscmeta.engine.heterogeneity import typical_variance
from mscmeta.engine.validation import NotEstimableError


@dataclass(frozen=True)
class StudyTable:
    """Validated 2x2 tables: ``a``/``n1`` treatment events/size, ``c``/``n2`` control."""

    labels: tuple[str, ...]
    a: np.ndarray
    n1: np.ndarray
    c: np.ndarray
    n2: np.ndarray

    @classmethod
    def from_counts(cls, labels, counts) -> StudyTable:
        """From the labels and float count arrays of :func:`~mscmeta.engine.validation.check_binary`."""
        a, n1, c, n2 = (np.asarray(counts[k]).astype(np.int64) for k in ("events_t", "n_t", "events_c", "n_c"))
        return cls(tuple(str(x) for x in labels), a, n1, c, n2)

    @property
    def b(self) -> np.ndarray:
        return self.n1 - self.a

    @property
    def d(self) -> np.ndarray:
        return self.n2 - self.c

    @property
    def k(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> StudyTable:
        """The studies where the boolean mask ``keep`` is true."""
        labels = tuple(lab for lab, kept in zip(self.labels, keep, strict=True) if kept)
        return StudyTable(labels, self.a[keep], self.n1[keep], self.c[keep], self.n2[keep])

    def swapped(self) -> StudyTable:
        """Exchange the treatment and control arms."""
        return StudyTable(self.labels, self.c, self.n2, self.a, self.n1)


def select_studies(table: StudyTable, drop00: bool) -> tuple[StudyTable, tuple[tuple[str, str], ...]]:
    """Apply metafor's ``drop00`` rule; return used studies and (label, reason) of dropped ones.

    Raises
    ------
    NotEstimableError
        Fewer than two studies remain (metafor needs p + 1 <= k for ML), or the pooled
        odds ratio is not identified because one of the four margins (treatment events,
        treatment non-events, control events, control non-events) is zero in every
        remaining study.
    """
    dropped: list[tuple[str, str]] = []
    keep = np.ones(table.k, dtype=bool)
    if drop00:
        for i in np.flatnonzero(double_zero_mask(table.a, table.b, table.c, table.d)):
            why = ("no events in either arm" if table.a[i] == 0 and table.c[i] == 0
                   else "all participants had events in both arms")
            dropped.append((table.labels[i], f"{why} (drop00=True)"))
            keep[i] = False
    used = table.subset(keep)
    if used.k < 2:
        raise NotEstimableError(
            f"only {used.k} informative stud{'y' if used.k == 1 else 'ies'} left after dropping double-zero studies; "
            "a random-effects GLMM needs at least 2"
        )
    for cells, what in ((used.a, "no events in the treatment arm (events_t)"),
                        (used.b, "only events in the treatment arm (events_t == n_t)"),
                        (used.c, "no events in the control arm (events_c)"),
                        (used.d, "only events in the control arm (events_c == n_c)")):
        if int(cells.sum()) == 0:
            raise NotEstimableError(f"pooled odds ratio is not estimable: {what} in every study")
    return used, tuple(dropped)


def typical_within_variance(table: StudyTable, drop00: bool) -> float:
    """Higgins-Thompson 'typical' sampling variance used by metafor for I^2 in rma.glmm.

    ``vt = (k_yi - 1) / (sum w - sum w^2 / sum w)`` with ``w = 1/vi`` over the studies with
    an ``escalc(measure="OR", add=1/2, to="only0", drop00=drop00)`` log odds ratio
    (metafor 3.8-1 ``rma.glmm``, default ``i2def="1"``).
    """
    _, vi = escalc_binary("OR", table.a, table.n1, table.c, table.n2, drop00=drop00)
    vi = vi[np.isfinite(vi)]
    return typical_variance(vi) if vi.size >= 2 else float("nan")
