"""Calendar features, future time stamps and the feature spec."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.data import CALENDAR_FEATURES, FeatureSpec, calendar_features, future_timestamps


def test_calendar_features_are_in_range_and_hit_both_ends():
    ds = pd.date_range("2020-01-01", "2021-12-31 23:59", freq="17min")  # 2020 has ISO week 53
    names = list(CALENDAR_FEATURES)
    out = calendar_features(ds, names)
    assert out.dtype == np.float32 and out.shape == (len(ds), len(names))
    assert out.min() >= -0.5 and out.max() <= 0.5
    np.testing.assert_allclose(out.min(axis=0), -0.5)
    np.testing.assert_allclose(out.max(axis=0), 0.5)


def test_calendar_feature_values():
    ds = pd.DatetimeIndex(["2024-03-06 12:00"])  # a Wednesday, ISO week 10, day 66
    out = calendar_features(ds.to_numpy(), ["hour", "dayofweek", "dayofmonth", "dayofyear", "month", "weekofyear"])
    expected = [12 / 23, 2 / 6, 5 / 30, 65 / 365, 2 / 11, 9 / 52]
    np.testing.assert_allclose(out[0], np.array(expected) - 0.5, rtol=1e-6)


def test_calendar_features_errors_and_empty():
    assert calendar_features(np.arange(3), []).shape == (3, 0)
    with pytest.raises(ValueError, match="need datetime ds"):
        calendar_features(np.arange(3), ["hour"])
    with pytest.raises(ValueError, match="unknown calendar feature"):
        calendar_features(pd.date_range("2024", periods=3), ["season"])


@pytest.mark.parametrize(
    ("last", "freq", "expected"),
    [
        ("2024-01-01 22:00", "h", ["2024-01-01 23:00", "2024-01-02 00:00", "2024-01-02 01:00"]),
        ("2024-01-31", "ME", ["2024-02-29", "2024-03-31", "2024-04-30"]),
        ("2024-01-01", "MS", ["2024-02-01", "2024-03-01", "2024-04-01"]),
        ("2024-01-01", "7D", ["2024-01-08", "2024-01-15", "2024-01-22"]),
    ],
)
def test_future_timestamps(last, freq, expected):
    out = future_timestamps(pd.Timestamp(last), freq, 3)
    assert isinstance(out, pd.DatetimeIndex)
    pd.testing.assert_index_equal(out, pd.DatetimeIndex(expected).as_unit("ns"))


def test_future_timestamps_integer_index():
    np.testing.assert_array_equal(future_timestamps(10, 2, 3), [12, 14, 16])


def test_feature_spec_sizes_and_round_trip():
    spec = FeatureSpec(8, 4, calendar=["hour", "month"], futr_exog=["price"], static_cols=["size"], freq="h")
    assert (spec.n_features, spec.n_futr, spec.n_static) == (4, 3, 1)
    assert spec.calendar == ("hour", "month")
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    "kwargs",
    [{"input_size": 0, "horizon": 1}, {"input_size": 1, "horizon": 1, "calendar": ["season"]},
     {"input_size": 1, "horizon": 1, "scaler": "robust"}],
)
def test_feature_spec_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        FeatureSpec(**kwargs)
