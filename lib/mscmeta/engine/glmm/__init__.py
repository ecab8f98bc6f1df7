"""Binomial-normal generalised linear mixed models for the odds ratio, as metafor ``rma.glmm``.

:func:`meta_glmm` fits the four models of metafor 3.8-1 (``UM.FS``, ``UM.RS``, ``CM.EL``,
``CM.AL``; Stijnen, Hamza & Ozdemir 2010; Jackson et al. 2018) and returns a
:class:`GlmmResult`. The modules:

* :mod:`~mscmeta.engine.glmm.model` -- the entry point and the result;
* :mod:`~mscmeta.engine.glmm.tables` -- the 2x2 tables and metafor's ``drop00`` rule;
* :mod:`~mscmeta.engine.glmm.agq` -- lme4's Laplace / adaptive Gauss-Hermite deviance per study;
* :mod:`~mscmeta.engine.glmm.lme4` -- UM.FS, UM.RS, CM.AL (what metafor fits with ``lme4::glmer``);
* :mod:`~mscmeta.engine.glmm.cm_el` -- CM.EL (Fisher's non-central hypergeometric likelihood);
* :mod:`~mscmeta.engine.glmm.glm` -- R's ``glm.fit`` for the saturated models of the heterogeneity tests;
* :mod:`~mscmeta.engine.glmm.optim` -- small deterministic Newton optimisers;
* :mod:`~mscmeta.engine.glmm.report` -- metafor's printout.

Built and checked against metafor/lme4 as a standalone module (/work/scratch/glmm, its
README lists the agreement per model); the reference tests are in ``tests/test_glmm.py``.
"""

from mscmeta.engine.glmm.model import DroppedStudy, GlmmResult, HeterogeneityTest, meta_glmm

__all__ = ["DroppedStudy", "GlmmResult", "HeterogeneityTest", "meta_glmm"]
