"""``risk_of_bias.csv``: reading and validating the risk-of-bias assessments (the sheet's one parser).

The assessments live in ``data/raw/risk_of_bias.csv``, one row per study x domain,
with an ``Overall`` row per study. Randomised trials are assessed with RoB 2 and
non-randomised comparisons with ROBINS-I, each on its own scale:

* **RoB 2** (Sterne JAC et al., BMJ 2019;366:l4898; Higgins JPT et al., *Revised
  Cochrane risk-of-bias tool for randomized trials (RoB 2)*, guidance of
  22 August 2019), domains D1-D5, judgements ``low`` / ``some concerns`` / ``high``.
* **ROBINS-I** (Sterne JAC et al., BMJ 2016;355:i4919; *ROBINS-I detailed guidance*,
  2016), domains D1-D7, judgements ``low`` / ``moderate`` / ``serious`` /
  ``critical`` / ``no information``.

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
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mscmeta.engine.rob_tools import OVERALL, ROB2, ROBINS_I, TOOLS, overall_judgement
from mscmeta.engine.validation import DataError
from mscmeta.review.csvsheet import Failure
from mscmeta.review.schema import SOURCE_LEVELS as DATA_SOURCE_LEVELS
from mscmeta.review.schema import SOURCE_PATTERN

#: The sheet's file name.
ROB_FILE = "risk_of_bias.csv"


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
#: (:data:`mscmeta.review.schema.SOURCE_LEVELS`), plus ``not located`` for a judgement that
#: rests on the absence of the information in the sources reviewed.
SOURCE_LEVELS = (*DATA_SOURCE_LEVELS, "not located")


class RiskOfBiasError(DataError):
    """Invalid risk-of-bias assessments. ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        header = f"{source}: {len(self.problems)} problem(s) in the risk-of-bias assessments"
        super().__init__(header + "\n" + "\n".join(f"  - {p}" for p in self.problems))


def _line(index: int) -> int:
    """CSV line of the row with *index* (line 1 is the header; see :func:`_as_strings`)."""
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
    allowed_domains = spec.rows
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
    problems = []
    for domain, n in sorted(counts.items()):
        if n > 1:
            rows = [_line(i) for i in group.index[group["domain"] == domain]]
            problems.append(f"line {rows[1]}, study {study} ({outcome}), domain {domain}: {n} rows for this domain "
                            f"(lines {', '.join(map(str, rows))}); expected one")
    for domain in spec.rows:
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
    for study, group in df.groupby("study_id", sort=True):
        outcomes = list(dict.fromkeys(group["outcome"]))
        if len(outcomes) > 1:
            first = group.index[group["outcome"] == outcomes[1]][0]
            problems.append(
                f"line {_line(first)}, study {study} ({outcomes[1]}), domain {group.at[first, 'domain']}: a second "
                f"assessed outcome ({', '.join(map(repr, outcomes))}); the risk-of-bias tables and figures show one "
                "assessment per study"
            )
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
    """Every cell as text. A frame read by :func:`mscmeta.review.csvsheet.read_sheet_text` keeps
    its index (physical line minus 2), so messages name the line an editor shows."""
    out = df.copy()
    for col in out.columns:
        out[col] = out[col].fillna("").astype(str)
    if out.index.dtype.kind == "i" and out.index.is_unique and (out.index >= 0).all():
        return out
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


def sort_assessments(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by tool, study, outcome and domain in the tool's order (``Overall`` last)."""
    codes = dict.fromkeys(code for spec in TOOLS.values() for code in spec.domain_codes)
    order = {code: i for i, code in enumerate((*sorted(codes, key=lambda c: (c[0], int(c[1:]))), OVERALL))}
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


_LINE_STUDY = re.compile(r"^line (\d+), study ([^,(]+?)(?: \([^)]*\))?, (.*)$")
_STUDY = re.compile(r"^study (\S+) (.*)$")


def rob_failures(error: RiskOfBiasError, file: str = ROB_FILE) -> list[Failure]:
    """The problems of *error* as :class:`~mscmeta.review.csvsheet.Failure` records (file,
    line and study taken from each message), for reports that list every sheet's problems."""
    out = []
    for text in error.problems:
        m = _LINE_STUDY.match(text)
        if m:
            out.append(Failure(file, int(m.group(1)), m.group(2), None, m.group(3)))
            continue
        m = _STUDY.match(text)
        out.append(Failure(file, None, m.group(1), None, m.group(2)) if m else Failure(file, None, None, None, text))
    return out
