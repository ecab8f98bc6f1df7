"""HTML renderings of a summary-of-findings table (GRADEpro layout) and of its certainty
assessment (every domain of every outcome with its rating and reason).

Self-contained HTML fragments (inline styles, no scripts): they can be written to a file,
shown in a notebook or mailed. All text is escaped.

References
----------
.. [1] Guyatt GH, Oxman AD, Santesso N, et al. GRADE guidelines: 12. Preparing summary of
   findings tables-binary outcomes. J Clin Epidemiol 2013;66:158-172 (layout of the table,
   its header and the explanations under it).
.. [2] Schünemann HJ, et al. Cochrane Handbook v6.4, chapter 14, Figure 14.1.a.
"""

from __future__ import annotations

from html import escape

from mscmeta.engine.grade.domains import DOMAIN_TITLES, DOMAINS
from mscmeta.engine.grade.sof import SofTable
from mscmeta.engine.grade.text import format_certainty

_CELL = "border:1px solid #999;padding:4px 6px;vertical-align:top;text-align:left"
_HEAD = _CELL + ";background:#e8eef4;font-weight:bold"
#: GRADE Working Group grades of evidence, as printed under GRADEpro tables.
GRADE_DEFINITIONS = (
    ("High certainty", "we are very confident that the true effect lies close to that of the estimate of the effect."),
    ("Moderate certainty", "we are moderately confident in the effect estimate: the true effect is likely to be close "
                           "to the estimate of the effect, but there is a possibility that it is substantially different."),
    ("Low certainty", "our confidence in the effect estimate is limited: the true effect may be substantially "
                      "different from the estimate of the effect."),
    ("Very low certainty", "we have very little confidence in the effect estimate: the true effect is likely to be "
                           "substantially different from the estimate of effect."),
)


def _row(cells: list[str], style: str = _CELL, tag: str = "td") -> str:
    return "<tr>" + "".join(f'<{tag} style="{style}">{escape(str(c))}</{tag}>' for c in cells) + "</tr>"


def sof_html(table: SofTable, *, title: str, population: str, setting: str, intervention: str,
             comparator: str) -> str:
    """The summary-of-findings table as HTML: header lines, one row per outcome and assumed
    control risk, the explanation of the absolute effects, the GRADE definitions and the
    lettered footnotes (reasons for every downgrade and override)."""
    d = table.display
    columns = ["Outcomes", "№ of participants (studies)", "Certainty of the evidence (GRADE)",
               "Relative effect (95% CI)", "Assumed control risk", f"Risk with {comparator}",
               f"Risk with {intervention}", f"Risk difference with {intervention}", "Comments"]
    parts = [f"<div><p style=\"font-weight:bold\">{escape(title)}</p>",
             f"<p>Patient or population: {escape(population)}<br>Setting: {escape(setting)}<br>"
             f"Intervention: {escape(intervention)}<br>Comparison: {escape(comparator)}</p>",
             '<table style="border-collapse:collapse;font-size:90%">', _row(columns, _HEAD, "th")]
    parts += [_row([r[c] for c in columns]) for _, r in d.iterrows()]
    parts.append("</table>")
    parts.append(f"<p style=\"font-size:85%\">{escape(table.note)}</p>")
    parts.append("<p style=\"font-size:85%\"><b>GRADE Working Group grades of evidence.</b> "
                 + " ".join(f"<i>{escape(a)}</i>: {escape(b)}" for a, b in GRADE_DEFINITIONS) + "</p>")
    if table.footnotes:
        parts.append("<p style=\"font-size:85%\"><b>Explanations</b></p><ol type=\"a\" style=\"font-size:85%\">")
        parts += [f"<li>{escape(f.text)}</li>" for f in table.footnotes]
        parts.append("</ol>")
    parts.append("</div>")
    return "\n".join(parts)


def assessment_html(table: SofTable) -> str:
    """Every outcome's start level and five domains: rating, whether a rule or an override
    set it (with the rule's own rating), and the reason."""
    header = ["Outcome", "Domain", "Rating", "Set by", "Reason"]
    parts = ['<table style="border-collapse:collapse;font-size:90%">', _row(header, _HEAD, "th")]
    for assessment in table.assessments:
        parts.append(_row([assessment.outcome, "Start", format_certainty(assessment.start_level), "design",
                           assessment.start_reason]))
        for name in DOMAINS:
            rating = assessment.domain(name)
            by = f"override (rule: {rating.rule_rating})" if rating.overridden else "rule"
            label = f"{rating.rating} ({rating.label})" if rating.label else rating.rating
            parts.append(_row(["", DOMAIN_TITLES[name], label, by, rating.reason]))
        parts.append(_row(["", "Certainty", format_certainty(assessment.level), "", ""]))
    parts.append("</table>")
    return "\n".join(parts)
