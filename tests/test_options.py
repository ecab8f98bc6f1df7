"""BinaryOptions: the one place that declares and validates the option vocabulary."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from mscmeta import BinaryOptions, DataError, meta_binary
from mscmeta.engine import options as O

BCG = pd.DataFrame({  # dat.bcg, first four trials (metafor)
    "study": ["1", "2", "3", "4"], "events_t": [4, 6, 3, 62], "n_t": [123, 306, 231, 13598],
    "events_c": [11, 29, 11, 248], "n_c": [139, 303, 220, 12867],
})


def test_aliases_become_canonical_values():
    opts = BinaryOptions(measure="odds ratio", method="mantel-haenszel", model="RE", tau2_method="reml",
                         zero_cell="Cochrane", level=95, pi_df="riley")
    assert (opts.measure, opts.method, opts.model, opts.tau2_method, opts.zero_cell, opts.level, opts.pi_df) == (
        "OR", "MH", "random", "REML", "revman", 0.95, "k-2")


def test_fixed_models_carry_no_tau2_estimator_and_random_ones_default_to_dl():
    assert BinaryOptions(tau2_method="REML").tau2_method is None
    assert BinaryOptions(model="random").tau2_method == "DL"


def test_peto_pairs_measure_and_method():
    assert (BinaryOptions(measure="PETO").method, BinaryOptions(method="Peto").measure) == ("Peto", "PETO")
    with pytest.raises(DataError, match="Peto's method pools odds ratios only"):
        BinaryOptions(measure="RR", method="Peto")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"measure": "HR"}, "unknown measure 'HR'; valid values: OR, RR, RD, PETO"),
    ({"model": "mixed"}, "unknown model 'mixed'; valid values: fixed, random"),
    ({"zero_cell": "add1"}, "unknown zero_cell 'add1'; valid values: revman, none, escalc"),
    ({"model": "random", "tau2_method": "XX"}, "unknown tau2 method 'XX'; valid values: DL, REML, PM, SJ, HE, ML, EB"),
    ({"hksj": True}, "Hartung-Knapp-Sidik-Jonkman adjustment applies to random-effects models"),
    ({"level": 150}, "level must be between 0 and 1"),
    ({"tol": 0}, "control tol must be a positive number"),
])
def test_invalid_options_are_named_with_the_valid_values(kwargs, fragment):
    with pytest.raises(DataError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        BinaryOptions(**kwargs)


def test_options_are_frozen_and_replace_validates_again():
    opts = BinaryOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.measure = "RR"  # type: ignore[misc]
    assert opts.replace(measure="rr").measure == "RR"
    with pytest.raises(DataError):
        opts.replace(measure="HR")


def test_rd_variance_follows_the_zero_cell_convention_after_replace():
    opts = BinaryOptions(measure="RD")
    assert opts.rd_variance_used == "greenland-robins"
    assert opts.replace(zero_cell="none").rd_variance_used == "sato"
    assert BinaryOptions(measure="RD", rd_variance="GR", zero_cell="none").rd_variance_used == "greenland-robins"


def test_meta_binary_takes_the_options_object_or_keywords_alike():
    by_keywords = meta_binary(BCG, measure="RR", method="IV", model="random", tau2_method="REML")
    by_object = meta_binary(BCG, options=BinaryOptions(measure="RR", method="IV", model="random", tau2_method="REML"))
    assert by_object.estimate == by_keywords.estimate and by_object.tau2 == by_keywords.tau2
    assert by_object.options == BinaryOptions(measure="RR", method="IV", model="random", tau2_method="REML")
    with pytest.raises(DataError, match="options must be a BinaryOptions"):
        meta_binary(BCG, options={"measure": "RR"})  # type: ignore[arg-type]


def test_the_vocabulary_tuples_are_the_engine_s():
    assert O.MH_MEASURES == ("OR", "RR", "RD") and set(O.MH_MEASURES) < set(O.MEASURES)
    assert set(O.TAU2_ALIASES.values()) == set(O.TAU2_METHODS)
    assert set(O.MEASURE_ALIASES.values()) == set(O.MEASURES)


def test_results_print_a_readable_summary_like_metafor():
    """print(result) shows the study rows, the pooled estimate and heterogeneity (metafor's print.rma)."""
    res = meta_binary(BCG, measure="OR", method="MH")
    text = str(res)
    assert text == res.summary_text()
    assert text.splitlines()[0].startswith("study") and "Pooled OR (fixed, MH, k = 4):" in text
    assert "Heterogeneity: Q = " in text and "Test for overall effect: z = " in text
