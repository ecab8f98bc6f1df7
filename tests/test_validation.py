"""Input validation: every data mistake ends in one DataError naming file, study and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mscmeta.engine.binary import meta_binary
from mscmeta.engine.pooling import fixed_effect, random_effects
from mscmeta.engine.validation import DataError, check_level, validate_binary, validate_generic


def table(**overrides) -> pd.DataFrame:
    base = {
        "study": ["Alpha 2020", "Beta 2021", "Gamma 2021"],
        "events_t": [3, 5, 0],
        "n_t": [20, 30, 15],
        "events_c": [6, 9, 2],
        "n_c": [21, 29, 16],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_valid_table_is_returned_in_canonical_form():
    out = validate_binary(table())
    assert list(out.columns) == ["study", "events_t", "n_t", "events_c", "n_c"]
    assert out["study"].tolist() == ["Alpha 2020", "Beta 2021", "Gamma 2021"]
    assert all(out[c].dtype == np.int64 for c in ["events_t", "n_t", "events_c", "n_c"])
    assert out["events_c"].tolist() == [6, 9, 2]


def test_column_mapping_and_float_integers_accepted():
    df = table().rename(columns={"study": "study_id", "events_t": "events_msc", "n_t": "n_msc",
                                 "events_c": "events_control", "n_c": "n_control"})
    df["events_msc"] = df["events_msc"].astype(float)
    out = validate_binary(df, columns={"study": "study_id", "events_t": "events_msc", "n_t": "n_msc",
                                       "events_c": "events_control", "n_c": "n_control"})
    assert out["events_t"].tolist() == [3, 5, 0]


def test_string_cells_from_a_csv_are_parsed():
    df = table().astype(str)
    assert validate_binary(df)["n_t"].tolist() == [20, 30, 15]


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"events_t": [3, 31, 0]}, ["study 'Beta 2021' (row 2)", "column 'events_t'", "events (31) greater than the arm total n_t (30)"]),
        ({"events_c": [6, -1, 2]}, ["study 'Beta 2021'", "column 'events_c'", "negative count -1"]),
        ({"n_c": [21, 29.5, 16]}, ["study 'Beta 2021'", "column 'n_c'", "non-integer count"]),
        ({"n_t": [20, "thirty", 15]}, ["study 'Beta 2021'", "column 'n_t'", "non-numeric value 'thirty'"]),
        ({"events_t": [3, None, 0]}, ["study 'Beta 2021'", "column 'events_t'", "missing value"]),
        ({"events_t": [3, np.inf, 0]}, ["study 'Beta 2021'", "column 'events_t'", "non-finite"]),
        ({"n_t": [20, 0, 15], "events_t": [3, 0, 0]}, ["study 'Beta 2021'", "column 'n_t'", "arm total is 0"]),
        ({"study": ["Alpha 2020", "Alpha 2020", "Gamma 2021"]}, ["study 'Alpha 2020' (row 2)", "column 'study'", "duplicate study id (first used in row 1)"]),
        ({"study": ["Alpha 2020", None, "Gamma 2021"]}, ["row 2, column 'study'", "missing study id"]),
    ],
)
def test_each_problem_names_source_study_and_column(overrides, fragments):
    with pytest.raises(DataError) as err:
        validate_binary(table(**overrides), source="mortality.csv")
    message = str(err.value)
    assert message.startswith("mortality.csv: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_all_problems_are_listed_together():
    bad = table(events_t=[25, "x", 0], events_c=[6, 9, -2], study=["A", "A", "C"])
    with pytest.raises(DataError) as err:
        validate_binary(bad, source="f.csv")
    message = str(err.value)
    for fragment in ("duplicate study id", "non-numeric value 'x'", "negative count -2", "events (25) greater"):
        assert fragment in message


def test_missing_columns_are_named_with_mapping():
    with pytest.raises(DataError, match=r"f.csv: missing column\(s\) 'deaths_msc' \(for events_t\)"):
        validate_binary(table(), columns={"events_t": "deaths_msc"}, source="f.csv")
    with pytest.raises(DataError, match="missing column.*'n_c'"):
        validate_binary(table().drop(columns="n_c"))
    with pytest.raises(DataError, match="unknown key"):
        validate_binary(table(), columns={"deaths": "x"})


def test_empty_table_and_non_frame_are_refused():
    with pytest.raises(DataError, match="no studies"):
        validate_binary(table().iloc[:0])
    with pytest.raises(DataError, match="DataFrame"):
        validate_binary([[1, 2, 3, 4]])  # type: ignore[arg-type]


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"measure": "HR"}, "unknown measure 'HR'; valid values: OR, RR, RD, PETO"),
        ({"method": "GLMM"}, "unknown method 'GLMM'; valid values: MH, IV, Peto"),
        ({"model": "mixed"}, "unknown model 'mixed'; valid values: fixed, random"),
        ({"model": "random", "tau2_method": "HS"}, "unknown tau2 method 'HS'; valid values: DL, REML, PM, SJ, HE, ML, EB"),
        ({"zero_cell": "tacc"}, "unknown zero_cell 'tacc'; valid values: revman, none, escalc"),
        ({"level": 150}, "level must be between"),
        ({"level": 0}, "level must be between"),
        ({"hksj": True}, "applies to random-effects models"),
        ({"measure": "RR", "method": "Peto"}, "Peto's method pools odds ratios only"),
    ],
)
def test_unknown_option_values_list_valid_ones(kwargs, fragment):
    with pytest.raises(DataError) as err:
        meta_binary(table(), **kwargs)
    assert fragment in str(err.value)


def test_option_aliases_are_case_insensitive():
    # metafor spellings: method="EE"/"FE" for the common-effect model, "CA" for HE, "MP" for PM
    a = meta_binary(table(), measure="or", method="mh", model="FE")
    b = meta_binary(table(), measure="OR", method="MH", model="common")
    assert a.model == b.model == "fixed" and a.estimate == b.estimate
    c = meta_binary(table(), method="iv", model="RE", tau2_method="ca")
    assert c.tau2_method == "HE"


def test_too_few_studies_for_random_effects_is_refused():
    one = table().iloc[:1]
    with pytest.raises(DataError, match="random-effects model needs at least 2 studies"):
        meta_binary(one, method="IV", model="random")
    with pytest.raises(DataError, match="at least 2 studies"):
        random_effects([0.1], [0.2], ["only"])
    single = fixed_effect([0.1], [0.2], ["only"])
    assert single.k == 1 and single.estimate == 0.1 and np.isnan(single.Q_p)


def test_generic_validation():
    good = validate_generic(pd.DataFrame({"study": ["a", "b"], "yi": [0.1, -0.2], "vi": [0.01, 0.02]}))
    assert good["vi"].tolist() == [0.01, 0.02]
    with pytest.raises(DataError, match=r"study 'b' \(row 2\), column 'vi': sampling variance must be > 0"):
        validate_generic(pd.DataFrame({"study": ["a", "b"], "yi": [0.1, -0.2], "vi": [0.01, 0.0]}))
    with pytest.raises(DataError, match="yi has 2 values but vi has 1"):
        fixed_effect([0.1, 0.2], [0.1])


def test_level_accepts_fraction_or_percent():
    # metafor's convention (.level): values above 1 are percentages
    assert check_level(95) == 0.95
    assert check_level(0.9) == 0.9
    with pytest.raises(DataError):
        check_level("high")
