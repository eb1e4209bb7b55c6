"""The batched backtest forecasts exactly what one ``Forecaster.predict`` call per origin does."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.evaluation import backtest, origins, per_origin_forecasts
from tests.evaluation.conftest import make_forecaster


def test_origins_step_back_from_each_series_end():
    series, t, k = origins(np.array([100, 40, 30]), input_size=24, horizon=6, n_windows=3, step=5)
    # series 0: 94, 89, 84; series 1: 34, 29, (24); series 2: (24); oldest first, k = 0 latest
    assert series.tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert t.tolist() == [84, 89, 94, 24, 29, 34, 24]
    assert k.tolist() == [2, 1, 0, 2, 1, 0, 0]
    with pytest.raises(ValueError, match="n_windows"):
        origins(np.array([100]), 24, 6, 0, 1)


@pytest.mark.parametrize("quantiles,calendar", [((0.1, 0.5, 0.9), ("hour",)), ((), ())])
def test_batched_equals_per_origin_loop(frame, quantiles, calendar):
    forecaster = make_forecaster(frame, quantiles=quantiles, calendar=calendar)
    bt = backtest(forecaster, frame, n_windows=5, step=7, batch_size=4)  # several batches
    loop = per_origin_forecasts(forecaster, frame, n_windows=5, step=7)
    assert len(bt.windows) == 15 and bt.forecasts.values.shape == loop.shape
    np.testing.assert_allclose(bt.forecasts.values, loop, rtol=1e-5, atol=1e-5)
    # actuals are the rows after each origin
    lengths = frame.groupby("unique_id").size().to_numpy()
    assert bt.windows.t.max() == lengths.max() - forecaster.horizon
    s1 = frame[frame.unique_id == "s1"]["y"].to_numpy()
    i = np.flatnonzero(bt.windows.series == 1)[-1]
    np.testing.assert_allclose(bt.forecasts.actual[i], s1[-6:], rtol=1e-6)


def test_last_window_is_the_models_predict_on_the_full_history(frame):
    forecaster = make_forecaster(frame)
    history = frame.groupby("unique_id").head(  # everything but the last horizon
        frame.groupby("unique_id")["y"].transform("size").max())
    cut = history[history.groupby("unique_id").cumcount(ascending=False) >= 6]
    direct = forecaster.predict(cut)
    bt = backtest(forecaster, frame, n_windows=1, step=1)
    np.testing.assert_allclose(bt.forecasts.values[:, :, forecaster.point_index].ravel(),
                               direct["y_hat"].to_numpy(), rtol=1e-5, atol=1e-5)


def test_long_frame_has_one_row_per_window_step_with_its_cutoff(frame):
    forecaster = make_forecaster(frame, quantiles=(0.1, 0.5, 0.9))
    bt = backtest(forecaster, frame, n_windows=3, step=6)
    snaive = np.arange(len(bt.windows) * 6, dtype=float).reshape(-1, 6)
    long = bt.to_frame(forecaster, {"seasonal_naive": snaive})
    assert list(long.columns) == ["unique_id", "ds", "cutoff", "y", "y_hat", "y_q10", "y_q50",
                                  "y_q90", "seasonal_naive"]
    assert len(long) == len(bt.windows) * 6
    for (uid, cutoff), rows in long.groupby(["unique_id", "cutoff"]):
        series = frame[frame.unique_id == uid].reset_index(drop=True)
        at = series.index[series.ds == cutoff][0]  # the last history value
        np.testing.assert_array_equal(rows["ds"].to_numpy(), series.ds[at + 1:at + 7].to_numpy())
        np.testing.assert_allclose(rows["y"].to_numpy(), series.y[at + 1:at + 7], rtol=1e-6)
    assert long.groupby("unique_id")["cutoff"].nunique().eq(3).all()
    np.testing.assert_array_equal(long["seasonal_naive"].to_numpy(), snaive.ravel())
    np.testing.assert_array_equal(long["y_hat"], long["y_q50"])
