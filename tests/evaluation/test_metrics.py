"""Per-series and aggregate metrics, and the baselines, on small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.evaluation import baseline_forecasts, naive2, naive_forecasts, score_methods
from forecaster.evaluation import metrics as M
from forecaster.evaluation.baselines import seasonal_indices, seasonality_test, statistical
from forecaster.evaluation.protocols.etth1 import scaled_errors
from forecaster.evaluation.protocols.m4 import owa


def test_metrics_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_hat = np.array([[2.0, 2.0], [3.0, 2.0]])
    assert M.mae(y, y_hat) == pytest.approx(0.75)
    assert M.rmse(y, y_hat) == pytest.approx(np.sqrt(5 / 4))
    assert M.smape(y, y_hat) == pytest.approx(200 * np.mean([1 / 3, 0, 0, 2 / 6]))
    assert M.mase(y, y_hat, np.array([1.0, 2.0])) == pytest.approx(np.mean([0.5, 0.5]))
    assert M.coverage(y, y - 1, y_hat) == pytest.approx(0.75)


def test_naive_baselines_use_only_the_past():
    y = np.arange(20, dtype=float)  # one series
    offsets = np.array([0, 20])
    fc = naive_forecasts(y, offsets, np.array([0, 0]), np.array([10, 3]), horizon=4,
                         season_length=5)
    np.testing.assert_array_equal(fc["naive"][0], [9, 9, 9, 9])
    np.testing.assert_array_equal(fc["seasonal_naive"][0], [5, 6, 7, 8])  # y[t-5+h%5]
    np.testing.assert_array_equal(fc["seasonal_naive"][1], [2, 2, 2, 2])  # too short: naive


def test_score_methods_per_series_and_aggregate(rng):
    actual = rng.normal(10, 1, size=(5, 4))
    model = actual + np.array([[1.0], [1.0], [2.0], [2.0], [2.0]])  # constant error per window
    series, scale = np.array([0, 0, 1, 1, 1]), np.array([1.0, 1.0, 2.0, 2.0, 2.0])
    q = np.stack([model - 1, model, model + 1], -1)  # [N, H, 3]
    table, per_series = score_methods(actual, {"model": model, "naive": actual}, scale, series,
                                      ["a", "b"], (q, [0.1, 0.5, 0.9]))
    assert table.loc["model", "mae"] == pytest.approx(1.6)
    assert table.loc["model", "rmse"] == pytest.approx(np.sqrt((2 * 1 + 3 * 4) / 5))
    assert table.loc["model", "mase"] == pytest.approx((1 + 1 + 1 + 1 + 1) / 5)
    assert table.loc["naive", "mae"] == 0 and table.loc["naive", "windows"] == 5
    # the 80 % interval [model - 1, model + 1] holds the actual only where the error is 1
    assert table.loc["model", "coverage_0.1_0.9"] == pytest.approx(2 / 5)
    rows = per_series.set_index(["method", "unique_id"])
    assert rows.loc[("model", "a"), "mae"] == pytest.approx(1) and rows.loc[("model", "b"), "mae"] == 2
    assert rows.loc[("model", "b"), "windows"] == 3
    assert rows.loc[("model", "a"), "coverage_0.1_0.9"] == 1
    assert rows.loc[("model", "b"), "smape"] == pytest.approx(
        np.mean(200 * 2 / (np.abs(actual[2:]) + np.abs(model[2:]))))


def test_m4_owa_and_scaled_errors():
    import pandas as pd

    agg = pd.DataFrame({"smape": [10.0, 20.0], "mase": [1.0, 4.0]}, index=["model", "naive2"])
    assert owa(agg).tolist() == [pytest.approx(0.375), 1.0]
    actual = np.array([[1.0, 3.0]])
    out = scaled_errors(actual, {"m": np.array([[2.0, 1.0]])}, std=2.0)
    assert out.loc["m", "mse"] == pytest.approx((0.25 + 1) / 2)
    assert out.loc["m", "mae"] == pytest.approx(0.75)


def _panel(values: list[np.ndarray]):
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])])
    return np.concatenate(values), offsets


def test_naive_seasonal_naive_and_naive2():
    t = np.arange(24 * 20)
    seasonal = 10 * (1 + 0.5 * np.sin(2 * np.pi * t / 24))  # a pure multiplicative cycle
    noise = np.random.default_rng(3).normal(size=len(t)) + 50  # no autocorrelation
    y, offsets = _panel([seasonal, noise])
    series, origin = np.array([0, 1]), np.array([24 * 18, 24 * 18])
    fc = baseline_forecasts(["naive", "seasonal_naive", "naive2"], y, offsets, series, origin, 24, 24)
    assert np.all(fc["naive"][0] == seasonal[24 * 18 - 1])
    np.testing.assert_allclose(fc["seasonal_naive"][0], seasonal[24 * 17:24 * 18])
    assert seasonality_test(seasonal, 24) and not seasonality_test(noise, 24)
    # Naive2 of a pure cycle recovers it; of a non-seasonal series it is naive
    np.testing.assert_allclose(fc["naive2"][0], seasonal[24 * 18:24 * 19], rtol=1e-2)
    np.testing.assert_allclose(fc["naive2"][1], fc["naive"][1])
    assert np.allclose(seasonal_indices(noise, 24), 100)
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_forecasts(["theta"], y, offsets, series, origin, 24, 24)
    assert naive2(y, offsets, series, origin, 3, 1).shape == (2, 3)


def test_statistical_baseline_is_optional_and_time_bounded():
    pytest.importorskip("statsforecast")
    t = np.arange(120)
    y, offsets = _panel([5 + np.sin(2 * np.pi * t / 4) + 0.01 * t])
    series, origin = np.array([0, 0]), np.array([100, 112])
    fc = statistical("auto_ets", y, offsets, series, origin, 8, 4, max_history=60)
    assert fc.shape == (2, 8) and np.isfinite(fc).all()
    np.testing.assert_allclose(fc[0], y[100:108], atol=0.3)  # a clean cycle is easy
    many = np.full(50, 112)
    assert statistical("auto_ets", y, offsets, np.zeros(50, int), many, 8, 4,
                       time_budget_s=1e-6) is None
