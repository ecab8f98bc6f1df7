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

Importing the package costs nothing: each public name is imported from its module on first
use (PEP 562 ``__getattr__``), so a process that needs only the option vocabulary -- the
notebook runner, the report renderer -- does not load SciPy's distributions, the GLMMs or
the Bayesian quadrature. The names and their modules are listed once, in
:data:`_EXPORTS`; the ``TYPE_CHECKING`` block repeats them as plain imports for type
checkers, editors and :mod:`mscmeta.bundle.stagedeps` (a test checks the two agree).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lazy names below, spelled out for type checkers and stagedeps
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
    from mscmeta.engine.errors import DataError, NotEstimableError

#: Public name -> the engine module that defines it.
_EXPORTS: dict[str, str] = {
    "BayesMetaResult": "mscmeta.engine.bayes",
    "BinaryOptions": "mscmeta.engine.options",
    "DataError": "mscmeta.engine.errors",
    "FragilityResult": "mscmeta.engine.fragility",
    "GlmmResult": "mscmeta.engine.glmm",
    "MetaResult": "mscmeta.engine.results",
    "NotEstimableError": "mscmeta.engine.errors",
    "SubgroupResult": "mscmeta.engine.subgroups",
    "absolute_effect": "mscmeta.engine.grade",
    "assess_certainty": "mscmeta.engine.grade",
    "bayes_meta": "mscmeta.engine.bayes",
    "begg_test": "mscmeta.engine.bias",
    "build_sof": "mscmeta.engine.grade",
    "cumulative": "mscmeta.engine.sensitivity",
    "egger_test": "mscmeta.engine.bias",
    "escalc_binary": "mscmeta.engine.effects",
    "estimate_tau2": "mscmeta.engine.tau2",
    "fivenum_to_mean_sd": "mscmeta.engine.continuous",
    "fixed_effect": "mscmeta.engine.pooling",
    "fragility_index": "mscmeta.engine.fragility",
    "fragility_of": "mscmeta.engine.fragility",
    "harbord_test": "mscmeta.engine.bias",
    "influence": "mscmeta.engine.sensitivity",
    "leave_one_out": "mscmeta.engine.sensitivity",
    "meta_bayes": "mscmeta.engine.bayes",
    "meta_binary": "mscmeta.engine.binary",
    "meta_continuous": "mscmeta.engine.continuous",
    "meta_glmm": "mscmeta.engine.glmm",
    "mh_tests": "mscmeta.engine.mh_tests",
    "peters_test": "mscmeta.engine.bias",
    "random_effects": "mscmeta.engine.pooling",
    "required_information_size": "mscmeta.engine.tsa",
    "spending_boundaries": "mscmeta.engine.group_sequential",
    "subgroup_analysis": "mscmeta.engine.subgroups",
    "trial_sequential_analysis": "mscmeta.engine.tsa",
    "trial_sequential_analysis_from_counts": "mscmeta.engine.tsa",
    "trim_and_fill": "mscmeta.engine.bias",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import *name* from its module on first use and keep it here (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _EnginePackage(types.ModuleType):
    """The package's module type: a public function named as its own module (``mh_tests``)
    stays the function when that module is imported -- Python binds a submodule onto its
    package after loading it, which would otherwise replace the function by the module."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _EnginePackage
