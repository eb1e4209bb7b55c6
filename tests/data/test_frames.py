"""Loading and validation rules of long frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data import DataValidationError, load_frame, validate_frame

from .synthetic import long_frame


def test_load_long_csv_and_parquet_round_trip(tmp_path):
    df = long_frame()
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    for path in (tmp_path / "a.csv", tmp_path / "a.parquet"):
        clean, freq, _ = validate_frame(load_frame(path), min_length=1)
        assert freq == "h"
        np.testing.assert_allclose(clean["y"].to_numpy(), df["y"].to_numpy())
        assert list(clean["unique_id"].unique()) == ["s0", "s1"]


def test_load_renames_columns_and_names_single_series_after_file(tmp_path):
    df = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=5, freq="D"), "sales": np.arange(5.0)})
    df.to_csv(tmp_path / "shop.csv", index=False)
    frame = load_frame(tmp_path / "shop.csv", time_col="time", target_col="sales")
    assert list(frame.columns) == ["unique_id", "ds", "y"]
    assert set(frame["unique_id"]) == {"shop"}


def test_load_wide_csv_drops_edge_padding(tmp_path):
    wide = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=4, freq="D"),
        "a": [1.0, 2.0, 3.0, 4.0],
        "b": [np.nan, 5.0, 6.0, np.nan],
    })
    wide.to_csv(tmp_path / "wide.csv", index=False)
    frame = load_frame(tmp_path / "wide.csv", wide=True, time_col="date")
    clean, freq, _ = validate_frame(frame, min_length=2)
    assert freq == "D"
    assert clean.groupby("unique_id").size().to_dict() == {"a": 4, "b": 2}


def test_load_errors(tmp_path):
    pd.DataFrame({"t": [1], "y": [1.0]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataValidationError, match="'ds'"):
        load_frame(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="suffix"):
        load_frame(tmp_path / "x.txt")


def test_missing_column_is_named():
    with pytest.raises(DataValidationError, match="column 'y' is missing"):
        validate_frame(long_frame().drop(columns="y"), min_length=1)
    with pytest.raises(DataValidationError, match="column 'price' is missing"):
        validate_frame(long_frame(), min_length=1, futr_exog=["price"])


def test_non_numeric_y_names_series():
    df = long_frame()
    df["y"] = df["y"].astype(object)
    df.loc[45, "y"] = "oops"
    with pytest.raises(DataValidationError, match=r"column 'y' must be numeric: series 's1' has 'oops'"):
        validate_frame(df, min_length=1)


def test_duplicates_are_rejected():
    df = long_frame()
    df = pd.concat([df, df.iloc[[42]]])
    with pytest.raises(DataValidationError, match=r"series 's1' has duplicate rows"):
        validate_frame(df, min_length=1)


def test_irregular_spacing_names_series():
    df = long_frame().drop(index=60)
    with pytest.raises(DataValidationError, match=r"irregular spacing in series 's1'"):
        validate_frame(df, min_length=1)


def test_series_of_different_frequencies_are_irregular():
    df = pd.concat([long_frame((5,)), long_frame((5,), freq="D").assign(unique_id="d")])
    with pytest.raises(DataValidationError, match="irregular spacing"):
        validate_frame(df, min_length=1)


def test_no_inferable_frequency():
    df = pd.DataFrame({"unique_id": ["a", "b"], "ds": pd.to_datetime(["2024-01-01", "2024-01-02"]), "y": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match="no frequency can be inferred"):
        validate_frame(df, min_length=1)


def test_unsorted_input_is_sorted():
    df = long_frame()
    shuffled = df.sample(frac=1.0, random_state=1)
    clean, freq, _ = validate_frame(shuffled, min_length=1)
    assert freq == "h"
    pd.testing.assert_frame_equal(clean, validate_frame(df, min_length=1)[0])
    assert clean["ds"].is_monotonic_increasing is False  # two series, each sorted
    assert clean.groupby("unique_id")["ds"].apply(lambda s: s.is_monotonic_increasing).all()


def test_string_datetimes_are_parsed_and_ids_become_str():
    df = pd.DataFrame({"unique_id": 7, "ds": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], "y": 1.0})
    clean, freq, _ = validate_frame(df, min_length=4)
    assert freq == "MS"
    assert clean["ds"].dtype == "datetime64[ns]"
    assert clean["unique_id"].iloc[0] == "7"


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_unparseable_datetimes():
    df = pd.DataFrame({"unique_id": "a", "ds": ["monday", "tuesday"], "y": 1.0})
    with pytest.raises(DataValidationError, match="column 'ds' cannot be parsed"):
        validate_frame(df, min_length=1)


def test_integer_ds_frequency_is_the_step():
    clean, freq, _ = validate_frame(long_frame(integer=True), min_length=1)
    assert freq == 2
    assert clean["ds"].dtype == np.int64


def test_month_end_frequency_is_checked_per_step():
    df = long_frame((12, 6), freq="ME")
    assert validate_frame(df, min_length=1)[1] == "ME"
    with pytest.raises(DataValidationError, match=r"irregular spacing in series 's1'.*expected a step of ME"):
        validate_frame(df.drop(index=14), min_length=1)


def test_too_short_series_says_needed_and_has():
    with pytest.raises(DataValidationError, match=r"series 's0' has 40 points but at least 45 are needed \(rule\)"):
        validate_frame(long_frame(), min_length=45, length_rule="rule")


def test_nan_is_an_error_by_default():
    df = long_frame()
    df.loc[[3, 4], "y"] = np.nan
    df.loc[5, "y"] = np.inf
    with pytest.raises(DataValidationError, match=r"series 's0' has 3 NaN/inf values"):
        validate_frame(df, min_length=1)


@pytest.mark.parametrize(
    ("fill", "expected"), [("interpolate", [1.0, 1.0, 2.0, 3.0, 3.0]), ("ffill", [1.0, 1.0, 1.0, 3.0, 3.0])]
)
def test_fill_policies_fill_and_report(fill, expected):
    df = long_frame((5, 5))
    df.loc[:4, "y"] = [np.nan, 1.0, np.nan, 3.0, np.nan]
    clean, _, report = validate_frame(df, min_length=1, fill=fill)
    np.testing.assert_allclose(clean["y"].to_numpy()[:5], expected)
    assert report == {"s0": 3}
    assert not df["y"].notna().all()  # the input frame is left alone


def test_fill_policy_must_be_known():
    with pytest.raises(ValueError, match="fill must be"):
        validate_frame(long_frame(), min_length=1, fill="zero")


def test_static_columns_must_be_constant():
    df = long_frame().assign(size=lambda d: (d["unique_id"] == "s1") * 2.0)
    validate_frame(df, min_length=1, static_cols=["size"])
    df.loc[45, "size"] = 3.0
    with pytest.raises(DataValidationError, match=r"column 'size' \(static_cols\) must be constant.*'s1'"):
        validate_frame(df, min_length=1, static_cols=["size"])


def test_futr_exog_must_be_finite():
    df = long_frame().assign(price=1.0)
    df.loc[2, "price"] = np.nan
    with pytest.raises(DataValidationError, match=r"column 'price' \(futr_exog\): series 's0' has 1 NaN"):
        validate_frame(df, min_length=1, futr_exog=["price"])


@pytest.mark.parametrize("a,b,at,same", [
    ("h", "H", None, True), ("h", "60min", None, True), ("ME", "M", None, True),
    ("QS", "QS-JAN", None, True), ("MS", "MS", None, True), ("B", "B", None, True),
    ("30min", "30min", None, True), ("15min", "30min", None, False),
    ("7D", "W-SAT", None, False),  # in general, weekly on some weekday is not any 7 days
    ("7D", "W-SAT", ["2001-01-06", "2001-01-13"], True),  # ... but it is from Saturdays
    ("7D", "W-SAT", ["2001-01-07"], False),
    (1, 1, None, True), (1, "h", None, False),
])
def test_same_freq_compares_steps(a, b, at, same):
    from forecaster.data.frames import same_freq

    at = None if at is None else pd.to_datetime(at).to_numpy()
    assert same_freq(a, b, at=at) is same and same_freq(b, a, at=at) is same


def test_aware_ds_is_utc_and_mixed_with_naive_is_named():
    local = pd.date_range("2024-01-01 08:00", periods=4, freq="h", tz="+02:00")
    frame = pd.DataFrame({"unique_id": "a", "ds": [t.isoformat() for t in local], "y": 1.0})
    clean, freq, _ = validate_frame(frame, min_length=1)
    assert freq == "h" and list(clean["ds"].dt.hour) == [6, 7, 8, 9]
    frame.loc[3, "ds"] = "2024-01-01T11:00:00"
    with pytest.raises(DataValidationError, match="column 'ds' mixes time-zone-aware and naive"):
        validate_frame(frame, min_length=1)
