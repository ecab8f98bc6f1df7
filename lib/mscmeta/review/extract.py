"""Stage 01 (notebook ``01-extract``): the study data, their sources and the eligibility decisions.

Builds the tidy tables of the stage -- the candidate studies, the analysis rows of the
scenario (``analysis_mortality.csv``, the contract with the later stages), eligibility,
Table 1, provenance and the study set against Yao's counts -- plus the narrative and the
PRISMA 2020 flow diagram of the paper's search. :func:`build_extract` makes everything in
memory first; :func:`write_extract` writes it only then, so invalid data leaves no output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

import matplotlib.pyplot as plt

from mscmeta.bundle.io import output_dirs, save_figure
from mscmeta.plots.prisma import prisma_flow, study_flow_diagram
from mscmeta.plots.style import use_style
from mscmeta.review.display import public_text, save_table, show_figure, show_table
from mscmeta.review.reporting import checklist_markdown, prisma_checklist
from mscmeta.review.scenarios import analysis_mortality, scenario_definition, scenario_studies, scenarios
from mscmeta.review.sheets import RawData, load_raw, study_labels
from mscmeta.review.tables import (
    CHARACTERISTICS, ELIGIBILITY, PRISMA_CHECKLIST, PROVENANCE, STUDY_SET, TABLE1, eligibility_view,
)

__all__ = [
    "load_raw", "use_style", "Extract", "build_extract", "write_extract", "extract_tables", "prisma_figure",
    "write_outputs", "studies_table", "table1", "eligibility_table", "provenance_summary", "study_set_comparison",
    "scenario_summary_markdown", "readings_markdown", "derivations_markdown", "characteristics_table", "study_flow",
    "scenario_definition_table", "prisma_checklist", "checklist_markdown", "show_table", "show_figure",
    "eligibility_view", "CHARACTERISTICS", "ELIGIBILITY", "PRISMA_CHECKLIST", "PROVENANCE", "STUDY_SET", "TABLE1",
    "FIGURE_CAPTIONS", "TABLE_SPECS",
]

#: Title of the PRISMA figure of stage 01 (the flow of Yao 2022's own search).
PRISMA_TITLE = "PRISMA 2020 flow diagram of Yao 2022 (counts as reported)"


def studies_table(raw: RawData) -> pd.DataFrame:
    """All candidate studies (``studies.csv`` as validated), sorted by ``study_id``."""
    return raw.studies.copy()


def _arm(events: object, n: object) -> str:
    if pd.isna(n):
        return "—"
    return f"{int(events)}/{int(n)}" if not pd.isna(events) else f"NL/{int(n)}"


def _severity_text(row: pd.Series) -> str:
    text = str(row["severity"])
    parts = []
    if not pd.isna(row["n_severe"]):
        parts.append(f"{int(row['n_severe'])} severe")
    if not pd.isna(row["n_critical"]):
        parts.append(f"{int(row['n_critical'])} critical")
    return f"{text} ({', '.join(parts)})" if parts else text


def table1(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Table 1: characteristics of the studies in the review set of *scenario*.

    One row per study, formatted for reading (text columns). Deaths are shown as
    ``deaths/n`` per arm from the scenario's mortality row, with its time point and
    source level; studies without usable comparative deaths show why.
    """
    st = scenario_studies(raw, scenario)
    m = raw.mortality.set_index("row_id")
    rows = []
    for _, r in st.iterrows():
        if pd.isna(r["mortality_row"]):
            deaths_msc = deaths_ctl = "—"
            timepoint = ""
            level = f"no comparative deaths ({r['mortality_data']})"
        else:
            mr = m.loc[r["mortality_row"]]
            deaths_msc = _arm(mr["events_msc"], mr["n_msc"])
            deaths_ctl = _arm(mr["events_control"], mr["n_control"])
            timepoint = mr["timepoint"]
            level = mr["source_level"] + (" (derived)" if not pd.isna(mr["derivation"]) else "")
        rows.append(
            {
                "Study": r["label"],
                "Country": "" if pd.isna(r["country"]) else r["country"],
                "Design": r["design"],
                "Blinding": r["blinding"],
                "Severity": _severity_text(r),
                "MSC source": r["msc_source"],
                "Doses": "NR" if pd.isna(r["doses"]) else str(int(r["doses"])),
                "Cell dose": "" if pd.isna(r["cell_dose"]) else r["cell_dose"],
                "n MSC": "" if pd.isna(r["n_msc"]) else str(int(r["n_msc"])),
                "n control": "—" if pd.isna(r["n_control"]) else str(int(r["n_control"])),
                "Deaths MSC": deaths_msc,
                "Deaths control": deaths_ctl,
                "Time point": timepoint,
                "Source of deaths": level,
                "study_id": r["study_id"],
            }
        )
    cols = ["study_id", "Study", "Country", "Design", "Blinding", "Severity", "MSC source", "Doses", "Cell dose",
            "n MSC", "n control", "Deaths MSC", "Deaths control", "Time point", "Source of deaths"]
    return pd.DataFrame(rows, columns=cols)


def eligibility_table(raw: RawData) -> pd.DataFrame:
    """Every candidate study with its decision, reason and role in each scenario.

    For each scenario a column ``in_<scenario>`` says ``mortality`` (enters the
    mortality analysis, with the mortality row used), ``review only`` (in the review
    set but without usable comparative deaths) or ``no``.
    """
    st = raw.studies
    out = st[["study_id", "label", "design", "severity", "decision", "reason", "mortality_data"]].copy()
    for name in scenarios(raw):
        sc = raw.scenarios[raw.scenarios["scenario"] == name].set_index("study_id")["mortality_row"]
        role = []
        for sid in out["study_id"]:
            if sid not in sc.index:
                role.append("no")
            elif pd.isna(sc[sid]):
                role.append("review only")
            else:
                role.append(f"mortality ({sc[sid]})")
        out[f"in_{name}"] = role
    return out.sort_values("study_id", kind="mergesort").reset_index(drop=True)


def provenance_summary(raw: RawData) -> pd.DataFrame:
    """How many numbers come from primary papers, preprints, registries, later reviews.

    Rows: for every scenario (``scope`` = scenario name) the mortality rows it uses,
    and ``all rows`` for every row of ``mortality.csv``; grouped by ``source_level``
    and ``derived``. ``rows`` counts 2×2 rows, ``numbers`` the per-arm counts in them
    (4 per row). Optional sheets with a ``source_level`` column (adverse events,
    secondary outcomes, risk of bias) are tallied too, one number (or judgement) per
    row; ``derived`` is ``yes`` where their ``derivation`` column is filled.
    """
    parts = []

    def tally(scope: str, table: str, df: pd.DataFrame, per_row: int) -> None:
        if df.empty:
            return
        derived = df["derivation"].notna() if "derivation" in df.columns else pd.Series(False, index=df.index)
        g = (
            pd.DataFrame({"source_level": df["source_level"].fillna("not stated"), "derived": derived})
            .groupby(["source_level", "derived"], sort=True)
            .size()
            .reset_index(name="rows")
        )
        g.insert(0, "table", table)
        g.insert(0, "scope", scope)
        g["numbers"] = g["rows"] * per_row
        parts.append(g)

    for name in scenarios(raw):
        used = analysis_mortality(raw, name)
        rows = raw.mortality.set_index("row_id").loc[list(used["row_id"])].reset_index()
        tally(name, "mortality.csv", rows, 4)
    tally("all rows", "mortality.csv", raw.mortality, 4)
    for sheet, df in sorted(raw.optional.items()):
        if "source_level" in df.columns:
            tally("all rows", sheet, df, 1)
    out = pd.concat(parts, ignore_index=True)
    out["derived"] = out["derived"].map({True: "yes", False: "no"})
    return out[["scope", "table", "source_level", "derived", "rows", "numbers"]]


def _published_value(raw: RawData, quantity: str, subgroup: str = "overall") -> float | None:
    p = raw.published_results
    hit = p[(p["quantity"] == quantity) & (p["subgroup"] == subgroup)]
    if hit.empty or pd.isna(hit.iloc[0]["estimate"]):
        return None
    return float(hit.iloc[0]["estimate"])


def study_set_comparison(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Size of the scenario's review set next to the published counts of Yao 2022.

    Quantities: studies, articles, patients (n MSC + n control), smallest and largest
    study, and the number of studies entering the mortality analysis. Published
    values come from ``published_results.csv`` (empty where not reported).
    """
    st = scenario_studies(raw, scenario)
    sizes = st["n_msc"].fillna(0).astype(int) + st["n_control"].fillna(0).astype(int)
    mort = analysis_mortality(raw, scenario)
    rows = [
        ("studies", "studies in the review set", len(st)),
        ("articles", "articles reporting them", int(st["n_articles"].sum())),
        ("patients", "patients (n MSC + n control)", int(sizes.sum())),
        ("study_size_min", "smallest study (patients)", int(sizes.min()) if len(st) else None),
        ("study_size_max", "largest study (patients)", int(sizes.max()) if len(st) else None),
        ("mortality_studies", "studies in the mortality analysis", len(mort)),
    ]
    out = pd.DataFrame(rows, columns=["quantity", "description", "this_scenario"])
    out["this_scenario"] = out["this_scenario"].astype("Int64")
    out["published"] = pd.array([_published_value(raw, q) for q in out["quantity"]], dtype="Float64").round().astype("Int64")
    out["difference"] = out["this_scenario"] - out["published"]
    out.insert(0, "scenario", scenario)
    return out


def scenario_summary_markdown(raw: RawData, scenario: str = "primary") -> str:
    """Markdown narrative of *scenario* with numbers computed from the data."""
    d = scenario_definition(raw, scenario)
    st = scenario_studies(raw, scenario)
    mort = analysis_mortality(raw, scenario)
    review_only = st[st["mortality_row"].isna()]
    cmp = study_set_comparison(raw, scenario).set_index("quantity")
    lines = [
        f"### Scenario {scenario}: {d['label']}",
        "",
        public_text(str(d["description"])),
        "",
        f"*Basis:* {public_text(str(d['basis'])) or 'see the eligibility table'}",
        "",
        f"- Review set: **{len(st)} studies** in {int(st['n_articles'].sum())} articles, "
        f"{int(cmp.loc['patients', 'this_scenario'])} patients.",
        f"- Mortality analysis: **{len(mort)} studies**; "
        f"{int(mort['derived'].sum())} of them with counts derived from percentages or survivors; "
        f"{int((mort['source_level'] == 'later review').sum())} resting on a later review only.",
    ]
    if len(review_only):
        items = "; ".join(f"{r.label} ({r.mortality_data})" for r in review_only.itertuples())
        lines.append(f"- In the review set without comparative deaths (not in the mortality analysis): {items}.")
    pub = cmp.loc[["studies", "articles", "patients", "study_size_min", "study_size_max"]]
    diffs = [
        f"{q.replace('_', ' ')}: {int(r.this_scenario)} here vs {int(r.published)} published"
        for q, r in pub.iterrows()
        if not pd.isna(r.published)
    ]
    if diffs:
        lines.append("- Compared with Yao 2022 (published_results.csv): " + "; ".join(diffs) + ".")
    return "\n".join(lines) + "\n"


def _reading(r: pd.Series) -> str:
    return (
        f"`{r['row_id']}`: {int(r['events_msc'])}/{int(r['n_msc'])} vs "
        f"{int(r['events_control'])}/{int(r['n_control'])}, {r['timepoint']} ({r['source_level']}; use: {r['use']})"
    )


def readings_markdown(raw: RawData) -> str:
    """Markdown list of the studies with an alternative mortality reading, with the notes.

    These are the places where sources disagree, a later time point exists, or a
    reading rests on an inference; the row marked ``use = primary`` (if any) is the
    project's default, other scenarios may pick another row.
    """
    m = raw.mortality
    labels = study_labels(raw.studies)
    with_alternative = set(m.loc[m["use"] == "alternative", "study_id"])
    multi = m[m["study_id"].isin(with_alternative)]
    if multi.empty:
        return "No study has an alternative mortality reading.\n"
    lines = []
    for sid, rows in multi.groupby("study_id", sort=True):
        lines.append(f"- **{labels.get(sid, sid)}**")
        for _, r in rows.iterrows():
            note = "" if pd.isna(r["note"]) else f" — {public_text(str(r['note']))}"
            lines.append(f"  - {_reading(r)}{note}")
    return "\n".join(lines) + "\n"


def derivations_markdown(raw: RawData, scenario: str = "primary") -> str:
    """Markdown list of the mortality counts of *scenario* that are derived, with the arithmetic."""
    used = analysis_mortality(raw, scenario)
    m = raw.mortality.set_index("row_id")
    rows = m.loc[list(used.loc[used["derived"], "row_id"])]
    if rows.empty:
        return f"No count of scenario {scenario} is derived.\n"
    labels = study_labels(raw.studies)
    lines = [f"- **{labels[r.study_id]}** ({rid}): {r.derivation}." for rid, r in rows.iterrows()]
    return "\n".join(lines) + "\n"


def extract_tables(raw: RawData, scenario: str = "primary") -> dict[str, pd.DataFrame]:
    """All tables of stage 01-extract for *scenario*, keyed by output file stem."""
    return {
        "studies": studies_table(raw),
        "analysis_mortality": analysis_mortality(raw, scenario),
        "eligibility": eligibility_table(raw),
        "provenance_summary": provenance_summary(raw),
        "table1": table1(raw, scenario),
        "study_set_comparison": study_set_comparison(raw, scenario),
        "characteristics": characteristics_table(raw, scenario),
        "study_flow": study_flow(raw, scenario),
        "scenario_definition": scenario_definition_table(raw, scenario),
        "prisma_checklist": prisma_checklist(),
    }


#: Display format of each table of the stage in the reports and the Markdown twins.
TABLE_SPECS = {"table1": TABLE1, "characteristics": CHARACTERISTICS, "study_set_comparison": STUDY_SET,
               "provenance_summary": PROVENANCE, "prisma_checklist": PRISMA_CHECKLIST}

#: Captions of the stage's figures: what they show and how to read them.
FIGURE_CAPTIONS = {
    "prisma_flow": ("PRISMA 2020 flow diagram of Yao et al. 2022 as published (counts as a news summary of the paper "
                    "reports them). Boxes the sources do not report read 'n = not reported'; nothing is estimated."),
    "prisma_flow_ours": ("PRISMA 2020 flow of this rebuild, counted from the data sheets: from the candidate studies to "
                         "the review set of the scenario, the studies with comparative death counts and those with "
                         "an estimable effect; boxes on the right are the studies leaving the flow at each step."),
}


def prisma_figure(raw: RawData) -> Figure:
    """The PRISMA 2020 flow diagram of the paper's search (``search.csv``)."""
    return prisma_flow(raw.search, title=PRISMA_TITLE)


@dataclass(frozen=True)
class Extract:
    """Everything stage 01 writes: its tables (by output stem) and its figures (by output
    stem: the paper's PRISMA flow and ours). The figures are closed as soon as they are
    drawn, so a notebook shows each once, where it chooses."""

    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]


def build_extract(raw: RawData, scenario: str = "primary") -> Extract:
    """Every table and figure of stage 01, in memory."""
    tables = extract_tables(raw, scenario)
    figures = {
        "prisma_flow": prisma_figure(raw),
        "prisma_flow_ours": study_flow_diagram(
            tables["study_flow"], title=f"PRISMA 2020 flow of this rebuild (scenario {scenario}, from the data)"),
    }
    for fig in figures.values():
        plt.close(fig)
    return Extract(tables=tables, figures=figures)


def write_outputs(extract: Extract, out_dir: str | os.PathLike, figures: bool = True) -> list[Path]:
    """Write the tables (CSV + Markdown twin in the display format) and, unless the notebook
    already saved them while showing them, the figures (PNG + SVG) of *extract*."""
    dirs = output_dirs(out_dir)
    written = [save_table(df, dirs["tables"] / f"{name}.csv", TABLE_SPECS.get(name)) for name, df in extract.tables.items()]
    if figures:
        for stem, fig in extract.figures.items():
            written += save_figure(fig, dirs["figures"] / stem)
    return written


def write_extract(data_dir: str | os.PathLike, out_dir: str | os.PathLike, scenario: str = "primary") -> list[Path]:
    """Run stage 01 without the notebook: validate, build everything, then write.

    Validation (:func:`load_raw`) and the construction of every table and of the
    PRISMA figure happen before the first file is written, so invalid data leaves
    *out_dir* untouched. Writes ``<out_dir>/tables/<name>.csv`` (+ ``.md``) and
    ``<out_dir>/figures/prisma_flow.png|.svg``.
    """
    return write_outputs(build_extract(load_raw(data_dir), scenario), out_dir)


# ---------------------------------------------------------------------------
# For the reviewer: RevMan's characteristics table, our PRISMA flow, the scenario
# ---------------------------------------------------------------------------


def _join_parts(*parts: object, sep: str = "; ") -> str:
    return sep.join(str(p) for p in parts if p is not None and not pd.isna(p) and str(p).strip())


def _characteristics_row(r: pd.Series, mortality: pd.DataFrame) -> dict:
    n_ctl = "no control arm" if pd.isna(r["n_control"]) else f"{int(r['n_control'])} control"
    n_msc = "" if pd.isna(r["n_msc"]) else f"{int(r['n_msc'])} MSC"
    doses = "number of doses not reported" if pd.isna(r["doses"]) else f"{int(r['doses'])} dose{'s' if r['doses'] != 1 else ''}"
    if pd.isna(r["mortality_row"]):
        outcomes = f"All-cause deaths: no comparative counts ({r['mortality_data']})"
    else:
        m = mortality.loc[r["mortality_row"]]
        outcomes = (f"All-cause deaths {_arm(m['events_msc'], m['n_msc'])} MSC vs {_arm(m['events_control'], m['n_control'])} "
                    f"control, {m['timepoint']} ({m['source_level']}{', derived' if not pd.isna(m['derivation']) else ''})")
    return {
        "study_id": r["study_id"], "study": r["label"],
        "methods": _join_parts(r["design"], f"blinding: {r['blinding']}", r["country"],
                               f"registration {r['registration']}" if not pd.isna(r["registration"]) else None,
                               f"published {r['pub_date']}" if not pd.isna(r["pub_date"]) else None),
        "participants": _join_parts(r["severity_detail"] if not pd.isna(r["severity_detail"]) else _severity_text(r),
                                    _join_parts(n_msc, n_ctl, sep=", ")),
        "interventions": _join_parts(f"MSC ({r['msc_source']})", r["cell_dose"], doses, r["doses_note"],
                                     f"control: {r['control']}" if not pd.isna(r["control"]) else "no control"),
        "outcomes": outcomes,
        "notes": r["reason"],
    }


def characteristics_table(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """Characteristics of the studies in the review set of *scenario*, in RevMan's shape.

    One row per study: ``study_id, study, methods, participants, interventions, outcomes,
    notes`` (RevMan 5 "Characteristics of included studies"; Cochrane Handbook v6 §5.3),
    each cell written from ``studies.csv`` and the scenario's mortality reading; the notes
    are the project's eligibility reason for the study.
    """
    st = scenario_studies(raw, scenario)
    m = raw.mortality.set_index("row_id")
    rows = [_characteristics_row(r, m) for _, r in st.iterrows()]
    cols = ["study_id", "study", "methods", "participants", "interventions", "outcomes", "notes"]
    return pd.DataFrame(rows, columns=cols)


def _exclusion_reason(row: pd.Series) -> str:
    if row["design"] == "single-arm":
        return "single arm (no concurrent control)"
    if row["decision"] == "scenario":
        return "in other scenarios only"
    if row["decision"] == "included":
        return "included, but not in this scenario"
    return "not eligible (reasons in the eligibility table)"


def study_flow(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """The flow of this rebuild's studies (PRISMA 2020 style), counted from the sheets.

    Rows (``step, label, count, side_label, side_count``): the candidate studies of
    ``studies.csv``; the review set of *scenario* (and the candidates not in it, by
    reason); the studies with comparative death counts (and those without); the studies
    with at least one death in either arm, i.e. an estimable odds or risk ratio (and the
    double-zero studies, which are not).
    """
    studies = raw.studies
    st = scenario_studies(raw, scenario)
    out_of_set = studies[~studies["study_id"].isin(st["study_id"])]
    reasons = out_of_set.apply(_exclusion_reason, axis=1).value_counts().sort_index()
    mort = analysis_mortality(raw, scenario)
    no_deaths = st[st["mortality_row"].isna()]
    double_zero = mort[(mort["events_msc"] == 0) & (mort["events_control"] == 0)]
    rows = [
        ("identified", "Candidate studies (the paper's set as reconstructed, later reviews, trial registries, "
                       "trials published 2022–2025)", len(studies),
         "Not in the review set of this scenario: " + "; ".join(f"{r} ({n})" for r, n in reasons.items()),
         len(out_of_set)),
        ("review_set", f"Studies in the review set of scenario {scenario} ({int(st['n_articles'].sum())} articles)",
         len(st), "No comparative death counts (not located, or no control arm)", len(no_deaths)),
        ("mortality", "Studies in the mortality analysis", len(mort),
         "No deaths in either arm (not estimable as an odds or risk ratio)", len(double_zero)),
        ("estimable", "Studies with an estimable odds or risk ratio", len(mort) - len(double_zero), "", None),
    ]
    out = pd.DataFrame(rows, columns=["step", "label", "count", "side_label", "side_count"])
    return out.astype({"count": "int64", "side_count": "Int64"})


def scenario_definition_table(raw: RawData, scenario: str = "primary") -> pd.DataFrame:
    """The definition of *scenario* (label, description, basis) for the Methods page."""
    d = scenario_definition(raw, scenario)
    return pd.DataFrame([{"scenario": scenario, "label": d["label"], "description": public_text(str(d["description"])),
                          "basis": public_text(str(d["basis"]))}])
