"""Frequencies and time zones: the service and the pyfunc path (``Forecaster.predict``) accept
the same timestamps, through the same parser and the same frequency comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data import FeatureSpec
from forecaster.serving.model import ServedModel
from forecaster.tracking.loading import ModelInfo
from tests.serving.conftest import toy_forecaster

# (the model's frequency, how the client's timestamps are spaced, their first stamp)
EQUIVALENT = [
    ("7D", "W-SAT", "2001-01-06"),  # the CO2 model and its own training dates
    ("W-SAT", "7D", "2001-01-06"),
    ("h", "h", "2024-01-01"),
    ("H", "h", "2024-01-01"),  # a model saved by an older pandas
    ("60min", "h", "2024-01-01"),
    ("h", "60min", "2024-01-01"),
    ("ME", "ME", "2020-01-31"),
    ("M", "ME", "2020-01-31"),
    ("MS", "MS", "2020-01-01"),
    ("QS", "QS", "2020-01-01"),
    ("QS", "QS-APR", "2020-04-01"),  # the same quarter starts, counted from April
    ("B", "B", "2024-01-03"),  # spans weekends: uneven steps
    ("30min", "30min", "2024-01-01"),
    ("15min", "15min", "2024-01-01"),
]
DIFFERENT = [
    ("W-SAT", "7D", "2001-01-07"),  # weekly, but on Sundays
    ("h", "30min", "2024-01-01"),
    ("MS", "ME", "2020-01-31"),
    ("B", "D", "2024-01-01"),  # daily over weekends
    ("15min", "30min", "2024-01-01"),
]


def _model(freq: str, calendar=()) -> ServedModel:
    spec = FeatureSpec(8, 4, calendar=calendar, freq=freq)
    return ServedModel(toy_forecaster(spec, known=["a"]), ModelInfo(uri="test"))


def _stamps(start: str, freq: str, n: int = 12, tz=None) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq=freq, tz=tz)


@pytest.mark.parametrize("model_freq,freq,start", EQUIVALENT,
                         ids=[f"{a}~{b}@{c}" for a, b, c in EQUIVALENT])
def test_equivalent_frequencies_are_accepted_on_both_paths(model_freq, freq, start):
    model = _model(model_freq)
    ds = _stamps(start, freq)
    values = np.random.default_rng(0).normal(5, 1, len(ds)).tolist()
    errors: list = []
    series = model.check_series("s", values, [t.isoformat() for t in ds], None, 4, (), errors)
    assert not errors, [e.msg for e in errors]
    expected = pd.date_range(ds[-1], periods=5, freq=freq)[1:]
    assert series.future_ds == [t.isoformat() for t in expected]
    served = model.predict([series])[0]  # [H, Q]
    pyfunc = model.forecaster.predict(pd.DataFrame({"unique_id": "s", "ds": ds, "y": values}))
    assert list(pyfunc["ds"]) == list(expected)
    np.testing.assert_array_equal(served[:, 1], pyfunc["y_hat"].to_numpy())


@pytest.mark.parametrize("model_freq,freq,start", DIFFERENT,
                         ids=[f"{a}!{b}@{c}" for a, b, c in DIFFERENT])
def test_other_frequencies_are_named_in_the_error(model_freq, freq, start):
    model = _model(model_freq)
    ds = _stamps(start, freq)
    errors: list = []
    model.check_series("s", [1.0] * len(ds), [t.isoformat() for t in ds], None, 4, (), errors)
    assert [e.loc for e in errors] == [("timestamps",)]
    assert f"the model's frequency {model.freq!r}" in errors[0].msg
    with pytest.raises(Exception, match="frequency|irregular"):
        model.forecaster.predict(pd.DataFrame({"unique_id": "s", "ds": ds, "y": 1.0}))


def test_aware_timestamps_are_utc_on_both_paths():
    """``+02:00`` stamps: the model reads their UTC hours on both paths (the hour feature of
    08:00+02:00 is 6), and the forecast's stamps come back in UTC."""
    model = _model("h", calendar=("hour",))
    local = _stamps("2024-01-01 08:00", "h", tz="+02:00")
    utc = local.tz_convert("UTC").tz_localize(None)
    values = np.random.default_rng(1).normal(5, 1, len(local)).tolist()
    errors: list = []
    aware = model.check_series("s", values, [t.isoformat() for t in local], None, 4, (), errors)
    naive_utc = model.check_series("s", values, [t.isoformat() for t in utc], None, 4, (), errors)
    wall = model.check_series("s", values, [t.strftime("%Y-%m-%dT%H:%M:%S") for t in local],
                              None, 4, (), errors)
    assert not errors
    assert aware.future_ds[0] == "2024-01-01T18:00:00+00:00" and naive_utc.future_ds[0] == \
        "2024-01-01T18:00:00"
    out = model.predict([aware, naive_utc, wall])  # [3, H, Q]
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])  # the hour feature matters: wall time differs
    pyfunc = model.forecaster.predict(pd.DataFrame({"unique_id": "s", "ds": local, "y": values}))
    np.testing.assert_array_equal(out[0][:, 1], pyfunc["y_hat"].to_numpy())
    assert pyfunc["ds"].iloc[0] == pd.Timestamp("2024-01-01 18:00")


def test_offsets_that_change_stay_evenly_spaced_and_naive_mixed_with_aware_is_named():
    model = _model("h", calendar=("hour",))
    # across the end of daylight saving in Berlin: +02:00 then +01:00, one hour apart in UTC
    berlin = _stamps("2024-10-27 00:00", "h", tz="Europe/Berlin")
    errors: list = []
    s = model.check_series("s", [1.0] * 12, [t.isoformat() for t in berlin], None, 4, (), errors)
    assert not errors and s.future_ds[0] == "2024-10-27T10:00:00+00:00"
    mixed = [t.isoformat() for t in berlin[:-1]] + ["2024-10-27T12:00:00"]
    model.check_series("s", [1.0] * 12, mixed, None, 4, (), errors)
    assert [e.loc for e in errors] == [("timestamps",)]
    assert "mixes time-zone-aware and naive" in errors[0].msg
