"""Frequencies and time zones: a request names the time of its last value (``last_timestamp``),
and the service reads it as the pyfunc path (``Forecaster.predict``) reads the same history with
a ``ds`` column: the same parser, the same frequency, the same forecast and timestamps."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecaster.data import FeatureSpec
from forecaster.serving.model import ServedModel
from forecaster.serving.schemas import ForecastRequest, client_errors
from forecaster.tracking.loading import ModelInfo
from tests.serving.conftest import toy_forecaster

# (the model's frequency, how the client's history is spaced, its first stamp)
EQUIVALENT = [
    ("7D", "W-SAT", "2001-01-06"),  # the CO2 model and its own training dates
    ("W-SAT", "7D", "2001-01-06"),
    ("h", "h", "2024-01-01"),
    ("H", "h", "2024-01-01"),  # a model saved by an older pandas
    ("60min", "h", "2024-01-01"),
    ("ME", "ME", "2020-01-31"),
    ("M", "ME", "2020-01-31"),
    ("MS", "MS", "2020-01-01"),
    ("QS", "QS", "2020-01-01"),
    ("QS", "QS-APR", "2020-04-01"),  # the same quarter starts, counted from April
    ("B", "B", "2024-01-03"),  # spans weekends: uneven steps
    ("30min", "30min", "2024-01-01"),
    ("15min", "15min", "2024-01-01"),
]
# (the model's frequency, a last_timestamp between two of its steps, the step it names)
BETWEEN = [
    ("W-SAT", "2001-01-03", "2001-01-06"),  # a Wednesday: its week ends on Saturday the 6th
    ("ME", "2020-02-10", "2020-02-29"),
    ("MS", "2020-01-15T10:00:00", "2020-01-01T10:00:00"),
    ("QS", "2020-02-15", "2020-01-01"),
    ("B", "2024-01-06", "2024-01-05"),  # a Saturday: Friday's value
]


def _model(freq: str, calendar=()) -> ServedModel:
    spec = FeatureSpec(8, 4, calendar=calendar, freq=freq)
    return ServedModel(toy_forecaster(spec, known=["a"]), ModelInfo(uri="test"))


def _both_paths(model, values, last: str, ds) -> tuple[list[str], np.ndarray, pd.DataFrame]:
    """The service's forecast stamps and median for ``last_timestamp=last``, and the pyfunc
    model's forecast of the same values stamped ``ds``."""
    errors: list = []
    series = model.check_series("s", values, last, None, None, 4, (), errors)
    assert not errors, [e.msg for e in errors]
    served = model.predict([series])[0]  # [H, Q]
    pyfunc = model.forecaster.predict(pd.DataFrame({"unique_id": "s", "ds": ds, "y": values}))
    return series.future_ds, served[:, 1], pyfunc


@pytest.mark.parametrize("model_freq,freq,start", EQUIVALENT,
                         ids=[f"{a}~{b}@{c}" for a, b, c in EQUIVALENT])
@pytest.mark.parametrize("calendar", [(), ("month", "dayofweek")], ids=["plain", "calendar"])
def test_equivalent_frequencies_give_the_pyfunc_forecast(model_freq, freq, start, calendar):
    model = _model(model_freq, calendar)
    ds = pd.date_range(start, periods=12, freq=freq)
    values = np.random.default_rng(0).normal(5, 1, len(ds)).tolist()
    stamps, served, pyfunc = _both_paths(model, values, ds[-1].isoformat(), ds)
    expected = pd.date_range(ds[-1], periods=5, freq=freq)[1:]
    assert stamps == [t.isoformat() for t in expected]
    assert list(pyfunc["ds"]) == list(expected)
    np.testing.assert_array_equal(served, pyfunc["y_hat"].to_numpy())


@pytest.mark.parametrize("model_freq,sent,step", BETWEEN, ids=[f"{a}@{b}" for a, b, _ in BETWEEN])
def test_a_time_between_steps_names_the_step_whose_period_holds_it(model_freq, sent, step):
    model = _model(model_freq, calendar=("month", "dayofweek"))
    ds = pd.date_range(end=step, periods=12, freq=model_freq)
    values = np.random.default_rng(2).normal(5, 1, 12).tolist()
    stamps, served, pyfunc = _both_paths(model, values, sent, ds)
    assert stamps == [t.isoformat() for t in pyfunc["ds"]]
    assert pd.Timestamp(stamps[0]) == pd.Timestamp(step) + pd.tseries.frequencies.to_offset(
        model_freq)
    np.testing.assert_array_equal(served, pyfunc["y_hat"].to_numpy())


def test_aware_timestamps_are_utc_on_both_paths():
    """``+02:00``: the model reads UTC hours on both paths (the hour feature of 08:00+02:00
    is 6), and the forecast's stamps come back in UTC, marked ``+00:00``."""
    model = _model("h", calendar=("hour",))
    local = pd.date_range("2024-01-01 08:00", periods=12, freq="h", tz="+02:00")
    utc = local.tz_convert("UTC").tz_localize(None)
    values = np.random.default_rng(1).normal(5, 1, 12).tolist()
    errors: list = []
    aware = model.check_series("s", values, local[-1].isoformat(), None, None, 4, (), errors)
    naive_utc = model.check_series("s", values, utc[-1].isoformat(), None, None, 4, (), errors)
    wall = model.check_series("s", values, local[-1].strftime("%Y-%m-%dT%H:%M:%S"), None, None,
                              4, (), errors)
    assert not errors
    assert aware.future_ds[0] == "2024-01-01T18:00:00+00:00"
    assert naive_utc.future_ds[0] == "2024-01-01T18:00:00"
    out = model.predict([aware, naive_utc, wall])  # [3, H, Q]
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])  # the hour feature matters: wall time differs
    pyfunc = model.forecaster.predict(pd.DataFrame({"unique_id": "s", "ds": local, "y": values}))
    np.testing.assert_array_equal(out[0][:, 1], pyfunc["y_hat"].to_numpy())
    assert pyfunc["ds"].iloc[0] == pd.Timestamp("2024-01-01 18:00")


def test_the_schema_pattern_accepts_exactly_the_times_that_parse():
    """Every day from 1900 to 2199 (with and without a time and an offset) passes the schema and
    parses; the strings the schema refuses get one message naming the rule."""
    model = _model("D", calendar=("dayofweek",))
    day, n = datetime.date(1900, 1, 1), 0
    while day.year < 2200:
        for text in (day.isoformat(), f"{day}T23:59:59.123456789+14:00"[:35]):
            if n % 97 == 0:  # the rule's own check, on a sample (a pass per string is slow)
                errors: list = []
                model.check_series("s", [1.0] * 8, text, None, None, 4, (), errors)
                assert not errors, (text, errors)
            ForecastRequest(values=[1.0], last_timestamp=text)
        day += datetime.timedelta(days=1)
        n += 1
    for bad in ("2023-02-29", "1900-02-29", "2100-02-29", "2024-04-31", "2024-13-01",
                "1899-12-31", "2200-01-01", "2024-01-01T24:00", "2024-01-01Z", "01/02/2024",
                "2024-01-01T12:99:00Z", "2024-01-01\n"):
        with pytest.raises(ValidationError) as err:
            ForecastRequest(values=[1.0], last_timestamp=bad)
        status, body = client_errors(err.value)
        assert status == 422 and body["detail"][0]["loc"] == ["last_timestamp"]
        assert "ISO-8601 date or date-time from 1900 to 2199" in body["detail"][0]["msg"]


def test_the_old_timestamps_field_says_what_replaced_it():
    with pytest.raises(ValidationError) as err:
        ForecastRequest(values=[1.0], timestamps=["2024-01-01"])
    detail = client_errors(err.value)[1]["detail"][0]
    assert detail["loc"] == ["timestamps"] and "send last_timestamp" in detail["msg"]


def test_required_for_calendar_models_and_refused_for_integer_steps():
    errors: list = []
    _model("h", calendar=("hour",)).check_series("s", [1.0] * 8, None, None, None, 4, (),
                                                 errors)
    assert errors[0].loc == ("last_timestamp",) and "calendar features ['hour']" in errors[0].msg
    spec = FeatureSpec(8, 4, freq=1)
    steps = ServedModel(toy_forecaster(spec, known=["a"]), ModelInfo(uri="test"))
    errors = []
    assert steps.check_series("s", [1.0] * 8, None, None, None, 4, (), errors) is not None
    steps.check_series("s", [1.0] * 8, "2024-01-01", None, None, 4, (), errors)
    assert errors[0].loc == ("last_timestamp",) and "integer steps" in errors[0].msg


def test_a_history_beyond_representable_times_is_named():
    model = _model("YS", calendar=("month",))
    errors: list = []
    model.check_series("s", [1.0] * 400, "2000-01-01", None, None, 4, (), errors)
    assert errors[0].loc == ("last_timestamp",) and "1677-09-22 to 2262-04-11" in errors[0].msg
