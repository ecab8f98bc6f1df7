"""The meta-analysis engine: general, knowing nothing of this review.

Effect sizes (:mod:`~mscmeta.engine.effects`, :mod:`~mscmeta.engine.continuous`),
Mantel-Haenszel and Peto pooling (:mod:`~mscmeta.engine.mantel_haenszel`), tau^2
estimators (:mod:`~mscmeta.engine.tau2`), inverse-variance pooling
(:mod:`~mscmeta.engine.pooling`), heterogeneity (:mod:`~mscmeta.engine.heterogeneity`),
binary-outcome analyses (:mod:`~mscmeta.engine.binary`), results
(:mod:`~mscmeta.engine.results`), subgroups, sensitivity analyses, small-study tests
(:mod:`~mscmeta.engine.bias`), meta-regression (:mod:`~mscmeta.engine.metareg`), models for
sparse data -- binomial-normal GLMMs (:mod:`~mscmeta.engine.glmm`), Bayesian random effects
(:mod:`~mscmeta.engine.bayes`), the CMH and Tarone tests (:mod:`~mscmeta.engine.mh_tests`)
and the fragility index (:mod:`~mscmeta.engine.fragility`) --, risk-of-bias tool vocabularies
(:mod:`~mscmeta.engine.rob_tools`), group-sequential boundaries and trial sequential
analysis (:mod:`~mscmeta.engine.group_sequential`, :mod:`~mscmeta.engine.tsa`), GRADE
certainty and summary-of-findings tables (:mod:`~mscmeta.engine.grade`), input validation
and the option vocabulary (:mod:`~mscmeta.engine.options`).

Import rule: modules of this package import only each other (and third-party
packages), never :mod:`mscmeta.plots`, :mod:`mscmeta.review` or :mod:`mscmeta.bundle`.
"""

from mscmeta.engine.bayes import BayesMetaResult, bayes_meta, meta_bayes
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.bias import begg_test, egger_test, harbord_test, peters_test, trim_and_fill
from mscmeta.engine.continuous import fivenum_to_mean_sd, meta_continuous
from mscmeta.engine.effects import escalc_binary
from mscmeta.engine.fragility import FragilityResult, fragility_index, fragility_of
from mscmeta.engine.glmm import GlmmResult, meta_glmm
from mscmeta.engine.grade import absolute_effect, assess_certainty, build_sof
from mscmeta.engine.group_sequential import spending_boundaries
from mscmeta.engine.mh_tests import mh_tests
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.results import MetaResult
from mscmeta.engine.sensitivity import cumulative, influence, leave_one_out
from mscmeta.engine.subgroups import SubgroupResult, subgroup_analysis
from mscmeta.engine.tau2 import estimate_tau2
from mscmeta.engine.tsa import required_information_size, trial_sequential_analysis, trial_sequential_analysis_from_counts
from mscmeta.engine.validation import DataError, NotEstimableError

__all__ = [
    "BayesMetaResult",
    "BinaryOptions",
    "DataError",
    "FragilityResult",
    "GlmmResult",
    "MetaResult",
    "NotEstimableError",
    "SubgroupResult",
    "absolute_effect",
    "assess_certainty",
    "bayes_meta",
    "begg_test",
    "build_sof",
    "cumulative",
    "egger_test",
    "escalc_binary",
    "estimate_tau2",
    "fivenum_to_mean_sd",
    "fixed_effect",
    "fragility_index",
    "fragility_of",
    "harbord_test",
    "influence",
    "leave_one_out",
    "meta_bayes",
    "meta_binary",
    "meta_continuous",
    "meta_glmm",
    "mh_tests",
    "peters_test",
    "random_effects",
    "required_information_size",
    "spending_boundaries",
    "subgroup_analysis",
    "trial_sequential_analysis",
    "trial_sequential_analysis_from_counts",
    "trim_and_fill",
]
