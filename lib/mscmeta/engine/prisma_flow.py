"""The PRISMA 2020 flow diagram's boxes: the vocabulary of a review's study flow.

Page MJ et al. The PRISMA 2020 statement: an updated guideline for reporting systematic
reviews. BMJ 2021;372:n71, Figure 1 (new reviews that searched databases and registers
only). General reporting methodology, like :mod:`mscmeta.engine.rob_tools`: the sheet
layer checks ``search.csv`` against it (:mod:`mscmeta.review.schema`) and the diagram
draws it (:mod:`mscmeta.plots.prisma`); it lives here, free of matplotlib, so reading the
sheets does not load the plotting stack.
"""

from __future__ import annotations

#: PRISMA 2020 flow-diagram boxes (new reviews, databases and registers only), in
#: reading order. Page 2020 BMJ 372:n71, Figure 1.
PRISMA_BOXES: tuple[str, ...] = (
    "records_identified",
    "records_removed_before_screening",
    "records_screened",
    "records_excluded",
    "reports_sought",
    "reports_not_retrieved",
    "reports_assessed",
    "reports_excluded",
    "studies_included",
    "reports_included",
)
