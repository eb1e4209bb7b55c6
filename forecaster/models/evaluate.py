"""Scoring forecasts of held-out windows against the actuals and the naive baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.data import WindowDataset, window_loader
from forecaster.models import metrics as M
from forecaster.models.predictor import Forecaster


@dataclass
class WindowForecasts:
    """Original-scale forecasts of a set of windows: ``values`` ``[N, H, Q]``, ``actual`` ``[N, H]``."""

    values: np.ndarray
    actual: np.ndarray
    series: np.ndarray
    t: np.ndarray


def forecast_windows(forecaster: Forecaster, dataset: WindowDataset,
                     batch_size: int = 2048) -> WindowForecasts:
    """Forecast every window of ``dataset`` in batched forward passes."""
    values, series, t = [], [], []
    for batch in window_loader(dataset, batch_size=batch_size, shuffle=False):
        values.append(forecaster.predict_batch(batch))
        series.append(batch["series"].numpy())
        t.append(batch["t"].numpy())
    series_, t_ = np.concatenate(series), np.concatenate(t)
    panel = dataset.panel
    rows = panel.offsets[series_][:, None] + t_[:, None] + np.arange(forecaster.horizon)  # [N, H]
    return WindowForecasts(np.concatenate(values), panel.y[rows].astype(np.float64), series_, t_)


def score(forecaster: Forecaster, fc: WindowForecasts, y: np.ndarray, offsets: np.ndarray,
          season_length: int) -> dict[str, dict[str, float]]:
    """Metrics of the model and of the naive baselines on the same windows.

    Returns ``{"model": {...}, "naive": {...}, "seasonal_naive": {...}}``; quantile models add
    ``pinball`` and ``coverage_<lo>_<hi>`` of each symmetric pair of quantiles.
    """
    H = fc.actual.shape[1]
    scale = M.seasonal_scales(y, offsets, fc.series, fc.t, season_length)
    point = fc.values[:, :, forecaster.point_index]
    result = {"model": M.point_metrics(fc.actual, point, scale)}
    q = forecaster.quantiles
    if q:
        result["model"]["pinball"] = M.pinball(fc.actual, fc.values, q)
        for name, lo, hi in M.intervals(fc.values, q):
            result["model"][name] = M.coverage(fc.actual, lo, hi)
    baselines = M.naive_forecasts(y, offsets, fc.series, fc.t, H, season_length)
    for name, forecast in baselines.items():
        result[name] = M.point_metrics(fc.actual, forecast, scale)
    return result
