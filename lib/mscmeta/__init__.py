"""mscmeta: the meta-analysis engine and helpers behind the MSC-in-COVID-19 research bundle.

The engine's entry points are re-exported here::

    from mscmeta import meta_binary, meta_continuous, random_effects, subgroup_analysis

Plotting, data loading and the notebook pipeline live in their own modules
(``mscmeta.plots.forest``, ``mscmeta.review.data``, ``mscmeta.bundle.pipeline``...) and are imported from there.
"""

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.continuous import meta_continuous
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.results import MetaResult
from mscmeta.engine.subgroups import subgroup_analysis
from mscmeta.engine.validation import DataError

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "MetaResult",
    "fixed_effect",
    "meta_binary",
    "meta_continuous",
    "random_effects",
    "subgroup_analysis",
]
