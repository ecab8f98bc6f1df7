"""mscmeta: the meta-analysis engine and helpers behind the MSC-in-COVID-19 research bundle.

The package has four wings, each with one job (``lib/README.md`` draws the picture):

* :mod:`mscmeta.engine` -- the general meta-analysis engine (effect sizes, Mantel-Haenszel,
  Peto, tau^2 estimators, pooling, heterogeneity, subgroups, sensitivity, small-study tests);
* :mod:`mscmeta.plots` -- figures drawn from engine results (forest, funnel, risk of bias,
  PRISMA, interval plots) in one style;
* :mod:`mscmeta.review` -- this review: the raw sheets, eligibility, quality, the mortality
  and secondary analyses, the reproduction scorecard (one module per notebook);
* :mod:`mscmeta.bundle` -- the machinery: pipeline, reports, atomic IO, hygiene, benchmarks.

The engine's public API is re-exported here, in the manner of
``statsmodels.stats.meta_analysis`` and metafor's exported functions::

    from mscmeta import meta_binary, random_effects, subgroup_analysis
    print(meta_binary(table, measure="OR", method="MH"))

Importing ``mscmeta`` (or any of its wings) loads nothing heavy: the engine's names are
imported on first use (:mod:`mscmeta.engine`), so the notebook runner and the report
renderer start in a fraction of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mscmeta import engine as _engine

if TYPE_CHECKING:
    from mscmeta.engine import *  # noqa: F403 -- the engine's public API, listed in mscmeta.engine.__all__

__version__ = "0.1.0"

__all__ = list(_engine.__all__)


def __getattr__(name: str) -> object:
    """The engine's public names, imported from their modules on first use (PEP 562)."""
    if name in _engine.__all__:
        value = getattr(_engine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
