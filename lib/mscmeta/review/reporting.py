"""Reporting standards the bundle answers to: the PRISMA 2020 checklist, item by item.

The 27 items (42 with their sub-items) of the PRISMA 2020 checklist (Page MJ, McKenzie JE,
Bossuyt PM et al. The PRISMA 2020 statement: an updated guideline for reporting systematic
reviews. BMJ 2021;372:n71, doi:10.1136/bmj.n71, Table 1), each with the place in this
bundle that addresses it and how fully: ``reported``, ``partly`` (what is missing is
said), ``not reported`` or ``not applicable``. The statuses are the project's own reading
of its bundle; a reviewer can check each against the place named.
"""

from __future__ import annotations

import pandas as pd

#: (section, item, topic, where in the bundle, status).
PRISMA_2020: tuple[tuple[str, str, str, str, str], ...] = (
    ("Title", "1", "Identify the report as a systematic review",
     "Front page title: a rebuild of a published systematic review and meta-analysis", "partly"),
    ("Abstract", "2", "Structured abstract (PRISMA 2020 for Abstracts)",
     "Front page headline (result, published result, why they differ); no structured abstract", "partly"),
    ("Introduction", "3", "Rationale", "Front page; introductions of reports 01 and 03", "reported"),
    ("Introduction", "4", "Objectives (question and its elements)", "Methods: question and eligibility", "reported"),
    ("Methods", "5", "Eligibility criteria and grouping for the syntheses",
     "Methods: question and eligibility; report 01: eligibility of every candidate study; scenarios", "reported"),
    ("Methods", "6", "Information sources and the date each was last searched",
     "Report 01: candidates come from the paper's set as reconstructed, later reviews and trial registries; "
     "no database search of our own", "partly"),
    ("Methods", "7", "Full search strategies", "No search of our own was run (the paper's search is not reproduced)",
     "not reported"),
    ("Methods", "8", "Selection process", "Report 01: decision and reason for every candidate study", "partly"),
    ("Methods", "9", "Data collection process",
     "Report 01: every count with its source, place and verbatim quote; derived counts with their arithmetic",
     "reported"),
    ("Methods", "10a", "Outcomes sought", "Methods: outcomes; reports 03 and 05", "reported"),
    ("Methods", "10b", "Other variables sought", "Report 01: characteristics of included studies", "reported"),
    ("Methods", "11", "Risk of bias assessment methods", "Report 02 (RoB 2, ROBINS-I, JBI); Methods", "reported"),
    ("Methods", "12", "Effect measures", "Methods: effect measures, models and conventions; report 03", "reported"),
    ("Methods", "13a", "Which studies were eligible for each synthesis",
     "Methods; report 01 PRISMA flow of this rebuild; report 05 pooling rule", "reported"),
    ("Methods", "13b", "Preparing data for synthesis (missing statistics, conversions)",
     "Report 01 derivations; report 05 median-to-mean conversions", "reported"),
    ("Methods", "13c", "Tabulating and displaying results", "Every report: tables and RevMan forest plots", "reported"),
    ("Methods", "13d", "Synthesis methods and software",
     "Methods: conventions, software and versions; report 03: models for sparse data (GLMMs, exact conditional, "
     "Bayesian random effects)", "reported"),
    ("Methods", "13e", "Methods to explore heterogeneity", "Report 04 (subgroups); report 03 (influence)", "reported"),
    ("Methods", "13f", "Sensitivity analyses",
     "Report 03: sensitivity analyses, models for sparse data and the fragility index; report 06: Zarrabi 2023 "
     "split-control analysis", "reported"),
    ("Methods", "14", "Reporting bias assessment", "Report 03: small-study effects", "reported"),
    ("Methods", "15", "Certainty assessment",
     "Methods: certainty of the evidence (GRADE rules and overrides); report 06", "reported"),
    ("Results", "16a", "Results of the search and selection (flow diagram)",
     "Report 01: PRISMA 2020 flows of the paper (as published) and of this rebuild", "reported"),
    ("Results", "16b", "Studies that seemed eligible but were excluded, and why",
     "Report 01: eligibility of every candidate study", "reported"),
    ("Results", "17", "Characteristics of included studies", "Report 01: characteristics of included studies",
     "reported"),
    ("Results", "18", "Risk of bias in studies", "Report 02: tables and traffic-light plots", "reported"),
    ("Results", "19", "Results of individual studies", "Report 03 forest plot; report 05 per-study tables",
     "reported"),
    ("Results", "20a", "Characteristics and risk of bias of the studies in each synthesis",
     "Reports 02 and 03 (risk-of-bias column of the forest plot)", "reported"),
    ("Results", "20b", "Results of all statistical syntheses", "Reports 03, 05 and 06 (updated evidence)", "reported"),
    ("Results", "20c", "Investigations of possible causes of heterogeneity", "Report 04", "reported"),
    ("Results", "20d", "Sensitivity analyses",
     "Report 03: sensitivity analyses, models for sparse data, fragility index; report 06", "reported"),
    ("Results", "21", "Risk of bias due to missing results (reporting biases)", "Report 03: small-study effects",
     "reported"),
    ("Results", "22", "Certainty of evidence", "Report 06: GRADE summary of findings and every domain's rating",
     "reported"),
    ("Discussion", "23a", "Interpretation in the context of other evidence",
     "Front page: why our result and the published one differ; report 06: the trials since 2021 and later reviews",
     "partly"),
    ("Discussion", "23b", "Limitations of the evidence", "Report 02: main concerns", "partly"),
    ("Discussion", "23c", "Limitations of the review processes",
     "Report 01: sources and derived counts; report 03: what would it take", "partly"),
    ("Discussion", "23d", "Implications for practice, policy and research",
     "Report 06: whether more trials are needed (trial sequential analysis); practice and policy not discussed",
     "partly"),
    ("Other information", "24a", "Registration", "Not registered", "not reported"),
    ("Other information", "24b", "Protocol", "The Methods page is the analysis plan; no registered protocol",
     "partly"),
    ("Other information", "24c", "Amendments to the protocol", "No protocol to amend", "not applicable"),
    ("Other information", "25", "Support", "Not stated", "not reported"),
    ("Other information", "26", "Competing interests",
     "Report 02 records the paper's authors' involvement in an included trial; the bundle's own authors' "
     "interests are not stated", "partly"),
    ("Other information", "27", "Availability of data, code and other materials",
     "The bundle itself: data sheets with sources, code, notebooks and tests", "reported"),
)


def prisma_checklist() -> pd.DataFrame:
    """The PRISMA 2020 checklist with where each item is addressed and its status
    (columns ``section, item, topic, where, status``)."""
    return pd.DataFrame(list(PRISMA_2020), columns=["section", "item", "topic", "where", "status"])


def checklist_markdown(table: pd.DataFrame) -> str:
    """One sentence tallying the statuses of the checklist."""
    counts = table["status"].value_counts()
    order = ("reported", "partly", "not reported", "not applicable")
    return ("Of the " + f"{len(table)} PRISMA 2020 items, "
            + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in order) + ".\n")
