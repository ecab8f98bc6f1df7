"""Schemas of the two sheets of stage 06: ``grade_judgements.csv`` and ``later_syntheses.csv``.

Declared like every raw sheet (:mod:`mscmeta.review.schema`: one
:class:`~mscmeta.review.schema.Field` per column, :class:`~mscmeta.review.schema.RowRule` for
checks on several columns of one row); :func:`mscmeta.review.sheets.load_raw` reads both as
optional sheets and validates them with :func:`mscmeta.review.csvsheet.validate_sheet`.

``grade_judgements.csv``
    GRADE judgements that replace a domain's default rule for one outcome of the
    summary-of-findings table (mainly indirectness, which no rule can compute): outcome,
    domain, rating, reason, source. One row per outcome and domain.
``later_syntheses.csv``
    Yao et al. 2022 itself (``role`` = ``index review``: its publication date marks the
    cumulative figure) and the pooled mortality results of the systematic reviews published
    after it (``role`` = ``later synthesis``), each with its citation, DOI, the place in the
    source and a verbatim quote, drawn as reference points beside the cumulative
    meta-analysis. Numbers are as the synthesis printed them (its own measure and model).
"""

from __future__ import annotations

from mscmeta.review.schema import SOURCE_PATTERN, Field, RowRule, SheetSpec, _fmt

#: The outcomes of the summary-of-findings table (``grade_judgements.csv`` ``outcome``).
SOF_OUTCOMES: tuple[str, ...] = (
    "mortality (Yao-era set)",
    "mortality (updated RCTs)",
    "any adverse event",
    "serious adverse events",
    "length of hospital stay",
)
#: GRADE's five downgrading domains as written in the sheet.
GRADE_DOMAINS: tuple[str, ...] = ("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias")
#: Ratings of a domain.
GRADE_RATINGS: tuple[str, ...] = ("not serious", "serious", "very serious")
#: Role of a row of ``later_syntheses.csv``.
SYNTHESIS_ROLES: tuple[str, ...] = ("index review", "later synthesis")
#: Whether a quote was checked against its source during extraction.
QUOTE_CHECKS: tuple[str, ...] = ("re-read in source", "from research notes")
#: Effect measures a synthesis may report for mortality.
SYNTHESIS_MEASURES: tuple[str, ...] = ("OR", "RR")

GRADE_JUDGEMENTS = SheetSpec(
    file="grade_judgements.csv",
    fields=(
        Field("outcome", allowed=SOF_OUTCOMES, description="outcome of the summary-of-findings table"),
        Field("domain", allowed=GRADE_DOMAINS, description="GRADE domain the judgement replaces"),
        Field("rating", allowed=GRADE_RATINGS, description="not serious, serious or very serious"),
        Field("reason", description="the facts behind the rating, studies named (the SoF footnote)"),
        Field("source", pattern=SOURCE_PATTERN, description="where the facts are recorded"),
    ),
    unique_together=("outcome", "domain"),
    optional=True,
    key_column=None,
)


def _estimate_rule() -> RowRule:
    return RowRule(
        "synthesis_has_estimate",
        "estimate",
        ("role", "measure", "estimate", "ci_low", "ci_high"),
        lambda d: (d["role"] != "later synthesis")
        | (d["measure"].notna() & d["estimate"].notna() & d["ci_low"].notna() & d["ci_high"].notna()),
        lambda r: "a later synthesis needs measure, estimate, ci_low and ci_high",
    )


def _ci_rule() -> RowRule:
    return RowRule(
        "ci_brackets_estimate",
        "estimate",
        ("estimate", "ci_low", "ci_high"),
        lambda d: d["estimate"].isna() | d["ci_low"].isna() | d["ci_high"].isna()
        | ((d["ci_low"] <= d["estimate"]) & (d["estimate"] <= d["ci_high"])),
        lambda r: f"estimate {_fmt(r['estimate'])} is outside [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
    )


LATER_SYNTHESES = SheetSpec(
    file="later_syntheses.csv",
    fields=(
        Field("synthesis_id", pattern=r"^[a-z][a-z0-9-]*$", unique=True, description="identifier, e.g. qin2024-d28"),
        Field("role", allowed=SYNTHESIS_ROLES, description="index review (Yao 2022) or later synthesis"),
        Field("label", description="short label drawn in the figure, e.g. 'Qin 2024 (28-day)'"),
        Field("citation", description="authors, journal, year;volume:pages"),
        Field("doi", required=False, pattern=r"^10\.[0-9]{4,9}/\S+$", description="DOI"),
        Field("pub_date", "date", description="publication date (ISO, possibly partial)"),
        Field("search_date", "date", required=False, description="date of the last search, if stated"),
        Field("studies", required=False, description="studies and participants pooled, as printed"),
        Field("outcome", description="mortality outcome and time point, as printed"),
        Field("measure", required=False, allowed=SYNTHESIS_MEASURES, description="OR or RR"),
        Field("estimate", "float", required=False, minimum=0, description="pooled estimate"),
        Field("ci_low", "float", required=False, minimum=0, description="lower 95% confidence limit"),
        Field("ci_high", "float", required=False, minimum=0, description="upper 95% confidence limit"),
        Field("model", required=False, description="pooling model, if stated"),
        Field("certainty", required=False, description="GRADE certainty the synthesis states, if any"),
        Field("source", pattern=r"^https?://.*$", description="URL where the values were read"),
        Field("location", description="where in the source"),
        Field("quote", description="verbatim quote with the numbers"),
        Field("quote_check", allowed=QUOTE_CHECKS, description="quote re-read in the source or copied from notes"),
        Field("note", required=False, description="caveats"),
    ),
    row_rules=(_estimate_rule(), _ci_rule()),
    optional=True,
    key_column=None,
)

#: The sheets of this module, by file name.
UPDATE_SHEETS = {spec.file: spec for spec in (GRADE_JUDGEMENTS, LATER_SYNTHESES)}
