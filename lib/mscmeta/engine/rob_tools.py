"""Risk-of-bias tools: their vocabularies and overall-judgement algorithms.

* **RoB 2** (Sterne JAC et al., BMJ 2019;366:l4898; Higgins JPT et al., *Revised
  Cochrane risk-of-bias tool for randomized trials (RoB 2)*, guidance of
  22 August 2019), domains D1-D5, judgements ``low`` / ``some concerns`` / ``high``.
* **ROBINS-I** (Sterne JAC et al., BMJ 2016;355:i4919; *ROBINS-I detailed guidance*,
  2016), domains D1-D7, judgements ``low`` / ``moderate`` / ``serious`` /
  ``critical`` / ``no information``.
* **JBI case series** (JBI critical appraisal checklist for case series; Munn Z et al.,
  JBI Evid Synth 2020;18(10):2127-2133, doi:10.11124/JBISRIR-D-19-00099), for single-arm
  studies: items Q1-Q10, answers ``yes`` / ``no`` / ``unclear`` / ``not applicable``.
  JBI gives no overall algorithm, so these assessments have **no** ``Overall`` row and
  never count as high risk; they appraise a study, not a comparative result.

Domain codes and names are those robvis uses (McGuinness LA, Higgins JPT, Res Syn
Meth 2021;12:55-61), so a judgement table in this vocabulary plots the same in robvis.
General methodology, used by the review's quality assessment (:mod:`mscmeta.review.quality`)
and by the risk-of-bias figures (:mod:`mscmeta.plots.robplots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Name of the overall-judgement row's domain.
OVERALL = "Overall"


@dataclass(frozen=True)
class ToolSpec:
    """Vocabulary of one risk-of-bias tool.

    Attributes
    ----------
    name : str
        Canonical tool name as written in the ``tool`` column.
    domains : tuple of (code, name)
        Domains in the tool's order.
    scale : tuple of str
        Domain/overall judgements from least to most severe.
    no_information : str or None
        The tool's "no information" judgement, which is not on the severity scale.
    high_risk : frozenset of str
        Overall judgements that count as high risk for sensitivity analyses.
    overall : bool
        Whether the tool has an overall judgement (an ``Overall`` row per study,
        computed by :func:`overall_judgement`). ``False`` for checklists without an
        overall algorithm (JBI): their assessments have no ``Overall`` row.
    off_scale : tuple of str
        Further allowed answers that are not on the severity scale (JBI's
        "not applicable").
    """

    name: str
    domains: tuple[tuple[str, str], ...]
    scale: tuple[str, ...]
    no_information: str | None
    high_risk: frozenset[str]
    overall: bool = True
    off_scale: tuple[str, ...] = ()

    @property
    def domain_codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.domains)

    @property
    def domain_names(self) -> dict[str, str]:
        names = dict(self.domains)
        if self.overall:
            names[OVERALL] = "Overall risk of bias"
        return names

    @property
    def judgements(self) -> tuple[str, ...]:
        """Every allowed judgement, severity order, "no information" and off-scale answers last."""
        return self.scale + ((self.no_information,) if self.no_information else ()) + self.off_scale

    @property
    def rows(self) -> tuple[str, ...]:
        """The domain rows an assessment has (``Overall`` last when the tool has one)."""
        return (*self.domain_codes, OVERALL) if self.overall else self.domain_codes


ROB2 = ToolSpec(
    name="RoB 2",
    domains=(
        ("D1", "Bias arising from the randomisation process"),
        ("D2", "Bias due to deviations from intended interventions"),
        ("D3", "Bias due to missing outcome data"),
        ("D4", "Bias in measurement of the outcome"),
        ("D5", "Bias in selection of the reported result"),
    ),
    scale=("low", "some concerns", "high"),
    no_information=None,
    high_risk=frozenset({"high"}),
)

ROBINS_I = ToolSpec(
    name="ROBINS-I",
    domains=(
        ("D1", "Bias due to confounding"),
        ("D2", "Bias in selection of participants into the study"),
        ("D3", "Bias in classification of interventions"),
        ("D4", "Bias due to deviations from intended interventions"),
        ("D5", "Bias due to missing data"),
        ("D6", "Bias in measurement of outcomes"),
        ("D7", "Bias in selection of the reported result"),
    ),
    scale=("low", "moderate", "serious", "critical"),
    no_information="no information",
    high_risk=frozenset({"serious", "critical"}),
)

#: JBI critical appraisal checklist for case series (Munn et al. 2020), for single-arm
#: studies. Item wording as printed in JBI's checklist; no overall algorithm.
JBI_CASE_SERIES = ToolSpec(
    name="JBI case series",
    domains=(
        ("Q1", "Were there clear criteria for inclusion in the case series?"),
        ("Q2", "Was the condition measured in a standard, reliable way for all participants included in the case series?"),
        ("Q3", "Were valid methods used for identification of the condition for all participants included in the case series?"),
        ("Q4", "Did the case series have consecutive inclusion of participants?"),
        ("Q5", "Did the case series have complete inclusion of participants?"),
        ("Q6", "Was there clear reporting of the demographics of the participants in the study?"),
        ("Q7", "Was there clear reporting of the clinical information of the participants?"),
        ("Q8", "Were the outcomes or follow-up results of cases reported?"),
        ("Q9", "Was there clear reporting of the presenting site(s)/clinic(s) demographic information?"),
        ("Q10", "Was the statistical analysis appropriate?"),
    ),
    scale=("yes", "no"),
    no_information="unclear",
    high_risk=frozenset(),
    overall=False,
    off_scale=("not applicable",),
)

#: The tools by canonical name.
TOOLS: dict[str, ToolSpec] = {ROB2.name: ROB2, ROBINS_I.name: ROBINS_I, JBI_CASE_SERIES.name: JBI_CASE_SERIES}

_TOOL_ALIASES = {
    "rob2": ROB2.name,
    "rob 2": ROB2.name,
    "rob-2": ROB2.name,
    "rob 2.0": ROB2.name,
    "robins-i": ROBINS_I.name,
    "robinsi": ROBINS_I.name,
    "robins i": ROBINS_I.name,
    "jbi": JBI_CASE_SERIES.name,
    "jbi case series": JBI_CASE_SERIES.name,
}

def tool_spec(tool: str) -> ToolSpec:
    """Return the :class:`ToolSpec` of *tool* (canonical name or an alias such as ``"rob2"``).

    Raises
    ------
    ValueError
        For an unknown tool; the message lists the known ones.
    """
    if tool in TOOLS:
        return TOOLS[tool]
    canonical = _TOOL_ALIASES.get(str(tool).strip().lower())
    if canonical is None:
        raise ValueError(f"unknown risk-of-bias tool {tool!r}; known tools: {', '.join(TOOLS)}")
    return TOOLS[canonical]


def _check_judgement(spec: ToolSpec, value: str, where: str) -> None:
    if value not in spec.judgements:
        raise ValueError(
            f"{where}: judgement {value!r} is not on the {spec.name} scale ({', '.join(spec.judgements)})"
        )


def overall_judgement(tool: str, judgements: Mapping[str, str] | Sequence[str]) -> str:
    """Overall risk-of-bias judgement from the domain judgements, by the tool's algorithm.

    Parameters
    ----------
    tool : str
        ``"RoB 2"`` or ``"ROBINS-I"`` (aliases accepted, see :func:`tool_spec`).
    judgements : mapping or sequence
        The judgement of every domain of the tool: either ``{"D1": "low", ...}`` or a
        sequence in domain order (D1 first). Incomplete sets are refused, because
        both algorithms are defined over all domains.

    Returns
    -------
    str
        The overall judgement on the tool's scale.

    Notes
    -----
    **RoB 2** (Sterne et al. 2019, approach to the overall judgement; RoB 2 guidance):
    *low* if every domain is low; *high* if at least one domain is high; otherwise
    *some concerns*. The guidance also allows a reviewer to judge a result *high*
    when "some concerns" in multiple domains substantially lower confidence in it.
    That escalation is a judgement, not a rule, and is **not** applied here: the
    mechanical rule is what the data are checked against, so an escalated overall
    would have to be argued for in the data and this function extended.

    **ROBINS-I** (Sterne et al. 2016, interpretation of overall judgements): the overall judgement is the most
    severe domain judgement (*low* < *moderate* < *serious* < *critical*). *No
    information* applies when there is "no clear indication that the study is at
    serious or critical risk of bias" and information is lacking in "one or more key
    domains". Here every domain is treated as key: a "no information" domain makes
    the overall "no information" unless another domain is serious or critical.

    **JBI case series** has no overall algorithm: a ``ValueError`` is raised.
    """
    spec = tool_spec(tool)
    if not spec.overall:
        raise ValueError(f"{spec.name} has no overall judgement (no algorithm); its assessments have no Overall row")
    if isinstance(judgements, Mapping):
        unknown = sorted(set(judgements) - set(spec.domain_codes))
        missing = [d for d in spec.domain_codes if d not in judgements]
        if unknown:
            raise ValueError(f"{spec.name}: unknown domain(s) {', '.join(unknown)}; domains are {', '.join(spec.domain_codes)}")
        if missing:
            raise ValueError(f"{spec.name}: missing judgement for domain(s) {', '.join(missing)}")
        values = [judgements[d] for d in spec.domain_codes]
    else:
        values = list(judgements)
        if len(values) != len(spec.domains):
            raise ValueError(
                f"{spec.name}: expected {len(spec.domains)} domain judgements ({', '.join(spec.domain_codes)}), got {len(values)}"
            )
    for code, value in zip(spec.domain_codes, values):
        _check_judgement(spec, value, f"{spec.name} {code}")
    rated = [v for v in values if v != spec.no_information]
    worst = max(rated, key=spec.scale.index) if rated else None
    if spec.no_information is not None and len(rated) < len(values):
        serious_or_worse = worst is not None and spec.scale.index(worst) >= spec.scale.index("serious")
        return worst if serious_or_worse else spec.no_information
    return worst
