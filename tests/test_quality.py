"""Risk-of-bias assessments: overall-judgement algorithms, validation, the real data.

References for the algorithms:
* RoB 2 - Sterne JAC et al. BMJ 2019;366:l4898, overall risk-of-bias judgement ("Low risk of bias: the trial
  is judged to be at low risk of bias for all domains for this result"; "Some
  concerns: ... some concerns in at least one domain ..., but not to be at high risk
  of bias for any domain"; "High risk of bias: ... high risk of bias in at least one
  domain").
* ROBINS-I - Sterne JAC et al. BMJ 2016;355:i4919, interpretation of overall judgements (low: "low risk of bias for
  all domains"; moderate: "low or moderate risk of bias for all domains"; serious:
  "serious risk of bias in at least one domain, but not at critical risk of bias in
  any domain"; critical: "critical risk of bias in at least one domain"; no
  information: "no clear indication that the study is at serious or critical risk of
  bias and ... a lack of information in one or more key domains").
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mscmeta.bundle.paths import DATA_RAW
from mscmeta.engine.rob_tools import OVERALL, ROB2, ROBINS_I, overall_judgement, tool_spec
from mscmeta.review.quality import (
    check_coverage,
    concerns_markdown,
    context_markdown,
    count_by_overall,
    coverage_problems,
    high_risk_studies,
    judgement_table,
    load_study_weights,
    resolve_weights,
)
from mscmeta.review.rob_sheet import COLUMNS, RiskOfBiasError, check_overall, load_risk_of_bias, validate_risk_of_bias

NI = "no information"


def assessment(study: str, tool: str, judgements: list[str], overall: str | None = None) -> list[dict]:
    """Rows of one study's assessment; overall by the algorithm unless given."""
    spec = tool_spec(tool)
    rows = [
        dict(study_id=study, outcome="mortality", tool=spec.name, domain=code, domain_name=name, judgement=j,
             support="test support", source="https://doi.org/10.0000/test", source_level="primary paper", quote="")
        for (code, name), j in zip(spec.domains, judgements)
    ]
    rows.append(
        dict(study_id=study, outcome="mortality", tool=spec.name, domain=OVERALL, domain_name="Overall risk of bias",
             judgement=overall or overall_judgement(spec.name, judgements), support="test support",
             source="https://doi.org/10.0000/test", source_level="primary paper", quote="")
    )
    return rows


@pytest.fixture
def good() -> pd.DataFrame:
    rows = (
        assessment("rct_low", "RoB 2", ["low"] * 5)
        + assessment("rct_sc", "RoB 2", ["low", "some concerns", "low", "low", "some concerns"])
        + assessment("rct_high", "RoB 2", ["low", "low", "high", "low", "some concerns"])
        + assessment("nrs_mod", "ROBINS-I", ["moderate", "low", "low", "moderate", "low", "low", "low"])
        + assessment("nrs_ser", "ROBINS-I", ["serious", NI, "low", NI, "low", "low", "moderate"])
        + assessment("nrs_crit", "ROBINS-I", ["critical", "serious", "low", "low", "low", "low", "low"])
        + assessment("nrs_ni", "ROBINS-I", ["moderate", NI, "low", "low", "low", "low", "low"])
    )
    return pd.DataFrame(rows, columns=list(COLUMNS))


# --- RoB 2 algorithm (Sterne 2019) -----------------------------------------


def test_rob2_low_only_if_all_domains_low():
    assert overall_judgement("RoB 2", ["low"] * 5) == "low"


@pytest.mark.parametrize("position", range(5))
def test_rob2_high_if_any_domain_high(position):
    judgements = ["some concerns"] * 5
    judgements[position] = "high"
    assert overall_judgement("RoB 2", judgements) == "high"


def test_rob2_some_concerns_if_some_concerns_and_no_high():
    assert overall_judgement("RoB 2", ["low", "low", "some concerns", "low", "low"]) == "some concerns"
    # The mechanical rule does not escalate many "some concerns" to "high" (that is a reviewer's call).
    assert overall_judgement("RoB 2", ["some concerns"] * 5) == "some concerns"


def test_rob2_mapping_equals_sequence():
    seq = ["low", "high", "low", "some concerns", "low"]
    assert overall_judgement("RoB 2", dict(zip(ROB2.domain_codes, seq))) == overall_judgement("RoB 2", seq) == "high"


def test_rob2_refuses_incomplete_or_foreign_judgements():
    with pytest.raises(ValueError, match="expected 5"):
        overall_judgement("RoB 2", ["low"] * 4)
    with pytest.raises(ValueError, match="missing judgement for domain.*D5"):
        overall_judgement("RoB 2", {"D1": "low", "D2": "low", "D3": "low", "D4": "low"})
    with pytest.raises(ValueError, match="'moderate' is not on the RoB 2 scale"):
        overall_judgement("RoB 2", ["low", "moderate", "low", "low", "low"])
    with pytest.raises(ValueError, match="unknown domain"):
        overall_judgement("RoB 2", {**dict.fromkeys(ROB2.domain_codes, "low"), "D6": "low"})
    with pytest.raises(ValueError, match="unknown risk-of-bias tool"):
        overall_judgement("RoB 1", ["low"] * 5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ROB2.scale), min_size=5, max_size=5))
def test_rob2_overall_is_worst_domain(judgements):
    assert overall_judgement("RoB 2", judgements) == max(judgements, key=ROB2.scale.index)


# --- ROBINS-I algorithm (Sterne 2016) ---------------------------------------


@pytest.mark.parametrize(
    ("judgements", "expected"),
    [
        (["low"] * 7, "low"),
        (["low", "moderate", "low", "low", "moderate", "low", "low"], "moderate"),
        (["moderate", "serious", "low", "low", "low", "low", "low"], "serious"),
        (["serious", "serious", "low", "critical", "low", "low", "moderate"], "critical"),
        (["low", "low", "low", "low", NI, "low", "low"], NI),
        (["moderate", NI, "low", "low", "low", "low", "low"], NI),
        (["serious", NI, "low", NI, "low", "low", "low"], "serious"),
        (["low", NI, "critical", "low", "low", "low", "low"], "critical"),
        ([NI] * 7, NI),
    ],
)
def test_robins_i_most_severe_domain(judgements, expected):
    assert overall_judgement("ROBINS-I", judgements) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ROBINS_I.judgements), min_size=7, max_size=7))
def test_robins_i_overall_properties(judgements):
    overall = overall_judgement("ROBINS-I", judgements)
    rated = [j for j in judgements if j != NI]
    worst = max(rated, key=ROBINS_I.scale.index) if rated else None
    if worst in ("serious", "critical"):
        assert overall == worst
    elif NI in judgements:
        assert overall == NI
    else:
        assert overall == worst
    # Never milder than any rated domain.
    if overall != NI:
        assert all(ROBINS_I.scale.index(overall) >= ROBINS_I.scale.index(j) for j in rated)


def test_tool_aliases():
    assert tool_spec("rob2") is ROB2 and tool_spec("ROBINS-I") is ROBINS_I and tool_spec("robins-i") is ROBINS_I


# --- validation -----------------------------------------------------------------------


def test_good_assessments_validate_and_sort(good):
    out = validate_risk_of_bias(good.sample(frac=1, random_state=3))
    assert list(out.columns) == list(COLUMNS)
    first = out[out.study_id == "nrs_crit"]["domain"].tolist()
    assert first == [*ROBINS_I.domain_codes, OVERALL]
    assert check_overall(out)["consistent"].all()


def _problems(df) -> list[str]:
    with pytest.raises(RiskOfBiasError) as info:
        validate_risk_of_bias(df, source="risk_of_bias.csv")
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("risk_of_bias.csv:")
    return info.value.problems


def test_unknown_domain_names_study_and_domain(good):
    bad = good.copy()
    i = bad.index[(bad.study_id == "rct_sc") & (bad.domain == "D5")][0]
    bad.loc[i, "domain"] = "D6"
    problems = _problems(bad)
    assert any("study rct_sc" in p and "domain D6" in p and "unknown RoB 2 domain 'D6'" in p for p in problems)
    # ... and the now-missing D5 is reported too, in the same error.
    assert any("study rct_sc" in p and "domain D5" in p and "missing" in p for p in problems)


def test_unknown_judgement_names_study_domain_and_value(good):
    bad = good.copy()
    i = bad.index[(bad.study_id == "nrs_mod") & (bad.domain == "D3")][0]
    bad.loc[i, "judgement"] = "unclear"
    problems = _problems(bad)
    assert any(
        "study nrs_mod" in p and "domain D3" in p and "'unclear'" in p and "ROBINS-I scale" in p for p in problems
    )


def test_judgement_of_the_other_tool_is_refused(good):
    bad = good.copy()
    i = bad.index[(bad.study_id == "rct_low") & (bad.domain == "D2")][0]
    bad.loc[i, "judgement"] = "moderate"
    problems = _problems(bad)
    assert any("study rct_low" in p and "domain D2" in p and "'moderate'" in p for p in problems)


def test_missing_overall_names_study(good):
    bad = good[~((good.study_id == "nrs_ser") & (good.domain == OVERALL))]
    problems = _problems(bad)
    assert problems == ["study nrs_ser (mortality), domain Overall: missing row for the overall judgement (domain 'Overall')"]


def test_overall_inconsistent_with_algorithm(good):
    bad = good.copy()
    i = bad.index[(bad.study_id == "rct_high") & (bad.domain == OVERALL)][0]
    bad.loc[i, "judgement"] = "some concerns"
    problems = _problems(bad)
    assert len(problems) == 1
    assert "study rct_high" in problems[0] and "domain Overall" in problems[0]
    assert "'some concerns'" in problems[0] and "gives 'high'" in problems[0]
    assert f"line {i + 2}" in problems[0]


def test_all_problems_reported_at_once(good):
    bad = good.copy()
    bad.loc[bad.index[(bad.study_id == "rct_low") & (bad.domain == "D1")][0], "judgement"] = "Low"
    bad.loc[bad.index[(bad.study_id == "nrs_mod") & (bad.domain == "D7")][0], "support"] = ""
    bad.loc[bad.index[(bad.study_id == "nrs_crit") & (bad.domain == "D2")][0], "domain_name"] = "Selection bias"
    bad.loc[bad.index[(bad.study_id == "rct_sc") & (bad.domain == "D4")][0], "source_level"] = "secondary"
    bad.loc[bad.index[(bad.study_id == "nrs_ni") & (bad.domain == "D5")][0], "source"] = "the paper"
    problems = _problems(bad)
    assert len(problems) == 5
    assert any("nrs_ni" in p and "D5" in p and "'the paper' must start with a URL or a DOI" in p for p in problems)
    assert any("rct_low" in p and "D1" in p and "'Low'" in p for p in problems)
    assert any("nrs_mod" in p and "D7" in p and "'support' is empty" in p for p in problems)
    assert any("nrs_crit" in p and "D2" in p and "domain_name 'Selection bias'" in p for p in problems)
    assert any("rct_sc" in p and "D4" in p and "'secondary'" in p for p in problems)


def test_duplicate_domain_and_two_tools(good):
    dup = pd.concat([good, good[(good.study_id == "rct_low") & (good.domain == "D3")]], ignore_index=True)
    assert any("study rct_low" in p and "domain D3: 2 rows" in p for p in _problems(dup))
    mixed = pd.concat(
        [good, pd.DataFrame(assessment("rct_low", "ROBINS-I", ["low"] * 7))], ignore_index=True
    )
    assert any("study rct_low" in p and "more than one tool" in p for p in _problems(mixed))


def test_missing_columns_and_file_name(good, tmp_path):
    assert "missing column(s): quote" in _problems(good.drop(columns="quote"))[0]
    bad = good.copy()
    bad.loc[0, "tool"] = "RoB 1"
    path = tmp_path / "risk_of_bias.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(RiskOfBiasError, match=str(path).replace("\\", "\\\\")) as info:
        load_risk_of_bias(path)
    assert any("line 2" in p and "study rct_low" in p and "unknown tool 'RoB 1'" in p for p in info.value.problems)


def test_leading_spaces_are_an_error(good):
    bad = good.copy()
    bad.loc[3, "judgement"] = "low "
    assert any("leading/trailing spaces" in p for p in _problems(bad))


# --- derived tables -------------------------------------------------------------------


def test_high_risk_studies(good):
    # RoB 2 "high" and ROBINS-I "serious"/"critical" count; "no information" does not.
    assert high_risk_studies(validate_risk_of_bias(good)) == {"rct_high", "nrs_ser", "nrs_crit"}


def test_counts_and_tables(good):
    df = validate_risk_of_bias(good)
    counts = count_by_overall(df).set_index(["tool", "overall"])["studies"]
    assert counts[("RoB 2", "low")] == 1 and counts[("RoB 2", "high")] == 1
    assert counts[("ROBINS-I", NI)] == 1 and counts[("ROBINS-I", "critical")] == 1
    wide = judgement_table(df, "RoB 2")
    assert list(wide.columns) == ["study_id", *ROB2.domain_codes, OVERALL]
    assert wide.set_index("study_id").loc["rct_high", "D3"] == "high"
    text = concerns_markdown(df)
    assert "**RoB 2** (3 randomised trials): overall 1 low, 1 some concerns and 1 high." in text
    assert "3 studies: nrs_crit, nrs_ser and rct_high" in text


def test_load_study_weights(tmp_path):
    path = tmp_path / "w.csv"
    pd.DataFrame({"study_id": ["a", "b"], "weight": [60.0, 40.0], "events": [1, 2]}).to_csv(path, index=False)
    assert load_study_weights(path).to_dict() == {"a": 60.0, "b": 40.0}
    pd.DataFrame({"study_id": ["a", "b"], "weight_fixed": [1, 2], "weight_random": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="cannot tell which column"):
        load_study_weights(path)
    assert load_study_weights(path, column="weight_random").to_dict() == {"a": 1.0, "b": 2.0}
    pd.DataFrame({"study_id": ["a", "b"], "weight": [100.0, None]}).to_csv(path, index=False)
    assert load_study_weights(path).to_dict() == {"a": 100.0, "b": 0.0}  # empty = not estimable, no weight
    pd.DataFrame({"study_id": ["a", "b"], "weight": [1, -2]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=f"{path}.*negative for study b"):
        load_study_weights(path)


# --- the project's own assessments ------------------------------------------------------

REAL = DATA_RAW / "risk_of_bias.csv"
STUDIES = DATA_RAW / "studies.csv"


def test_real_assessments_validate():
    df = load_risk_of_bias(REAL)
    assert check_overall(df)["consistent"].all()
    # Every judgement carries a source with a DOI or URL.
    assert df["source"].str.contains(r"https?://|doi\.org|10\.\d{4,}/", regex=True).all()


def test_every_included_study_is_assessed_with_the_tool_for_its_design():
    if not STUDIES.exists():
        pytest.fail(f"{STUDIES} is missing: the list of included studies comes from the data stage")
    rob = load_risk_of_bias(REAL)
    studies = pd.read_csv(STUDIES, dtype=str, keep_default_na=False)
    assert coverage_problems(rob, studies) == []


def test_coverage_problems_are_named():
    rob = validate_risk_of_bias(
        pd.DataFrame(assessment("a2020", "RoB 2", ["low"] * 5) + assessment("b2020", "RoB 2", ["low"] * 5))
    )
    studies = pd.DataFrame(
        {
            "study_id": ["a2020", "b2020", "c2020", "d2020", "e2020"],
            "decision": ["included", "scenario", "included", "excluded", "included"],
            "design": ["RCT", "prospective cohort", "non-randomised controlled", "RCT", "single-arm"],
        }
    )
    assert coverage_problems(rob, studies) == [
        "study b2020: design 'prospective cohort' calls for ROBINS-I, assessed with RoB 2",
        "study c2020 (included, non-randomised controlled): no risk-of-bias assessment",
    ]
    with pytest.raises(RiskOfBiasError, match="c2020"):
        check_coverage(rob, studies[studies.study_id != "b2020"])
    assert coverage_problems(rob, studies[studies.study_id != "a2020"]) == [
        "study a2020: assessed but not in studies.csv",
        "study b2020: design 'prospective cohort' calls for ROBINS-I, assessed with RoB 2",
        "study c2020 (included, non-randomised controlled): no risk-of-bias assessment",
    ]


def test_resolve_weights(tmp_path):
    from conftest import FIXTURE_DATA
    from mscmeta.review.scenarios import analysis_mortality
    from mscmeta.review.sheets import load_raw

    raw = load_raw(FIXTURE_DATA)
    weights, note = resolve_weights("", raw, "primary")
    assert "weighted" in note and "Mantel" in note
    assert set(weights.index) == set(analysis_mortality(raw, "primary")["study_id"])
    assert weights.sum() == pytest.approx(100.0)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        resolve_weights(tmp_path / "nope.csv", raw)
    pd.DataFrame({"study_id": ["a", "b"], "weight": [75.0, 25.0]}).to_csv(tmp_path / "w.csv", index=False)
    weights, note = resolve_weights(tmp_path / "w.csv", raw)
    assert weights.to_dict() == {"a": 75.0, "b": 25.0} and "weighted" in note


def test_context_markdown_counts_from_the_data(good):
    df = validate_risk_of_bias(good)
    studies = pd.DataFrame(
        {
            "study_id": ["rct_low", "rct_sc", "rct_high", "nrs_mod", "nrs_ser", "nrs_crit", "nrs_ni", "other"],
            "label": ["A", "B", "C", "D", "E", "F", "G", "H"],
            "blinding": ["double-blind"] * 3 + ["open-label", "not reported", "open-label", "double-blind", "open-label"],
            "n_msc": ["10", "20", "30", "5", "40", "12", "7", "100"],
            "n_control": ["10", "20", "30", "5", "40", "12", "7", "100"],
        }
    )
    mortality = pd.DataFrame(
        {
            "study_id": ["rct_low", "nrs_ser", "nrs_mod", "rct_sc"],
            "source_level": ["primary paper", "derived", "later review", "primary paper"],
            "derived": [False, False, False, True],
        }
    )
    text = context_markdown(df, studies, mortality)
    assert "3 of 7 assessed studies were open-label or did not report blinding (D, E and F)" in text
    assert "4 of 7 studies compared MSC recipients" in text and "2 of them are at serious or critical" in text
    assert "median 24 (range 10-80); 5 of 7 studies had fewer than 50" in text
    assert "3 of 4 studies in the mortality analysis have counts derived" in text
    assert "B (derived), D (later review) and E (derived)" in text
    assert "not available" in context_markdown(df, studies, None)


def test_summary_plot_weights_follow_the_primary_analysis_parameters():
    """Stage 02 weights its summary plots by the primary analysis of the same parameters as
    stage 03 (issue: they were fixed to OR/MH/fixed/revman whatever MEASURE or ZERO_CELL said)."""
    from conftest import FIXTURE_DATA
    from mscmeta.engine.binary import meta_binary
    from mscmeta.review.scenarios import analysis_mortality
    from mscmeta.review.sheets import ARM_COLUMNS, load_raw

    raw = load_raw(FIXTURE_DATA)
    rows = analysis_mortality(raw, "primary")
    for params in ({"measure": "RR"}, {"measure": "RD"}, {"zero_cell": "none"}, {"model": "random", "tau2_method": "DL"}):
        weights, note = resolve_weights("", raw, "primary", **params)
        kwargs = {"measure": "OR", "method": "MH", "model": "fixed", "zero_cell": "revman", **params}
        expected = meta_binary(rows, columns=ARM_COLUMNS, **kwargs).studies.set_index("study")["weight"].fillna(0.0)
        assert weights.to_dict() == pytest.approx(expected.to_dict()), params
    rr, _ = resolve_weights("", raw, "primary", measure="RR")
    orr, note = resolve_weights("", raw, "primary")
    assert rr.to_dict() != pytest.approx(orr.to_dict())
    assert "Mantel–Haenszel random-effects" in resolve_weights("", raw, "primary", model="random")[1]


# --- JBI case-series checklist (single-arm studies; no overall algorithm) ----------------------


def jbi_rows(study: str, answers: list[str]) -> list[dict]:
    spec = tool_spec("jbi")
    return [
        dict(study_id=study, outcome="case series (descriptive)", tool=spec.name, domain=code, domain_name=name,
             judgement=j, support="test support", source="https://doi.org/10.0000/test", source_level="primary paper",
             quote="")
        for (code, name), j in zip(spec.domains, answers)
    ]


def test_jbi_case_series_validates_without_an_overall_row(good):
    jbi = pd.DataFrame(jbi_rows("single_arm", ["yes", "no", "unclear", "not applicable"] + ["unclear"] * 6))
    df = validate_risk_of_bias(pd.concat([good, jbi], ignore_index=True))
    assert (df["tool"] == "JBI case series").sum() == 10
    assert df.loc[df["tool"] == "JBI case series", "domain"].tolist() == [f"Q{i}" for i in range(1, 11)]
    # A JBI appraisal has no overall judgement, is never high risk and is not counted per overall category.
    assert "single_arm" not in high_risk_studies(df) and "single_arm" not in set(check_overall(df)["study_id"])
    assert set(count_by_overall(df)["tool"]) == {"RoB 2", "ROBINS-I"}
    assert list(judgement_table(df, "JBI case series").columns) == ["study_id", *[f"Q{i}" for i in range(1, 11)]]
    with pytest.raises(ValueError, match="no overall judgement"):
        overall_judgement("JBI case series", ["yes"] * 10)


def test_jbi_rejects_overall_rows_missing_items_and_risk_of_bias_words():
    rows = jbi_rows("single_arm", ["yes"] * 10)
    rows[0]["judgement"] = "low"
    rows = rows[:-1] + [dict(rows[1], domain=OVERALL, domain_name="Overall risk of bias")]
    with pytest.raises(RiskOfBiasError) as info:
        validate_risk_of_bias(pd.DataFrame(rows))
    text = str(info.value)
    assert "'low' is not on the JBI case series scale" in text
    assert "unknown JBI case series domain 'Overall'" in text
    assert "missing row for the JBI case series domain Q10" in text


def test_coverage_requires_assessments_only_for_studies_with_located_deaths():
    rob = validate_risk_of_bias(pd.DataFrame(assessment("a2020", "RoB 2", ["low"] * 5)))
    studies = pd.DataFrame(
        {
            "study_id": ["a2020", "b2022", "c2023"],
            "decision": ["included", "scenario", "scenario"],
            "design": ["RCT", "RCT", "non-randomised controlled"],
            "mortality_data": ["reported", "not located", "reported"],
        }
    )
    assert coverage_problems(rob, studies) == ["study c2023 (scenario, non-randomised controlled): no risk-of-bias assessment"]
