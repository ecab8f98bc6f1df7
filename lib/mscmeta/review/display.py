"""How every table of the reports reads: one display format, rendered by great-tables.

The tidy CSV tables stay machine-readable (full precision, snake_case columns, no
formatting). What a reader sees -- in the HTML reports and in the Markdown twin beside
each CSV -- goes through this module:

* human headers (:data:`HEADERS`; unknown columns are spelled out from their snake_case
  name), no index column;
* estimates with their interval as ``0.19 [0.09, 0.40]``, numbers without a negative
  zero, P values as ``<0.001`` below 0.001, percentages with ``%``;
* missing values as an em dash (with a footnote saying what it means where it means
  something), ``yes``/``no`` instead of ``True``/``False``;
* long text wrapped, every table as wide as the page and no wider (on screen and in
  print; the print CSS of the report template does the rest).

A :class:`TableSpec` names the columns a table shows and how; :func:`report_table` applies
it and returns a :class:`ReportTable`, which a notebook displays (great-tables HTML,
self-contained, no script or font from the network) and :func:`save_table` writes
(tidy CSV through :func:`mscmeta.bundle.io.write_table`, Markdown twin in the display
format).

References
----------
great-tables: https://posit-dev.github.io/great-tables/ (Python port of R's gt).
Journal conventions for P values and intervals: e.g. the BMJ's and The Lancet's
instructions to authors (P < 0.001 rather than P = 0.000; estimates with 95% CI).
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mscmeta.bundle.io import save_figure, table_to_csv, write_text

#: What a missing value looks like in every displayed table.
MISSING = "\u2014"
#: Font stack of the tables (DejaVu Sans ships with matplotlib and Debian's fonts-dejavu-core).
FONTS = ["DejaVu Sans", "Arial", "Helvetica", "sans-serif"]

#: Human headers of the columns that appear in the bundle's tables.
HEADERS: dict[str, str] = {
    "study_id": "Study ID", "label": "Study", "study": "Study", "year": "Year", "pub_date": "Published",
    "design": "Design", "randomised": "Randomised", "blinding": "Blinding", "severity": "Severity",
    "severity_subgroup": "Severity (assigned)", "doses": "Doses", "msc_source": "MSC source", "country": "Country",
    "events_msc": "Events MSC", "n_msc": "n MSC", "events_control": "Events control", "n_control": "n control",
    "timepoint": "Time point", "source_level": "Source level", "source_levels": "Source levels",
    "derived": "Derived", "row_id": "Reading", "source": "Source", "location": "Where in the source",
    "analysis": "Analysis", "description": "Conventions", "scenario": "Scenario", "model": "Model",
    "method": "Method", "tau2_method": "τ² estimator", "hksj": "HKSJ", "measure": "Measure",
    "zero_cell": "Zero-cell convention", "k": "k", "studies_in_table": "Studies", "estimate": "Estimate",
    "ci_low": "95% CI lower", "ci_high": "95% CI upper", "p_value": "P", "Q": "Q", "Q_df": "df",
    "Q_p": "P (heterogeneity)", "I2": "I²", "I2_ci_low": "I² lower", "I2_ci_high": "I² upper", "tau2": "τ²",
    "pi_low": "PI lower", "pi_high": "PI upper", "weight": "Weight", "estimable": "Estimable", "note": "Note",
    "notes": "Notes", "yi": "yi (analysis scale)", "vi": "vi", "group": "Group", "studies": "Studies",
    "decision": "Decision", "reason": "Reason", "mortality_data": "Mortality data", "scope": "Scope",
    "table": "Sheet", "rows": "Rows", "numbers": "Numbers", "quantity": "Quantity", "subgroup": "Subgroup",
    "status": "Status", "explanation": "Explanation", "factor": "Factor", "Q_between": "Q between",
    "df_between": "df between", "p_between": "P (subgroup differences)", "domain": "Domain",
    "domain_name": "Domain name", "judgement": "Judgement", "support": "Support", "quote": "Quote",
    "tool": "Tool", "overall": "Overall", "reasons": "Reasons", "outcome": "Outcome",
    "outcome_label": "Outcome", "conversion_method": "Median-to-mean conversion", "unit": "Unit",
    "msc": "MSC", "control": "Control", "contrast": "Between-arm estimate", "direction_only": "Direction only",
    "in_pooled_analysis": "Pooled", "mean_sd_msc": "Mean (SD) MSC", "mean_sd_control": "Mean (SD) control",
    "sources": "Sources", "derivations": "Derivations", "use": "Use", "ae_type": "Adverse event",
    "sheet": "Sheet", "quote_check": "Quote", "primary_use": "Primary readings", "claim_id": "Claim ID",
    "claim": "Claim", "claim_source": "Claim source", "better_with_msc": "Better with MSC",
    "studies_with_data": "Studies with data", "evidence": "Evidence", "ci_favours": "CI excludes no effect, favouring",
    "outcome_verdict": "Outcome verdict", "random_effects_check": "Random-effects check",
    "claim_verdict": "Claim verdict", "step": "Step", "kind": "Kind", "change": "Change", "distance": "Distance",
    "distance_change": "Change in distance", "toward_published": "Toward published",
    "status_vs_published": "Status vs published", "test": "Test", "statistic_name": "Statistic",
    "statistic": "Value", "df": "df", "coefficient": "Coefficient", "limit_estimate": "Limit estimate",
    "limit_ci_low": "Limit CI lower", "limit_ci_high": "Limit CI upper", "caveat": "Caveat",
    "rstudent": "Studentised residual", "dffits": "DFFITS", "cook_d": "Cook's distance", "cov_r": "COVRATIO",
    "tau2_del": "τ² without it", "QE_del": "Q without it", "hat": "Hat", "dfbetas": "DFBETAS",
    "influential": "Influential", "this_scenario": "This scenario", "published": "Published",
    "difference": "Difference",
}


# ---------------------------------------------------------------------------
# Cell formats
# ---------------------------------------------------------------------------


def is_missing(value: object) -> bool:
    """True for None, NaN, pandas NA and empty or whitespace-only strings."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_number(value: object, digits: int = 2) -> str:
    """*value* with *digits* decimals, never a negative zero (``-0.00`` prints as ``0.00``)."""
    if is_missing(value):
        return MISSING
    x = float(value)
    if not math.isfinite(x):
        return MISSING
    text = f"{x:.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text


def fmt_estimate(est: object, lo: object, hi: object, digits: int = 2) -> str:
    """``"0.19 [0.09, 0.40]"``; an em dash when the estimate is missing."""
    if is_missing(est) or not math.isfinite(float(est)):
        return MISSING
    if is_missing(lo) or is_missing(hi):
        return fmt_number(est, digits)
    return f"{fmt_number(est, digits)} [{fmt_number(lo, digits)}, {fmt_number(hi, digits)}]"


def fmt_pvalue(p: object) -> str:
    """``"<0.001"`` below 0.001, ``">0.999"`` above 0.999, else three decimals."""
    if is_missing(p) or not math.isfinite(float(p)):
        return MISSING
    p = float(p)
    if p < 0.001:
        return "<0.001"
    if p > 0.999:
        return ">0.999"
    return f"{p:.3f}"


def fmt_integer(value: object) -> str:
    """A count as a whole number; an em dash when missing."""
    if is_missing(value) or not math.isfinite(float(value)):
        return MISSING
    return f"{int(round(float(value)))}"


def fmt_percent(value: object, digits: int = 0) -> str:
    """``"42%"`` (the value is already a percentage)."""
    text = fmt_number(value, digits)
    return text if text == MISSING else f"{text}%"


def fmt_yes_no(value: object) -> str:
    """``yes``/``no`` for booleans (and their text forms); an em dash when missing."""
    if is_missing(value):
        return MISSING
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "1"):
            return "yes"
        if low in ("false", "no", "0"):
            return "no"
        return value
    return "yes" if bool(value) else "no"


def fmt_text(value: object) -> str:
    """Text as it is (booleans as yes/no, whole floats without ``.0``); an em dash when missing."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return fmt_yes_no(value)
    if isinstance(value, (float, np.floating)):
        return fmt_integer(value) if float(value).is_integer() else f"{float(value):g}"
    return public_text(str(value))


# ---------------------------------------------------------------------------
# Text for readers outside the project
# ---------------------------------------------------------------------------

#: Documents of the project that are not part of the bundle, as the data sheets cite them.
_INTERNAL_DOC = re.compile(
    r"dossier|addendum|living-evidence|research notes|[a-z-]+\.md\b(?<!README\.md)|\bissue\s+#?\d+",
    re.IGNORECASE,
)


def _split_top_level(text: str, sep: str) -> list[str]:
    """*text* split at *sep* where it is not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
    parts.append(text[start:])
    return parts


def _drop_parentheses(text: str) -> str:
    return re.sub(r"\s*\([^()]*\)", lambda m: "" if _INTERNAL_DOC.search(m.group(0)) else m.group(0), text)


def _clean_sentence(sentence: str) -> str:
    """A sentence without the parentheses, comma clauses or semicolon parts that cite a project document."""
    kept_parts = []
    for part in _split_top_level(_drop_parentheses(sentence), "; "):
        clauses = _split_top_level(part, ", ")
        if _INTERNAL_DOC.search(clauses[0]):
            continue
        kept_parts.append(", ".join(c for c in clauses if not _INTERNAL_DOC.search(c)))
    text = re.sub(r"\b(and|or),\s", r"\1 ", "; ".join(p.strip() for p in kept_parts if p.strip()))
    if text and sentence.rstrip().endswith(".") and not text.endswith("."):
        text = text.rstrip(",;:") + "."
    return text[:1].upper() + text[1:]


def public_text(text: str) -> str:
    """*text* without references to project documents that are not in the bundle.

    The data sheets keep, for the project, where a number was first found (the research
    notes and their sections); a reader of the bundle cannot open those, so the reports
    drop such references -- a parenthesis that cites one, a comma clause, a semicolon part
    or a sentence -- and keep the primary sources (URL, DOI) the sheets give beside them.
    """
    if not text or not _INTERNAL_DOC.search(text):
        return text
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip())
    return " ".join(s for s in (_clean_sentence(x) for x in sentences) if s)


def mentions_internal_document(text: str) -> bool:
    """True when *text* still cites a project document that is not in the bundle."""
    return bool(_INTERNAL_DOC.search(text))


# ---------------------------------------------------------------------------
# Table specs
# ---------------------------------------------------------------------------

FORMATTERS: dict[str, Callable[..., str]] = {
    "text": lambda v, d: fmt_text(v),
    "num": fmt_number,
    "int": lambda v, d: fmt_integer(v),
    "p": lambda v, d: fmt_pvalue(v),
    "pct": fmt_percent,
    "bool": lambda v, d: fmt_yes_no(v),
}
#: Kinds shown right-aligned (numbers); text and estimates with intervals are left-aligned.
NUMERIC_KINDS = ("num", "int", "p", "pct")


@dataclass(frozen=True)
class Col:
    """One displayed column: its header, where its values come from and how they print.

    ``source`` is a column of the tidy table, three columns (estimate, lower, upper) for
    ``kind="estimate"`` or two (events, total) for ``kind="fraction"`` or (lower, upper) for ``kind="interval"``. ``kind`` is one of
    ``text``, ``num``, ``int``, ``p``, ``pct``, ``bool``, ``estimate``, ``fraction``,
    ``interval``.
    """

    header: str
    source: str | tuple[str, ...]
    kind: str = "text"
    digits: int | None = None

    def values(self, df: pd.DataFrame) -> list[str]:
        """The column's cells in the display format (decimals: *digits*, else 0 for
        percentages and 2 for everything else)."""
        digits = self.digits if self.digits is not None else (0 if self.kind == "pct" else 2)
        return self._cells(df, digits)

    def _cells(self, df: pd.DataFrame, digits: int) -> list[str]:
        if self.kind == "fraction":
            num, den = (df[c] if c in df.columns else pd.Series(np.nan, index=df.index) for c in self.source)
            return [MISSING if is_missing(a) or is_missing(b) else f"{fmt_integer(a)}/{fmt_integer(b)}"
                    for a, b in zip(num, den, strict=True)]
        if self.kind == "interval":
            lo, hi = (df[c] if c in df.columns else pd.Series(np.nan, index=df.index) for c in self.source)
            return [MISSING if is_missing(a) or not math.isfinite(float(a)) else
                    f"{fmt_number(a, digits)} to {fmt_number(b, digits)}" for a, b in zip(lo, hi, strict=True)]
        if self.kind == "estimate":
            est, lo, hi = (df[c] if c in df.columns else pd.Series(np.nan, index=df.index) for c in self.source)
            return [fmt_estimate(e, lo_, hi_, digits) for e, lo_, hi_ in zip(est, lo, hi, strict=True)]
        if self.source not in df.columns:
            return [MISSING] * len(df)
        fmt = FORMATTERS[self.kind]
        return [fmt(v, digits) for v in df[self.source]]


@dataclass(frozen=True)
class TableSpec:
    """What a table shows: title, columns, footnotes and what an em dash means in it."""

    title: str
    cols: tuple[Col, ...]
    notes: tuple[str, ...] = ()
    missing_means: str = "not applicable or not reported"


def humanise(name: str) -> str:
    """The header of a tidy column: :data:`HEADERS`, else its snake_case name spelled out."""
    if name in HEADERS:
        return HEADERS[name]
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _kind_of(name: str, series: pd.Series) -> str:
    if name in ("p_value", "Q_p", "p_between") or name.endswith("_p") or name.startswith("p_"):
        return "p"
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if name in ("I2", "weight") or name.startswith("I2_"):
        return "pct"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        finite = series.dropna()
        if len(finite) and np.all(np.isclose(finite, np.round(finite))) and name in _COUNT_COLUMNS:
            return "int"
        return "num"
    return "text"


_COUNT_COLUMNS = {"k", "n_msc", "n_control", "events_msc", "events_control", "Q_df", "df_between", "df", "step",
                  "studies_in_table", "year", "rows", "numbers", "studies_with_data", "this_scenario", "published",
                  "difference", "msc", "control", "doses"}


def generic_spec(df: pd.DataFrame, title: str, drop: Sequence[str] = (), digits: int | None = None) -> TableSpec:
    """A spec for any tidy table: every column but *drop*, humanised, formatted by its
    kind, and an estimate with its CI merged into one column where the table has
    ``estimate``/``ci_low``/``ci_high``."""
    cols: list[Col] = []
    names = [c for c in df.columns if c not in set(drop)]
    merged = {"estimate", "ci_low", "ci_high"} <= set(names)
    for name in names:
        if merged and name in ("ci_low", "ci_high"):
            continue
        if merged and name == "estimate":
            cols.append(Col("Estimate [95% CI]", ("estimate", "ci_low", "ci_high"), "estimate", digits))
            continue
        cols.append(Col(humanise(name), name, _kind_of(name, df[name]), digits))
    return TableSpec(title, tuple(cols))


# ---------------------------------------------------------------------------
# The displayed table
# ---------------------------------------------------------------------------


def _table_id(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48]
    return f"tbl-{slug or 'table'}"


@dataclass
class ReportTable:
    """A table in its display format (all cells text), ready for HTML and Markdown."""

    frame: pd.DataFrame
    title: str
    notes: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    table_id: str = ""
    extra_css: tuple[str, ...] = field(default_factory=tuple)

    def gt(self):
        """The great-tables object (deterministic id, no network resources)."""
        from great_tables import GT  # deferred on purpose: loaded only when a table is rendered

        frame = self.frame.map(breakable) if len(self.frame) else pd.DataFrame({c: [] for c in self.frame.columns},
                                                                                 dtype=object)
        table = (
            GT(frame, id=self.table_id or _table_id(self.title))
            .tab_header(title=self.title)
            .opt_table_font(font=FONTS)
            .tab_options(
                table_width="100%", container_overflow_x="visible", container_overflow_y="visible",
                table_font_size="13px", heading_title_font_size="14px", heading_align="left",
                column_labels_font_weight="bold", data_row_padding="3px", source_notes_font_size="12px",
                table_margin_left="0", table_margin_right="0",
            )
        )
        if self.numeric:
            table = table.cols_align(align="right", columns=list(self.numeric))
        for note in self.notes:
            table = table.tab_source_note(note)
        return table

    def _repr_html_(self) -> str:
        return f'<div class="mscmeta-table">{self.gt().as_raw_html()}</div>'

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown in the same display format, notes below the table."""
        def cell(v: str) -> str:
            return str(v).replace("|", "\\|").replace("\n", " ")

        cols = list(self.frame.columns)
        lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.frame.itertuples(index=False)]
        if self.notes:
            lines.append("")
            lines += [cell(n) for n in self.notes]
        return "\n".join(lines) + "\n"


#: Zero-width space: lets the browser wrap a long token (a URL, a row id) at its punctuation.
_ZWSP = "\u200b"


_ESTIMATE = re.compile(r"-?\d+(?:\.\d+)? \[-?\d+(?:\.\d+)?, -?\d+(?:\.\d+)?\]")


def breakable(text: str) -> str:
    """*text* for an HTML cell: an estimate with its interval kept on one line (no-break
    spaces), and break opportunities after the punctuation of tokens longer than 24
    characters, so a narrow column wraps them instead of overflowing (the Markdown twin keeps
    the text as it is)."""
    text = _ESTIMATE.sub(lambda m: m.group(0).replace(" ", "\u00a0"), str(text))
    return re.sub(r"\S{25,}", lambda m: re.sub(r"([/_.=;,&?])", r"\1" + _ZWSP, m.group(0)), text)


def report_table(df: pd.DataFrame, spec: TableSpec) -> ReportTable:
    """Apply *spec* to the tidy table *df*: the display frame, its footnotes, its id."""
    frame = pd.DataFrame({c.header: c.values(df) for c in spec.cols}, columns=[c.header for c in spec.cols])
    frame = frame.reset_index(drop=True)
    notes = list(spec.notes)
    if (frame == MISSING).to_numpy().any() and spec.missing_means:
        notes.append(f"{MISSING} {spec.missing_means}.")
    numeric = tuple(c.header for c in spec.cols if c.kind in NUMERIC_KINDS)
    return ReportTable(frame, spec.title, tuple(notes), numeric, _table_id(spec.title))


def show_table(df: pd.DataFrame, spec: TableSpec | str, drop: Sequence[str] = ()) -> ReportTable:
    """The displayed form of *df*: by *spec*, or (given a title) by :func:`generic_spec`."""
    if isinstance(spec, str):
        spec = generic_spec(df, spec, drop=drop)
    return report_table(df, spec)


def save_table(df: pd.DataFrame, path: str | os.PathLike, spec: TableSpec | str | None = None) -> Path:
    """Write the tidy table *df* as CSV and its Markdown twin in the display format.

    The CSV keeps every column at full precision (:func:`mscmeta.bundle.io.table_to_csv`);
    the Markdown twin ``<stem>.md`` shows what the report shows (*spec*, or the generic
    display of every column). Both are written atomically.
    """
    path = Path(path)
    shown = show_table(df, spec if spec is not None else humanise(path.stem))
    write_text(path, table_to_csv(df))
    write_text(path.with_suffix(".md"), shown.to_markdown())
    return path


# ---------------------------------------------------------------------------
# Figures: saved once, shown once, with a caption
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownFigure:
    """A saved figure as the report shows it: the PNG written to the outputs, and its caption."""

    png: bytes
    caption: str
    name: str

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        cap = html.escape(self.caption)
        return (f'<figure class="mscmeta-figure" id="figure-{html.escape(self.name)}">'
                f'<img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')


def show_figure(fig, path_stem: str | os.PathLike, caption: str) -> ShownFigure:
    """Save *fig* as PNG and SVG (:func:`mscmeta.bundle.io.save_figure`, then closed, so the
    notebook's inline backend does not show it a second time) and return it for display
    with *caption*, which says what the figure shows and how to read it."""
    paths = save_figure(fig, path_stem, close=True)
    png = next(p for p in paths if p.suffix == ".png")
    return ShownFigure(png.read_bytes(), caption, Path(path_stem).name)
