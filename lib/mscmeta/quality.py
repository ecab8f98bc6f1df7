"""Risk-of-bias assessments: the tools' vocabularies, loading, validation and the
overall-judgement algorithms.

The assessments live in ``data/raw/risk_of_bias.csv``, one row per study x domain,
with an ``Overall`` row per study. Randomised trials are assessed with RoB 2 and
non-randomised comparisons with ROBINS-I, each on its own scale:

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
Meth 2021;12:55-61), so a table exported from here plots the same in robvis.

Columns of ``risk_of_bias.csv`` (all text):

``study_id``
    Study identifier of ``studies.csv``.
``outcome``
    The result assessed (RoB 2 and ROBINS-I judge a result, not a study); ``mortality``.
``tool``
    ``RoB 2`` or ``ROBINS-I``.
``domain``, ``domain_name``
    Domain code (``D1``... or ``Overall``) and the tool's name for it.
``judgement``
    On the tool's scale (lower case).
``support``
    One sentence: why this judgement, from what the sources say (or do not say).
``source``
    URL or DOI of the source, and where in it.
``source_level``
    Kind of source (:data:`SOURCE_LEVELS`); ``not located`` when the judgement rests
    on the information being absent from the sources reviewed.
``quote``
    Short verbatim quote from the source, where one supports the judgement (may be
    empty; never paraphrased).

All problems in a file are collected and reported together by
:class:`RiskOfBiasError`; every message names the file, the CSV line, the study,
the domain and the offending value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mscmeta.schema import SOURCE_LEVELS as DATA_SOURCE_LEVELS
from mscmeta.schema import SOURCE_PATTERN

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

#: Columns of ``risk_of_bias.csv`` in the order they are written.
COLUMNS = (
    "study_id",
    "outcome",
    "tool",
    "domain",
    "domain_name",
    "judgement",
    "support",
    "source",
    "source_level",
    "quote",
)
#: Columns that must not be empty (``quote`` may be: not every judgement has a quote).
REQUIRED_VALUES = ("study_id", "outcome", "tool", "domain", "domain_name", "judgement", "support", "source", "source_level")
#: Allowed values of ``source_level``: the kinds of source of the data sheets
#: (:data:`mscmeta.schema.SOURCE_LEVELS`), plus ``not located`` for a judgement that
#: rests on the absence of the information in the sources reviewed.
SOURCE_LEVELS = (*DATA_SOURCE_LEVELS, "not located")


class RiskOfBiasError(ValueError):
    """Invalid risk-of-bias assessments. ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        header = f"{source}: {len(self.problems)} problem(s) in the risk-of-bias assessments"
        super().__init__(header + "\n" + "\n".join(f"  - {p}" for p in self.problems))


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


def _line(index: int) -> int:
    """CSV line of data row *index* (line 1 is the header)."""
    return int(index) + 2


def _column_problems(df: pd.DataFrame) -> list[str]:
    """Missing or unexpected columns."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        return [f"missing column(s): {', '.join(missing)}; expected columns: {', '.join(COLUMNS)}"]
    extra = [c for c in df.columns if c not in COLUMNS]
    return [f"unexpected column(s): {', '.join(extra)}; expected columns: {', '.join(COLUMNS)}"] if extra else []


def _row_problems(idx: int, row: pd.Series) -> list[str]:
    """Problems of one row on its own: empty or padded cells, source, tool, domain, judgement."""
    problems = []
    where = f"line {_line(idx)}, study {row['study_id'] or '?'}, domain {row['domain'] or '?'}"
    for col in REQUIRED_VALUES:
        if not str(row[col]).strip():
            problems.append(f"{where}: column {col!r} is empty")
    for col in COLUMNS:
        value = str(row[col])
        if value != value.strip():
            problems.append(f"{where}: column {col!r} has leading/trailing spaces: {value!r}")
    if row["source"] and not re.match(SOURCE_PATTERN, row["source"]):
        problems.append(f"{where}: source {row['source']!r} must start with a URL or a DOI")
    if row["source_level"] and row["source_level"] not in SOURCE_LEVELS:
        problems.append(f"{where}: source_level {row['source_level']!r} is not one of {', '.join(SOURCE_LEVELS)}")
    if not row["tool"]:
        return problems
    if row["tool"] not in TOOLS:
        return problems + [f"{where}: unknown tool {row['tool']!r}; tools are {', '.join(TOOLS)}"]
    spec = TOOLS[row["tool"]]
    allowed_domains = (*spec.domain_codes, OVERALL) if spec.overall else spec.domain_codes
    if row["domain"] not in allowed_domains:
        problems.append(f"{where}: unknown {spec.name} domain {row['domain']!r}; domains are {', '.join(allowed_domains)}")
    elif row["domain_name"] and row["domain_name"] != spec.domain_names[row["domain"]]:
        problems.append(
            f"{where}: domain_name {row['domain_name']!r} does not match {spec.name} {row['domain']} "
            f"({spec.domain_names[row['domain']]!r})"
        )
    if row["judgement"] and row["judgement"] not in spec.judgements:
        problems.append(
            f"{where}: judgement {row['judgement']!r} is not on the {spec.name} scale ({', '.join(spec.judgements)})"
        )
    return problems


def _study_problems(study: str, outcome: str, group: pd.DataFrame) -> list[str]:
    """Problems of one study's assessment as a whole: one tool, every domain once, an Overall row."""
    tools = sorted(set(group["tool"]) - {""})
    lines = ", ".join(str(_line(i)) for i in group.index)
    if len(tools) > 1:
        return [f"study {study} ({outcome}), lines {lines}: assessed with more than one tool ({', '.join(tools)})"]
    if not tools or tools[0] not in TOOLS:
        return []
    spec = TOOLS[tools[0]]
    counts = group["domain"].value_counts()
    problems = [
        f"study {study} ({outcome}), domain {domain}: {n} rows (lines {lines}); expected one"
        for domain, n in sorted(counts.items())
        if n > 1
    ]
    for domain in (*spec.domain_codes, OVERALL) if spec.overall else spec.domain_codes:
        if domain not in counts:
            what = "overall judgement (domain 'Overall')" if domain == OVERALL else f"{spec.name} domain {domain}"
            problems.append(f"study {study} ({outcome}), domain {domain}: missing row for the {what}")
    return problems


def _problems(df: pd.DataFrame) -> list[str]:
    """Every problem in *df* (already read as strings), as messages."""
    problems = _column_problems(df)
    if any(p.startswith("missing column") for p in problems):
        return problems
    for idx, row in df.iterrows():
        problems += _row_problems(idx, row)
    for (study, outcome), group in df.groupby(["study_id", "outcome"], sort=True):
        problems += _study_problems(study, outcome, group)
    return problems


def _consistency(df: pd.DataFrame) -> pd.DataFrame:
    """Overall judgement recorded vs algorithm for every complete, valid assessment."""
    rows = []
    for (study, outcome), group in df.groupby(["study_id", "outcome"], sort=True):
        tools = set(group["tool"])
        if len(tools) != 1 or next(iter(tools)) not in TOOLS:
            continue
        spec = TOOLS[next(iter(tools))]
        if not spec.overall:
            continue
        by_domain = group.drop_duplicates("domain", keep=False).set_index("domain")["judgement"]
        needed = (*spec.domain_codes, OVERALL)
        if any(d not in by_domain for d in needed) or any(by_domain[d] not in spec.judgements for d in needed):
            continue
        expected = overall_judgement(spec.name, {d: by_domain[d] for d in spec.domain_codes})
        rows.append(
            {
                "study_id": study,
                "outcome": outcome,
                "tool": spec.name,
                "overall_recorded": by_domain[OVERALL],
                "overall_algorithm": expected,
                "consistent": by_domain[OVERALL] == expected,
                "line": _line(group.index[group["domain"] == OVERALL][0]),
            }
        )
    columns = ["study_id", "outcome", "tool", "overall_recorded", "overall_algorithm", "consistent", "line"]
    return pd.DataFrame(rows, columns=columns)


def check_overall(df: pd.DataFrame) -> pd.DataFrame:
    """Compare each recorded overall judgement with the tool's algorithm.

    Parameters
    ----------
    df : DataFrame
        Assessments in the long format of ``risk_of_bias.csv``.

    Returns
    -------
    DataFrame
        One row per study and outcome with complete, valid domain judgements:
        ``study_id, outcome, tool, overall_recorded, overall_algorithm, consistent``.
    """
    return _consistency(_as_strings(df)).drop(columns="line")


def _as_strings(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        out[col] = out[col].fillna("").astype(str)
    return out.reset_index(drop=True)


def validate_risk_of_bias(df: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
    """Validate assessments; return them sorted, or raise listing every problem.

    Checks: the columns; no empty required value; known tool; a domain of that tool
    (or ``Overall``) with its canonical name; a judgement on that tool's scale; a
    known ``source_level``; per study and outcome, one tool, every domain exactly
    once, an ``Overall`` row, and an overall judgement that follows the tool's
    algorithm (:func:`overall_judgement`).

    Parameters
    ----------
    df : DataFrame
        Assessments (all columns are read as text).
    source : str
        Name of the file the data came from, used in messages.

    Returns
    -------
    DataFrame
        The assessments with columns in :data:`COLUMNS` order, sorted by tool,
        study, outcome and domain (``Overall`` last).

    Raises
    ------
    RiskOfBiasError
        If anything is wrong; ``.problems`` lists every problem.
    """
    data = _as_strings(df)
    problems = _problems(data)
    if not any(p.startswith("missing column") for p in problems):
        for row in _consistency(data).itertuples():
            if not row.consistent:
                problems.append(
                    f"line {row.line}, study {row.study_id} ({row.outcome}), domain {OVERALL}: overall judgement "
                    f"{row.overall_recorded!r} does not follow the {row.tool} algorithm, which gives {row.overall_algorithm!r}"
                )
    if problems:
        raise RiskOfBiasError(source, problems)
    return sort_assessments(data[list(COLUMNS)])


def sort_assessments(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by tool, study, outcome and domain in the tool's order (``Overall`` last)."""
    order = {code: i for i, code in enumerate(("D1", "D2", "D3", "D4", "D5", "D6", "D7", *JBI_CASE_SERIES.domain_codes, OVERALL))}
    key = df["domain"].map(order).fillna(len(order))
    out = df.assign(_order=key).sort_values(["tool", "study_id", "outcome", "_order"], kind="mergesort")
    return out.drop(columns="_order").reset_index(drop=True)


def load_risk_of_bias(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``risk_of_bias.csv`` (see :func:`validate_risk_of_bias`).

    Raises
    ------
    FileNotFoundError
        If *path* does not exist.
    RiskOfBiasError
        If the assessments are invalid; the message names the file.
    """
    path = Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    return validate_risk_of_bias(df, source=str(path))


def overall_judgements(df: pd.DataFrame, outcome: str | None = None) -> pd.DataFrame:
    """One row per study: ``study_id, outcome, tool, overall``, sorted by tool and study."""
    rows = df[df["domain"] == OVERALL]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    out = rows[["study_id", "outcome", "tool", "judgement"]].rename(columns={"judgement": "overall"})
    return out.sort_values(["tool", "study_id"], kind="mergesort").reset_index(drop=True)


def high_risk_studies(df: pd.DataFrame, outcome: str | None = None) -> set[str]:
    """Studies whose overall risk of bias is high (RoB 2) or serious/critical (ROBINS-I).

    This is the set the pooling notebook leaves out in its sensitivity analysis
    "excluding studies at high risk of bias". A ROBINS-I overall of *no information*
    is not counted as high risk (it cannot occur together with a serious or critical
    domain, see :func:`overall_judgement`).

    Parameters
    ----------
    df : DataFrame
        Validated assessments (:func:`load_risk_of_bias`).
    outcome : str, optional
        Restrict to one outcome (e.g. ``"mortality"``).
    """
    overall = overall_judgements(df, outcome)
    flags = [TOOLS[t].high_risk for t in overall["tool"]]
    return {s for s, j, hr in zip(overall["study_id"], overall["overall"], flags) if j in hr}


def judgement_table(
    df: pd.DataFrame, tool: str, outcome: str | None = None, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Wide table of one tool's assessments: one row per study, columns D1.. and Overall.

    With *labels* (``study_id`` -> display label) a ``study`` column is added after
    ``study_id``.
    """
    spec = tool_spec(tool)
    rows = df[df["tool"] == spec.name]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    wide = rows.pivot(index="study_id", columns="domain", values="judgement")
    wide = wide.reindex(columns=[*spec.domain_codes, *([OVERALL] if spec.overall else [])]).sort_index()
    wide.columns.name = None
    wide = wide.reset_index()
    if labels is not None:
        wide.insert(1, "study", [labels.get(s, s) for s in wide["study_id"]])
    return wide


def overall_table(df: pd.DataFrame, labels: Mapping[str, str] | None = None, outcome: str | None = None) -> pd.DataFrame:
    """Each study's overall judgement with its reasons (the support of the Overall row)."""
    rows = df[df["domain"] == OVERALL]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    out = rows[["study_id", "tool", "judgement", "support"]].rename(columns={"judgement": "overall", "support": "reasons"})
    out.insert(1, "study", [(labels or {}).get(s, s) for s in out["study_id"]])
    return out.sort_values(["tool", "study"], kind="mergesort").reset_index(drop=True)


def coverage_problems(df: pd.DataFrame, studies: pd.DataFrame) -> list[str]:
    """Mismatches between the assessments and the study list of the data stage.

    Every comparative study (``design`` not ``single-arm``) with ``decision``
    ``included`` or ``scenario`` in ``studies.csv`` **and located deaths**
    (``mortality_data`` = ``reported``, when that column is present) needs an
    assessment, with RoB 2 for ``design == "RCT"`` and ROBINS-I otherwise; every
    assessed study must be in ``studies.csv``. Risk of bias is judged per result: a
    study whose deaths were not located has no mortality result to assess (it may
    still be assessed). Single-arm studies may carry a JBI case-series appraisal,
    which is not required.
    """
    problems = []
    tools = df[df["domain"] == OVERALL].drop_duplicates("study_id").set_index("study_id")["tool"]
    known = set(studies["study_id"])
    for study in sorted(set(tools.index) - known):
        problems.append(f"study {study}: assessed but not in studies.csv")
    needed = studies[studies["decision"].isin(["included", "scenario"]) & (studies["design"] != "single-arm")]
    if "mortality_data" in studies.columns:
        needed = needed[needed["mortality_data"] == "reported"]
    for row in needed.sort_values("study_id").itertuples():
        expected = ROB2.name if row.design == "RCT" else ROBINS_I.name
        if row.study_id not in tools.index:
            problems.append(f"study {row.study_id} ({row.decision}, {row.design}): no risk-of-bias assessment")
        elif tools[row.study_id] != expected:
            problems.append(
                f"study {row.study_id}: design {row.design!r} calls for {expected}, assessed with {tools[row.study_id]}"
            )
    return problems


def check_coverage(df: pd.DataFrame, studies: pd.DataFrame, source: str = "risk_of_bias.csv") -> None:
    """Raise :class:`RiskOfBiasError` listing every :func:`coverage_problems` entry."""
    problems = coverage_problems(df, studies)
    if problems:
        raise RiskOfBiasError(source, problems)


def load_study_weights(path: str | os.PathLike, column: str | None = None) -> pd.Series:
    """Per-study weights from a table with a ``study_id`` column (e.g. ``mortality_studies.csv``).

    Parameters
    ----------
    path : path-like
        CSV with ``study_id`` and a weight column.
    column : str, optional
        Name of the weight column. By default ``weight`` if present, else the single
        column whose name starts with ``weight``.

    Returns
    -------
    Series
        Weights indexed by ``study_id`` (non-negative, finite). An empty cell means
        the study carries no weight (the pooling stage leaves the weight of a
        non-estimable study, e.g. a double-zero study under RevMan's convention,
        empty) and becomes 0.

    Raises
    ------
    ValueError
        If the file has no ``study_id``, no (or an ambiguous) weight column, a
        duplicated study or a non-numeric/negative weight; the message names the file.
    """
    path = Path(path)
    table = pd.read_csv(path)
    if "study_id" not in table.columns:
        raise ValueError(f"{path}: no 'study_id' column (columns: {', '.join(table.columns)})")
    if column is None:
        candidates = ["weight"] if "weight" in table.columns else [c for c in table.columns if str(c).startswith("weight")]
        if len(candidates) != 1:
            raise ValueError(
                f"{path}: cannot tell which column holds the study weights ({', '.join(map(str, table.columns))}); "
                "pass column="
            )
        column = candidates[0]
    if column not in table.columns:
        raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(table.columns)})")
    dup = table["study_id"][table["study_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: study_id repeated: {', '.join(map(str, dup))}")
    empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
    weights = pd.to_numeric(table[column].where(~empty, 0), errors="coerce")
    bad = table["study_id"][weights.isna() | (weights < 0) | ~np.isfinite(weights.fillna(0))].tolist()
    if bad:
        raise ValueError(f"{path}: column {column!r} is non-numeric or negative for study {', '.join(map(str, bad))}")
    return pd.Series(weights.to_numpy(dtype=float), index=table["study_id"].astype(str), name=column)


def count_by_overall(df: pd.DataFrame, outcome: str | None = None) -> pd.DataFrame:
    """Number of studies per tool and overall judgement (every judgement of the scale listed)."""
    overall = overall_judgements(df, outcome)
    rows = []
    for spec in TOOLS.values():
        if not spec.overall:
            continue
        sub = overall[overall["tool"] == spec.name]
        for level in spec.judgements:
            rows.append({"tool": spec.name, "overall": level, "studies": int((sub["overall"] == level).sum())})
    return pd.DataFrame(rows)


def _join(items: Iterable[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def concerns_markdown(df: pd.DataFrame, outcome: str | None = None, labels: Mapping[str, str] | None = None) -> str:
    """Markdown summary of the assessments, every number computed from *df*.

    Lists, per tool, how many studies fall in each overall category, which studies
    count as high risk (:func:`high_risk_studies`), and for each domain how many
    studies were judged other than *low* (of which how many *no information*).
    *labels* maps ``study_id`` to the names printed.
    """
    overall = overall_judgements(df, outcome)
    lines = []
    for spec in TOOLS.values():
        sub = overall[overall["tool"] == spec.name]
        if sub.empty:
            continue
        design = "randomised trials" if spec is ROB2 else "non-randomised comparisons"
        counts = [f"{int((sub['overall'] == lvl).sum())} {lvl}" for lvl in spec.judgements if (sub["overall"] == lvl).any()]
        lines.append(f"- **{spec.name}** ({len(sub)} {design}): overall {_join(counts)}.")
        rows = df[(df["tool"] == spec.name) & (df["domain"] != OVERALL)]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        per_domain = []
        for code, name in spec.domains:
            dom = rows[rows["domain"] == code]
            n_not_low = int((dom["judgement"] != "low").sum())
            n_ni = int((dom["judgement"] == spec.no_information).sum()) if spec.no_information else 0
            if n_not_low:
                ni = f" ({n_ni} no information)" if n_ni else ""
                per_domain.append(f"{code} ({name.lower()}): {n_not_low} of {len(dom)}{ni}")
        lines.append(f"  - Domains not judged low: {_join(per_domain)}.")
    high = sorted((labels or {}).get(s, s) for s in high_risk_studies(df, outcome))
    lines.append(
        f"- **High risk overall** (RoB 2 high, ROBINS-I serious or critical): {len(high)} "
        f"stud{'y' if len(high) == 1 else 'ies'}: {_join(high)}. The pooling stage's sensitivity analysis "
        "excluding studies at high risk of bias leaves these out."
    )
    return "\n".join(lines) + "\n"


def study_labels(studies: pd.DataFrame) -> dict[str, str]:
    """``study_id`` -> display label (``label`` column of ``studies.csv``; the id if absent)."""
    if "label" not in studies.columns:
        return {str(s): str(s) for s in studies["study_id"]}
    return {str(s): str(lbl) for s, lbl in zip(studies["study_id"], studies["label"])}


def primary_analysis_weights(raw, scenario: str = "primary") -> pd.Series:
    """Each study's weight (percent) in the primary mortality analysis of *scenario*.

    The primary analysis is the one stage 03 reports first: Mantel–Haenszel
    fixed-effect odds ratio with RevMan 5's zero-cell convention (0.5 added to every
    cell of a study with a zero cell; double-zero studies not estimable, weight 0).
    Computed here from the raw sheets rather than read from stage 03's tables, so the
    risk-of-bias stage does not depend on the pooling stage (which reads this stage's
    table).

    Parameters
    ----------
    raw : mscmeta.data.RawData
        The validated raw sheets.
    scenario : str
        Inclusion scenario.

    Returns
    -------
    Series
        Weights indexed by ``study_id``, named ``weight``.
    """
    from mscmeta.binary import meta_binary
    from mscmeta.data import analysis_mortality

    mortality = analysis_mortality(raw, scenario)
    result = meta_binary(
        mortality, measure="OR", method="MH", model="fixed", zero_cell="revman",
        columns={"study": "study_id", "events_t": "events_msc", "n_t": "n_msc",
                 "events_c": "events_control", "n_c": "n_control"},
        source="analysis_mortality",
    )
    weights = result.studies.set_index("study")["weight"].fillna(0.0).astype(float)
    weights.index = weights.index.astype(str)
    weights.index.name = "study_id"
    return weights.rename("weight")


def resolve_weights(weights_file: str | os.PathLike, raw, scenario: str = "primary") -> tuple[pd.Series, str]:
    """Study weights for the summary plots, and a sentence saying where they came from.

    Parameters
    ----------
    weights_file : path-like or ""
        Explicit weights table (see :func:`load_study_weights`). If empty, the weights of
        the primary mortality analysis (:func:`primary_analysis_weights`).
    raw : mscmeta.data.RawData
        The validated raw sheets.
    scenario : str
        Inclusion scenario.

    Raises
    ------
    FileNotFoundError
        If *weights_file* is given but does not exist.
    """
    if weights_file:
        path = Path(weights_file)
        if not path.exists():
            raise FileNotFoundError(f"weights_file {path} does not exist")
        weights = load_study_weights(path)
        return weights, (
            f"The summary plots are **weighted** by the study weights in `{path.name}` "
            f"(column `{weights.name}`); studies without weight there are left out of them and named."
        )
    weights = primary_analysis_weights(raw, scenario)
    return weights, (
        "The summary plots are **weighted** by each study's weight in the primary mortality analysis "
        "(Mantel–Haenszel fixed-effect OR, RevMan zero-cell convention); studies not in that analysis "
        "(no mortality data, or not estimable) carry no weight and are named."
    )


def context_markdown(
    rob: pd.DataFrame,
    studies: pd.DataFrame,
    mortality: pd.DataFrame | None = None,
    outcome: str | None = None,
) -> str:
    """Markdown on concerns that sit beside the domain judgements, computed from the data.

    Parameters
    ----------
    rob : DataFrame
        Validated assessments.
    studies : DataFrame
        ``studies.csv`` (columns ``study_id``, ``label``, ``design``, ``blinding``,
        ``n_msc``, ``n_control``).
    mortality : DataFrame, optional
        The mortality rows entering the primary analysis (``analysis_mortality.csv``,
        with ``study_id`` and ``source_level``), to list death counts that are derived
        or taken from a later review rather than printed in the study's own report.
    outcome : str, optional
        Restrict the assessments to one outcome.
    """
    overall = overall_judgements(rob, outcome)
    assessed = studies[studies["study_id"].isin(overall["study_id"])].copy()
    labels = study_labels(studies)
    lines = []
    open_label = assessed[assessed["blinding"].isin(["open-label", "not reported"])]
    lines.append(
        f"- **Blinding.** {len(open_label)} of {len(assessed)} assessed studies were open-label or did not report "
        f"blinding ({_join(sorted(labels[s] for s in open_label['study_id']))}). All-cause death is objective, so "
        "outcome measurement (RoB 2 D4, ROBINS-I D6) is low risk even without blinding; lack of blinding matters "
        "through co-interventions and deviations (D2 / D4)."
    )
    nrs = overall[overall["tool"] == ROBINS_I.name]
    d1 = rob[(rob["tool"] == ROBINS_I.name) & (rob["domain"] == "D1") & rob["study_id"].isin(nrs["study_id"])]
    confounded = int(d1["judgement"].isin(["serious", "critical"]).sum())
    lines.append(
        f"- **Non-randomised controls.** {len(nrs)} of {len(overall)} studies compared MSC recipients with "
        f"controls who were not randomised (ROBINS-I); {confounded} of them are at serious or critical risk of "
        "bias due to confounding (D1), which alone sets their overall judgement at serious or worse."
        if len(nrs)
        else "- **Non-randomised controls.** None of the assessed studies is non-randomised."
    )
    sizes = pd.to_numeric(assessed["n_msc"], errors="coerce") + pd.to_numeric(assessed["n_control"], errors="coerce")
    sizes = sizes.dropna()
    if len(sizes):
        small = assessed.loc[sizes.index[sizes < 50], "study_id"]
        lines.append(
            f"- **Small samples.** Analysed patients per study: median {sizes.median():g} "
            f"(range {sizes.min():g}-{sizes.max():g}); {len(small)} of {len(sizes)} studies had fewer than 50 "
            "patients, where one death or one missing patient moves the estimate a lot and chance imbalance of "
            "prognostic factors is likely even with randomisation."
        )
    if mortality is None or not {"study_id", "source_level"} <= set(mortality.columns):
        lines.append(
            "- **Death counts.** The mortality rows of stage 01 (`analysis_mortality.csv` with `source_level`) "
            "were not available, so the kinds of source behind the pooled death counts are not summarised here."
        )
    else:
        derived = mortality["derived"].astype(str).str.lower().isin(["true", "1", "yes"]) if "derived" in mortality else False
        kind = pd.Series("", index=mortality.index)
        kind[mortality["source_level"] == "later review"] = "later review"
        kind[(mortality["source_level"] == "derived") | derived] = "derived"
        items = [f"{labels.get(s, s)} ({k})" for s, k in zip(mortality["study_id"], kind) if k]
        lines.append(
            f"- **Death counts not printed as counts in the study's own report.** {len(items)} of "
            f"{len(mortality)} studies in the mortality analysis have counts derived from survivors or percentages, "
            f"or taken from a later review: {_join(sorted(items))}. These are not risk-of-bias judgements, but they "
            "add uncertainty about the numbers pooled."
        )
    return "\n".join(lines) + "\n"
