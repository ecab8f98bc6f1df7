"""Reproduction scorecard: the status rule, reading published values, explanations, what-would-it-take."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mscmeta.plots import intervals as I
from mscmeta.review import figures as F
from mscmeta.review import inputs as IN
from mscmeta.review import mortality as M
from mscmeta.review import sensitivity as SE
from mscmeta.review import subgroup as G
from mscmeta.review import scorecard as S
from mscmeta.review.csvsheet import DataValidationError
from mscmeta.review.sheets import decimals_of, load_raw

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "data_small"


# ---------------------------------------------------------------- decimals and status rule


@pytest.mark.parametrize(("text", "decimals"), [("0.61", 2), ("0.50", 2), (".998", 3), ("13", 0), ("1.2e-3", 4), ("", None)])
def test_decimals_are_read_from_the_printed_number(text, decimals):
    assert decimals_of(text) == decimals


def test_status_match_means_rounding_to_the_published_decimals():
    # crafted values: 0.6249 rounds to a printed 0.62 (two decimals) → match; 0.626 does not
    assert S.status("ratio", [(0.6249, 0.62, 2), (0.4249, 0.42, 2), (0.9351, 0.94, 2)]) == "match"
    assert S.status("ratio", [(0.626, 0.62, 2), (0.42, 0.42, 2), (0.94, 0.94, 2)]) == "close"


def test_status_close_is_within_the_log_threshold_for_every_limit():
    pub = (0.62, 0.42, 0.94)
    near = tuple(p * math.exp(0.09) for p in pub)
    far_upper = (0.62, 0.42, 0.94 * math.exp(0.2))
    assert S.status("ratio", list(zip(near, pub, (2, 2, 2), strict=True))) == "close"
    assert S.status("ratio", list(zip(far_upper, pub, (2, 2, 2), strict=True))) == "differs"
    assert S.status("ratio", [(0.19, 0.62, 2), (0.09, 0.42, 2), (0.40, 0.94, 2)]) == "differs"


def test_status_for_p_values_and_counts():
    assert S.status("p", [(0.9973, 0.997, 3)]) == "match"
    assert S.status("p", [(0.987, 0.998, 3)]) == "close"
    assert S.status("p", [(0.04, 0.06, 2)]) == "differs"  # different side of 0.05
    assert S.status("count", [(13, 13, 0)]) == "match"
    assert S.status("count", [(12, 13, 0)]) == "close"
    assert S.status("count", [(10, 8, 0)]) == "differs"


def test_status_without_our_value_is_not_computed():
    assert S.status("ratio", [(np.nan, 0.62, 2)]) == "not computed"
    assert S.status("ratio", [(0.5, np.nan, None)]) == "not computed"


def _published_sheet(tmp_path, rows: list[dict]) -> Path:
    """A copy of the fixture data whose published_results.csv has *rows* changed (by quantity/subgroup)."""
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURE, raw)
    table = pd.read_csv(raw / "published_results.csv", dtype=str, keep_default_na=False)
    for row in rows:
        hit = (table["quantity"] == row["quantity"]) & (table["subgroup"] == row["subgroup"])
        for column, value in row.items():
            table.loc[hit, column] = value
    table.to_csv(raw / "published_results.csv", index=False)
    return raw


def test_published_values_keep_their_printed_decimals_and_bad_numbers_are_named(tmp_path):
    raw = _published_sheet(tmp_path, [{"quantity": "mortality_or", "subgroup": "overall", "estimate": "0.50", "ci_low": "0.3"}])
    pub = load_raw(raw).published_results.set_index(["quantity", "subgroup"])
    assert pub.loc[("mortality_or", "overall"), "estimate_decimals"] == 2
    assert pub.loc[("mortality_or", "overall"), "ci_low_decimals"] == 1
    assert pub.loc[("mortality_or", "overall"), "estimate"] == pytest.approx(0.5)
    bad = _published_sheet(tmp_path / "bad", [{"quantity": "mortality_or", "subgroup": "overall", "estimate": "0.5x"}])
    with pytest.raises(DataValidationError) as info:
        load_raw(bad)
    text = str(info.value)
    assert "published_results.csv, line " in text and "column estimate" in text and "0.5x" in text


# ---------------------------------------------------------------- scorecard on the fixture data


@pytest.fixture(scope="module")
def fixture_run():
    inputs = IN.load_inputs(str(FIXTURE), "/nonexistent-tables", "primary")
    specs = M.main_specs()
    results = M.main_analyses(inputs.data, specs)
    return inputs, specs, results


def test_scorecard_has_one_row_per_published_quantity_with_specific_explanations(fixture_run):
    inputs, specs, results = fixture_run
    card = S.scorecard_for(inputs, results, specs[0].options)
    assert list(card.columns) == list(S.SCORECARD_COLUMNS)
    assert len(card) == len(inputs.published)
    overall = card[(card["quantity"] == "mortality_or") & (card["subgroup"] == "overall")].iloc[0]
    primary = results["primary"]
    assert overall["reproduced_estimate"] == pytest.approx(math.exp(primary.estimate))
    labels = M.labels_of(inputs.data)
    for study in inputs.data["study_id"]:
        assert labels[study] in overall["explanation"]  # names every pooled study
    assert "derived" in overall["explanation"] or "later review" in overall["explanation"]
    assert "MH exact" in overall["explanation"]  # the other conventions on the same studies
    assert set(card["status"]) <= {"match", "close", "differs", "not computed"}
    counts = card[card["quantity"] == "studies"].iloc[0]
    assert counts["reproduced_estimate"] == inputs.raw.scenarios.query("scenario == 'primary'").shape[0]


def test_scorecard_does_not_compare_an_or_with_our_rr(fixture_run):
    inputs, _, _ = fixture_run
    specs = M.main_specs("RR")
    results = M.main_analyses(inputs.data, specs)
    card = S.scorecard_for(inputs, results, specs[0].options)
    rows = card[card["quantity"] == "mortality_or"]
    assert (rows["status"] == "not computed").all()
    assert rows["explanation"].str.contains("published as OR; this run pools RR").all()


def test_scorecard_markdown_tallies_every_row(fixture_run):
    inputs, specs, results = fixture_run
    card = S.scorecard_for(inputs, results, specs[0].options)
    text = S.scorecard_markdown(card)
    tally = card["status"].value_counts()
    assert f"**{int(tally.get('differs', 0))} differs**" in text
    assert f"(of {len(card)} published quantities)" in text


def test_what_would_it_take_tries_every_single_change_and_a_greedy_path(fixture_run):
    inputs, specs, _ = fixture_run
    table, findings = S.what_would_it_take(inputs.raw, "primary", specs[0].options, inputs.published)
    assert table.iloc[0]["kind"] == "baseline"
    singles = table[table["step"] == 1]
    included = set(inputs.data["study_id"])
    assert {f"drop {M.labels_of(inputs.data)[s]}" for s in included} <= set(singles["change"])
    # every reading in mortality.csv of a study not used is tried (swap or add)
    used = set(inputs.data["row_id"])
    others = set(inputs.raw.mortality["row_id"]) - used
    tried = " ".join(singles["change"])
    assert all(f"({row})" in tried for row in others)
    greedy = table[table["kind"] == "greedy"]
    assert (np.diff(np.r_[table.iloc[0]["distance"], greedy["distance"].to_numpy()]) < 0).all()
    pub = inputs.published.query("quantity == 'mortality_or' and subgroup == 'overall'").iloc[0]
    assert f"{pub['estimate']:.2f} [{pub['ci_low']:.2f}, {pub['ci_high']:.2f}]" in findings
    assert "not analyses to adopt" in findings


def test_log_distance_is_zero_only_at_the_target():
    target = (0.62, 0.42, 0.94)
    assert S.log_distance(*target, target) == 0.0
    assert S.log_distance(0.62, 0.42, 0.94 * math.e, target) == pytest.approx(math.sqrt(1 / 3))
    assert np.isnan(S.log_distance(np.nan, 0.3, 0.8, target))


def test_missing_published_file_gives_a_note_row(fixture_run):
    inputs, specs, results = fixture_run
    from dataclasses import replace

    card = S.scorecard_for(replace(inputs, published=None), results, specs[0].options)
    assert card.iloc[0]["status"] == "not computed" and "no published values" in card.iloc[0]["explanation"]


def test_scorecard_does_not_compare_the_papers_p_values_with_an_rr_analysis(fixture_run):
    inputs, _, _ = fixture_run
    specs = M.main_specs("RR")
    results = M.main_analyses(inputs.data, specs)
    card = S.scorecard_for(inputs, results, specs[0].options)
    het = card[card["quantity"] == "heterogeneity_p"]
    assert len(het) and (het["status"] == "not computed").all()
    assert het["explanation"].str.contains("belongs to the paper's OR analysis; this run pools RR").all()


def test_headline_states_ours_beside_the_published_value_and_why(fixture_run):
    inputs, specs, results = fixture_run
    card = S.scorecard_for(inputs, results, specs[0].options)
    pooled = M.pooled_table(results, specs, inputs.data, "primary")
    wwit, _ = S.what_would_it_take(inputs.raw, "primary", specs[0].options, inputs.published)
    head = S.headline_table(card, pooled, wwit, inputs.published, "set").iloc[0]
    assert head["estimate"] == pytest.approx(math.exp(results["primary"].estimate))
    published = inputs.published.query("quantity == 'mortality_or' and subgroup == 'overall'").iloc[0]
    assert head["published_estimate"] == published["estimate"] and "news summary" in head["published_source"]
    assert head["status"] == card.query("quantity == 'mortality_or' and subgroup == 'overall'").iloc[0]["status"]
    assert "single changes" in head["why"] and head["measure_name"] == "odds ratio"
    rr = M.main_specs("RR")
    rr_results = M.main_analyses(inputs.data, rr)
    rr_head = S.headline_table(S.scorecard_for(inputs, rr_results, rr[0].options),
                               M.pooled_table(rr_results, rr, inputs.data, "primary"), wwit, inputs.published).iloc[0]
    assert rr_head["verdict"] == "Not compared:" and "risk ratio" in rr_head["why"]
