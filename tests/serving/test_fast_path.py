"""The service's array fast path computes what ``Forecaster.predict`` (the pyfunc model) does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data import FeatureSpec
from forecaster.data.features import future_grid
from forecaster.data.frames import series_freq
from forecaster.serving.model import ServedModel
from forecaster.serving.rules import RequestError
from forecaster.tracking.loading import ModelInfo
from tests.serving.conftest import toy_forecaster


def long_frame(model: ServedModel, series) -> pd.DataFrame:
    """The long frame ``Forecaster.predict`` (the pyfunc model) reads for checked series:
    history rows, then known-future rows for a model with covariates."""
    H = model.horizon if model.futr_exog else 0
    lengths = np.array([len(s.values) + H for s in series])
    ds, y = [], []
    for s in series:
        ds.append(s.ds.values)
        y.append(np.asarray(s.values, dtype=float))
        if H:
            freq = model.freq if model.freq is not None else series_freq(s.ds.values)
            ds.append(future_grid(s.ds.values[-1:], freq, H)[0])
            y.append(np.full(H, np.nan))
    frame = {"unique_id": np.repeat(np.array(model.ids(series), dtype=object), lengths),
             "ds": np.concatenate(ds), "y": np.concatenate(y)}
    for name in model.futr_exog:
        frame[name] = np.concatenate([np.asarray(s.covariates[name], float) for s in series])
    return pd.DataFrame(frame)


@pytest.mark.parametrize("spec", [
    FeatureSpec(8, 4, freq="h"),
    FeatureSpec(8, 4, calendar=("hour", "dayofweek"), futr_exog=("temp",), freq="h"),
], ids=["plain", "calendar+exog"])
def test_served_arrays_equal_the_frame_path(spec):
    model = ServedModel(toy_forecaster(spec, known=["a"]), ModelInfo(uri="test"))
    rng = np.random.default_rng(2)
    errors: list = []
    series = []
    for k, (sid, n) in enumerate([("a", 12), ("zz", 9), ("b", 20)]):  # "a" uses training stats
        values = (rng.normal(size=n) + 3 * k).tolist()
        ts = [t.isoformat() for t in pd.date_range("2024-03-01", periods=n, freq="h")]
        temp = rng.normal(size=n + spec.horizon).tolist()
        cov, future = ({"temp": temp[:n]}, {"temp": temp[n:]}) if spec.futr_exog else (None, None)
        series.append(model.check_series(sid, values, ts[-1], cov, future, spec.horizon, (k,),
                                         errors))
    assert not errors
    fast = model.predict(series)  # [B, H, Q] in request order
    frame = model.forecaster.predict(long_frame(model, series))  # the pyfunc path, sorted by id
    for k, s in enumerate(series):
        rows = frame[frame["unique_id"] == s.id]
        np.testing.assert_array_equal(fast[k, :, 1], rows["y_hat"].to_numpy())
        np.testing.assert_array_equal(fast[k, :, 0], rows["y_q10"].to_numpy())
    alone = model.predict(series[1:2])
    np.testing.assert_allclose(alone[0], fast[1], rtol=1e-5, atol=1e-6)


def test_predict_arrays_equals_predict_and_short_history_is_a_request_error():
    spec = FeatureSpec(8, 4, freq="h")
    f = toy_forecaster(spec, known=["a"])
    y = np.random.default_rng(3).normal(size=25)
    values, ids, future_ds = f.predict_arrays(
        y, [0, 10, 25], ["b", "a"], horizon=2,
        ds=np.r_[pd.date_range("2024-01-01", periods=10, freq="h").values,
                 pd.date_range("2024-02-01", periods=15, freq="h").values])
    frame = pd.DataFrame({"unique_id": ["b"] * 10 + ["a"] * 15, "y": y,
                          "ds": np.r_[pd.date_range("2024-01-01", periods=10, freq="h").values,
                                      pd.date_range("2024-02-01", periods=15, freq="h").values]})
    out = f.predict(frame, horizon=2)  # ids sorted: a, b
    assert ids == ["b", "a"] and values.shape == (2, 2, 3)
    np.testing.assert_array_equal(out["y_hat"].to_numpy(), values[::-1, :, 1].ravel())
    np.testing.assert_array_equal(out["ds"].to_numpy(), future_ds[::-1].ravel())
    model = ServedModel(f, ModelInfo(uri="test"))
    errors: list = []
    s = model.check_series("x", [1.0] * 8, None, None, None, 4, (), errors)
    s.values = [1.0] * 5  # a rule the checks missed still answers as the client's error
    with pytest.raises(RequestError, match="at least 8"):
        model.predict([s])
