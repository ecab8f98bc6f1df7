"""SoF table builder: a published SoF table rebuilt, layout, tidy twin, footnotes, errors."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from mscmeta.engine.validation import DataError
from mscmeta.engine.grade.absolute_effects import ContinuousEffect, ControlRisk, EffectEstimate
from mscmeta.engine.grade.domains import EvidenceBody, Heterogeneity, Override, StudyEvidence
from mscmeta.engine.grade.sof import SofOutcome, build_sof


def rcts(k: int) -> tuple[StudyEvidence, ...]:
    return tuple(StudyEvidence(f"trial {i}", "RCT", "low", 1.0) for i in range(k))


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


# ----------------------------------------------------------------------------- published SoF

def stockings_outcomes() -> list[SofOutcome]:
    dvt = EvidenceBody("Symptomless DVT", rcts(9), EffectEstimate("OR", 0.10, 0.04, 0.25), 2637,
                       n_events=50, control_risk=47 / 1323)
    svt = EvidenceBody("Superficial vein thrombosis", rcts(8), EffectEstimate("OR", 0.45, 0.18, 1.13), 1804,
                       n_events=17, control_risk=0.013)
    oedema_effect = EffectEstimate("MD", -4.72, -4.91, -4.52)
    oedema = EvidenceBody("Oedema", rcts(6), oedema_effect, 1246, heterogeneity=Heterogeneity(i2=80.0, q_p=0.001))
    return [
        SofOutcome(dvt, (ControlRisk(0.010, "Low risk population"), ControlRisk(0.030, "High risk population"))),
        SofOutcome(svt, (ControlRisk(0.013, "Study population"),)),
        SofOutcome(oedema, continuous=ContinuousEffect(oedema_effect, control_text="ranged across control groups from 6 to 9",
                                                       outcome_label="oedema score")),
    ]


PUBLISHED_JUDGEMENTS = [
    Override("Symptomless DVT", "imprecision", "not serious", "not rated down in the published SoF", "Clarke 2016, CD004002"),
    Override("Superficial vein thrombosis", "imprecision", "serious", "rated down once in the published SoF", "Clarke 2016"),
    Override("Oedema", "risk_of_bias", "serious", "rated down in the published SoF", "Clarke 2016"),
    Override("Oedema", "inconsistency", "serious", "rated down in the published SoF", "Clarke 2016"),
]


def test_compression_stockings_sof_rebuilt():
    """Clarke et al., Cochrane CD004002 SoF (Cochrane Handbook 5.1 Figure 11.5.a, 6.x Figure 14.1.a;
    EBM Guidelines 'tl34' reproduction). Published cells:

    Symptomless DVT | OR 0.10 (0.04 to 0.25) | 10/1000 -> 1/1000 (0 to 3); 30/1000 -> 3/1000 (1 to 8)
    | 2637 (9) | high.  Superficial vein thrombosis | OR 0.45 (0.18 to 1.13) | 13 per 1000 -> 6 per
    1000 (2 to 15) | 1804 (8) | moderate.  Oedema | mean 6 to 9 in controls | 4.7 lower (4.9 lower to
    4.5 lower) | 1246 (6) | low. The certainty judgements are entered as overrides (the review's
    reasons are not reproduced); the arithmetic and the layout are the engine's.
    """
    table = build_sof(stockings_outcomes(), intervention="stockings", comparator="no stockings",
                      overrides=PUBLISHED_JUDGEMENTS)
    d = table.display
    assert list(d["№ of participants (studies)"]) == ["2637 (9 RCTs)", "2637 (9 RCTs)", "1804 (8 RCTs)", "1246 (6 RCTs)"]
    assert list(d["Relative effect (95% CI)"][:3]) == ["OR 0.10 (0.04 to 0.25)"] * 2 + ["OR 0.45 (0.18 to 1.13)"]
    assert [_numbers(x)[0] for x in d["Risk with no stockings"][:3]] == [10, 30, 13]
    assert [_numbers(x) for x in d["Risk with stockings"][:3]] == [[1, 1000, 0, 3], [3, 1000, 1, 8], [6, 1000, 2, 15]]
    words = [c.split(" ", 1)[1].split(" ")[0] for c in d["Certainty of the evidence (GRADE)"]]
    assert words == ["High", "High", "Moderate", "Low"]
    assert d["Risk difference with stockings"].iloc[3] == "MD 4.72 lower (4.91 lower to 4.52 lower)"
    assert d["Risk with no stockings"].iloc[3] == "The mean oedema score ranged across control groups from 6 to 9"


def test_override_footnotes_keep_the_rule_rating():
    table = build_sof(stockings_outcomes(), overrides=PUBLISHED_JUDGEMENTS)
    dvt_notes = [f for f in table.footnotes if "Symptomless DVT" in f.outcomes]
    assert [f.marker for f in table.footnotes] == ["a", "b", "c", "d"]
    assert dvt_notes[0].text.startswith("Imprecision: not serious (override; rule: very serious). ")
    assert dvt_notes[0].text.endswith("Source: Clarke 2016, CD004002.")
    assert table.display["Footnotes"].tolist() == ["a", "a", "b", "c,d"]
    assert table.display["Certainty of the evidence (GRADE)"].iloc[3] == "⊕⊕◯◯ Low c,d"


# ----------------------------------------------------------------------------- layout, tidy twin

def msc_like_outcomes() -> list[SofOutcome]:
    """Synthetic inputs shaped like the MSC review (not its data): two mortality evidence sets, AE, SAE, LOS."""
    mixed = tuple(StudyEvidence(f"s{i}", "RCT" if i < 5 else "NRS", rob, w, None, None, None)
                  for i, (rob, w) in enumerate([("low", 9), ("some concerns", 8), ("low", 7), ("high", 4), ("low", 6),
                                                ("serious", 12), ("moderate", 10), ("critical", 3)]))
    rct_only = mixed[:5]
    los_effect = EffectEstimate("MD", -2.1, -3.4, -0.8)
    return [
        SofOutcome(EvidenceBody("Mortality (all comparative studies)", mixed, EffectEstimate("OR", 0.61, 0.40, 0.93),
                                560, n_events=160, control_risk=0.31), follow_up="28 days"),
        SofOutcome(EvidenceBody("Mortality (randomised trials)", rct_only, EffectEstimate("OR", 0.60, 0.33, 1.10),
                                310, n_events=70, control_risk=0.25),
                   (ControlRisk(0.25, "Study population", "pooled control arms"), ControlRisk(0.40, "High risk", "critical illness"))),
        SofOutcome(EvidenceBody("Any adverse event", rct_only, EffectEstimate("RR", 1.05, 0.85, 1.30), 300,
                                n_events=120, control_risk=0.38)),
        SofOutcome(EvidenceBody("Serious adverse events", rct_only, EffectEstimate("RR", 0.80, 0.50, 1.28), 300,
                                n_events=45, control_risk=0.17)),
        SofOutcome(EvidenceBody("Length of hospital stay", rct_only[:3], los_effect, 180),
                   continuous=ContinuousEffect(los_effect, 19.4, "days")),
    ]


def test_layout_columns_rows_and_tidy_numbers():
    table = build_sof(msc_like_outcomes(), intervention="MSC", comparator="standard care")
    assert list(table.display.columns) == [
        "Outcomes", "№ of participants (studies)", "Certainty of the evidence (GRADE)", "Relative effect (95% CI)",
        "Assumed control risk", "Risk with standard care", "Risk with MSC", "Risk difference with MSC",
        "Comments", "Footnotes",
    ]
    assert len(table.display) == len(table.tidy) == 6
    assert table.display["Outcomes"].iloc[0] == "Mortality (all comparative studies) (follow-up: 28 days)"
    assert table.display["№ of participants (studies)"].iloc[0] == "560 (5 RCTs, 3 non-randomised studies)"
    tidy = table.tidy
    assert pd.api.types.is_float_dtype(tidy["risk_difference"]) and pd.api.types.is_integer_dtype(tidy["certainty_level"])
    assert tidy.loc[0, "start_level"] == 2 and tidy.loc[1, "start_level"] == 4
    assert tidy["risk_difference"].iloc[0] == pytest.approx(0.61 * 0.31 / (1 - 0.31 + 0.61 * 0.31) - 0.31)
    json.dumps(table.to_dict(), default=str)
    assert "Footnotes" not in str(table).splitlines()[-1]


def test_markers_match_footnotes_and_identical_texts_share_a_letter():
    table = build_sof(msc_like_outcomes())
    texts = [f.text for f in table.footnotes]
    assert len(texts) == len(set(texts))
    shared = [f for f in table.footnotes if len(f.outcomes) > 1]
    assert shared and shared[0].domain == "risk_of_bias"
    used = {m for cell in table.display["Footnotes"] for m in cell.split(",") if m}
    assert used == {f.marker for f in table.footnotes}
    for note in table.footnotes:
        assert note.text.split(":")[0] in {"Risk of bias", "Inconsistency", "Indirectness", "Imprecision", "Publication bias"}


# ----------------------------------------------------------------------------- errors

def test_sof_errors():
    outcomes = msc_like_outcomes()
    with pytest.raises(DataError, match="no outcomes"):
        build_sof([])
    with pytest.raises(DataError, match="outcome names repeated"):
        build_sof([outcomes[0], outcomes[0]])
    with pytest.raises(DataError, match="override for outcome 'Mortalty': no such outcome"):
        build_sof(outcomes, overrides=[Override("Mortalty", "imprecision", "serious", "typo")])
    no_acr = SofOutcome(EvidenceBody("SAE", outcomes[3].evidence.studies, EffectEstimate("RR", 0.8, 0.5, 1.2), 300))
    with pytest.raises(DataError, match="outcome 'SAE': binary outcome without a control risk"):
        build_sof([no_acr])
    los = outcomes[4]
    wrong = SofOutcome(los.evidence, continuous=ContinuousEffect(EffectEstimate("MD", -1.0, -2.0, 0.0)))
    with pytest.raises(DataError, match="continuous effect differs"):
        build_sof([wrong])
