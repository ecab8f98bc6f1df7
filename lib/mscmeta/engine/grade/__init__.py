"""GRADE: absolute effects, certainty of evidence and summary-of-findings tables.

General (no knowledge of any review):

* :mod:`~mscmeta.engine.grade.absolute_effects` -- anticipated absolute effects per 1,000
  from a relative effect and an assumed control risk, as GRADEpro computes them;
* :mod:`~mscmeta.engine.grade.information_size` -- the optimal information size (OIS);
* :mod:`~mscmeta.engine.grade.domains` -- the start level and the five downgrading domains,
  each with a stated, data-driven default rule, and overrides that replace a rule's rating;
* :mod:`~mscmeta.engine.grade.sof` -- the summary-of-findings table in GRADEpro's layout,
  with a tidy numeric twin and lettered footnotes;
* :mod:`~mscmeta.engine.grade.text` -- the text GRADEpro prints (formatting only).
"""

from mscmeta.engine.grade.absolute_effects import (
    AbsoluteEffect,
    ContinuousEffect,
    ControlRisk,
    EffectEstimate,
    absolute_effect,
    control_risk_from_arms,
)
from mscmeta.engine.grade.domains import (
    DOMAINS,
    CertaintyAssessment,
    DomainRating,
    EvidenceBody,
    GradeParameters,
    Heterogeneity,
    Override,
    StudyEvidence,
    assess_certainty,
)
from mscmeta.engine.grade.information_size import InformationSize, binary_ois, continuous_ois
from mscmeta.engine.grade.sof import SofOutcome, SofTable, build_sof

__all__ = [
    "AbsoluteEffect", "ContinuousEffect", "ControlRisk", "EffectEstimate", "absolute_effect", "control_risk_from_arms",
    "DOMAINS", "CertaintyAssessment", "DomainRating", "EvidenceBody", "GradeParameters", "Heterogeneity", "Override",
    "StudyEvidence", "assess_certainty", "InformationSize", "binary_ois", "continuous_ois", "SofOutcome", "SofTable",
    "build_sof",
]
