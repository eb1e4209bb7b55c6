"""The forecast of a history depends only on the values in the model's window: the same for a
series seen in training and a new one, whatever extra history is sent, and scaling a series by
c > 0 scales its forecast by c. Checked with hypothesis through the pyfunc model of a real
training run and over HTTP against a real `bentoml serve` of the same model."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import small_frame
from tests.serving.conftest import MODEL_URI

SEEN = "s0"  # a series of the training data (small_frame)


@pytest.fixture(scope="module")
def pyfunc_model(store):
    mlflow.set_tracking_uri(store["MLFLOW_TRACKING_URI"])
    return mlflow.pyfunc.load_model(MODEL_URI)


def _history(n_extra: int, noise_seed: int) -> np.ndarray:
    """The last 48 training values of series s0 plus new noise, after ``n_extra`` older values."""
    y = small_frame(n_series=1, length=48 + n_extra)["y"].to_numpy()
    return y + np.random.default_rng(noise_seed).normal(0, 0.5, len(y))


def _frame(y: np.ndarray, uid: str) -> pd.DataFrame:
    ds = pd.date_range("2024-03-01", periods=len(y), freq="h")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


cases = dict(n_extra=st.integers(0, 60), noise_seed=st.integers(0, 10**6),
             c=st.floats(1e-3, 1e3), new_id=st.text("abcxyz", min_size=1, max_size=8))
fast = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fast
@given(**cases)
def test_pyfunc_forecast_depends_only_on_the_window_and_scales(pyfunc_model, n_extra, noise_seed, c, new_id):
    y = _history(n_extra, noise_seed)
    window = y[-24:]  # the model's input_size (SMALL: 24)
    base = pyfunc_model.predict(_frame(window, SEEN))
    longer = pyfunc_model.predict(_frame(y, "new-" + new_id))  # unknown id, more history
    cols = [c_ for c_ in base.columns if c_.startswith("y_")]
    np.testing.assert_array_equal(base[cols].to_numpy(), longer[cols].to_numpy())
    scaled = pyfunc_model.predict(_frame(c * window, SEEN))
    np.testing.assert_allclose(scaled[cols].to_numpy(), c * base[cols].to_numpy(), rtol=2e-4,
                               atol=1e-5 * c * np.abs(window).max())


@fast
@given(**cases)
def test_http_forecast_depends_only_on_the_window_and_scales(client, n_extra, noise_seed, c, new_id):
    y = _history(n_extra, noise_seed)
    window = y[-24:]

    def forecast(values, series_id=None):
        if series_id is None:
            r = client.post("/forecast", json={"values": values.tolist()})
            assert r.status_code == 200, r.text
            return r.json()
        r = client.post("/forecast_batch", json={"series": [{"id": series_id, "values": values.tolist()}]})
        assert r.status_code == 200, r.text
        return r.json()["forecasts"][0]

    base = forecast(window)
    for other in (forecast(y), forecast(y, SEEN), forecast(window, "new-" + new_id)):
        assert other["forecast"] == base["forecast"] and other["intervals"] == base["intervals"]
    scaled = forecast(c * window)
    np.testing.assert_allclose(scaled["forecast"], c * np.asarray(base["forecast"]), rtol=2e-4,
                               atol=1e-5 * c * np.abs(window).max())
