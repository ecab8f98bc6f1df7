"""The meta-analysis engine: general, knowing nothing of this review.

Effect sizes (:mod:`~mscmeta.engine.effects`, :mod:`~mscmeta.engine.continuous`),
Mantel-Haenszel and Peto pooling (:mod:`~mscmeta.engine.mantel_haenszel`), tau^2
estimators (:mod:`~mscmeta.engine.tau2`), inverse-variance pooling
(:mod:`~mscmeta.engine.pooling`), heterogeneity (:mod:`~mscmeta.engine.heterogeneity`),
binary-outcome analyses (:mod:`~mscmeta.engine.binary`), results
(:mod:`~mscmeta.engine.results`), subgroups, sensitivity analyses, small-study tests
(:mod:`~mscmeta.engine.bias`), risk-of-bias tool vocabularies
(:mod:`~mscmeta.engine.rob_tools`), input validation and the option vocabulary
(:mod:`~mscmeta.engine.options`).

Import rule: modules of this package import only each other (and third-party
packages), never :mod:`mscmeta.plots`, :mod:`mscmeta.review` or :mod:`mscmeta.bundle`.
"""

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.bias import begg_test, egger_test, harbord_test, peters_test, trim_and_fill
from mscmeta.engine.continuous import fivenum_to_mean_sd, meta_continuous
from mscmeta.engine.effects import escalc_binary
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.results import MetaResult
from mscmeta.engine.sensitivity import cumulative, influence, leave_one_out
from mscmeta.engine.subgroups import SubgroupResult, subgroup_analysis
from mscmeta.engine.tau2 import estimate_tau2
from mscmeta.engine.validation import DataError, NotEstimableError

__all__ = [
    "BinaryOptions",
    "DataError",
    "MetaResult",
    "NotEstimableError",
    "SubgroupResult",
    "begg_test",
    "cumulative",
    "egger_test",
    "escalc_binary",
    "estimate_tau2",
    "fivenum_to_mean_sd",
    "fixed_effect",
    "harbord_test",
    "influence",
    "leave_one_out",
    "meta_binary",
    "meta_continuous",
    "peters_test",
    "random_effects",
    "subgroup_analysis",
    "trim_and_fill",
]
