"""model.nonnegative: a series whose window never went below zero is not forecast below zero
(point and interval bounds), whatever path forecasts it; other series are left as forecast."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.data import FeatureSpec, SeriesScaler
from forecaster.models import Forecaster
from forecaster.nn import RNNForecastNet


def _falling(nonnegative: bool) -> Forecaster:
    """NLinear whose bias pulls every forecast 100 window-stds below the last value."""
    config = {"n_features": 1, "horizon": 3, "input_size": 4, "base": "last", "level": "last",
              "linear": True, "rnn": False}
    net = RNNForecastNet(**config)
    with torch.no_grad():
        net.linear.weight.zero_()
        net.linear.bias.fill_(-100.0)
    spec = FeatureSpec(input_size=4, horizon=3, scaler="none")
    scaler = SeriesScaler("none").fit(np.ones(8), np.array([0, 4, 8]), np.array([4, 4]),
                                      ["a", "b"], np.zeros((8, 0)), [])
    calibration = {"levels": [0.8], "radius": [[1.0, 1.0, 1.0]]}
    return Forecaster(net, config, spec, scaler, calibration=calibration, nonnegative=nonnegative)


def _history() -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=4, freq="D")
    return pd.DataFrame({"unique_id": ["sales"] * 4 + ["balance"] * 4, "ds": [*ds, *ds],
                         "y": [3.0, 1.0, 2.0, 1.0, 3.0, -1.0, 2.0, 1.0]})


def test_a_series_that_never_went_below_zero_is_not_forecast_below_it(tmp_path):
    fc = _falling(True).predict(_history())
    cols = ["y_hat", "y_q10", "y_q50", "y_q90"]
    sales, balance = (fc[fc.unique_id == k][cols].to_numpy() for k in ("sales", "balance"))
    assert (sales == 0).all()  # every output floored at zero, the bounds included
    assert (balance < -50).all()  # it went below zero once: forecast as the network says
    unclamped = _falling(False).predict(_history())
    assert (unclamped[unclamped.unique_id == "sales"]["y_hat"] < -50).all()
    np.testing.assert_array_equal(unclamped[unclamped.unique_id == "balance"][cols], balance)


def test_the_setting_travels_with_the_model_and_old_models_keep_theirs(tmp_path):
    folder = _falling(True).save(tmp_path / "m")
    loaded = Forecaster.load(folder)
    assert loaded.nonnegative and loaded.describe()["nonnegative"] is True
    config = json.loads((folder / "config.json").read_text())
    del config["nonnegative"]  # a model saved before the setting existed
    (folder / "config.json").write_text(json.dumps(config))
    assert not Forecaster.load(folder).nonnegative


@pytest.mark.parametrize("value", ["yes", 1])
def test_a_bad_setting_is_named(value):
    from forecaster.errors import ConfigError
    from forecaster.models.config import ModelConfig

    with pytest.raises(ConfigError, match="model.nonnegative"):
        ModelConfig(nonnegative=value)
