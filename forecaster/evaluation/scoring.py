"""The one scorer: a model's forecasts of held-out windows, beside the baselines on the same
windows, scored with :mod:`forecaster.evaluation.metrics`.

Training scores its test (and validation) windows with :func:`score`, and backtests score their
origins with it too, so a backtest of a run's test windows reproduces the run's ``test/*``
metrics. A benchmark protocol (:mod:`forecaster.evaluation.protocols`) adds its own columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.data import Panel, WindowDataset, window_loader
from forecaster.evaluation import metrics as M
from forecaster.evaluation.baselines import baseline_forecasts
from forecaster.models.predictor import Forecaster


@dataclass
class WindowForecasts:
    """Original-scale forecasts of a set of windows: ``values`` ``[N, H, Q]``, ``actual``
    ``[N, H]``, and each window's series index and first target position ``[N]``."""

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


@dataclass
class Scores:
    """What :func:`score` returns.

    Attributes:
        table: one row per method (the model first): aggregate metrics, ``windows``, and the
            protocol's columns.
        per_series: one row per (method, unique_id).
        forecasts: method -> point forecasts ``[N, H]``.
        scale: each window's MASE scale ``[N]``.
    """

    table: pd.DataFrame
    per_series: pd.DataFrame
    forecasts: dict[str, np.ndarray]
    scale: np.ndarray

    def methods(self) -> dict[str, dict[str, float]]:
        """``{"model": {"mae": ...}, "naive": {...}, ...}``: each method's own metrics (a point
        baseline has no pinball or coverage), without the window counts."""
        table = self.table.drop(columns="windows")
        return {method: {k: float(v) for k, v in row.items() if pd.notna(v)}
                for method, row in table.iterrows()}


def score_methods(actual: np.ndarray, forecasts: Mapping[str, np.ndarray], scale: np.ndarray,
                  series: np.ndarray, ids: Sequence[str],
                  quantile_values: tuple[np.ndarray, Sequence[float]] | None = None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics of every method on the same windows.

    Args:
        actual: ``[N, H]``.
        forecasts: method -> point forecasts ``[N, H]`` (the model first, by convention "model").
        scale: ``[N]`` MASE scale of each window.
        series: ``[N]`` series index of each window into ``ids``.
        quantile_values: ``(values [N, H, Q], quantiles)`` of the method named "model".

    Returns:
        ``(aggregate, per_series)``: one row per method (columns mae, rmse, smape, mase
        [, pinball, coverage_*], windows), and one row per (method, unique_id).
    """
    agg_rows, series_rows = {}, []
    for name, forecast in forecasts.items():
        per_window = M.window_errors(actual, forecast, scale)
        if name == "model" and quantile_values is not None:
            per_window.update(M.quantile_window_errors(actual, *quantile_values))
        agg_rows[name] = {k: float(v[0]) for k, v in M.aggregate(per_window).items()}
        by_series = M.aggregate(per_window, series, len(ids))
        has = by_series["windows"] > 0
        frame = pd.DataFrame({k: v[has] for k, v in by_series.items()})
        frame.insert(0, "unique_id", np.asarray(ids, dtype=object)[has])
        frame.insert(0, "method", name)
        series_rows.append(frame)
    aggregate = pd.DataFrame.from_dict(agg_rows, orient="index").rename_axis("method")
    return aggregate, pd.concat(series_rows, ignore_index=True)


def score(forecaster: Forecaster, panel: Panel, fc: WindowForecasts, season_length: int,
          baselines: Sequence[str] = ("naive", "seasonal_naive"), protocol=None,
          quantiles: bool = True) -> Scores:
    """The model's forecasts ``fc`` of windows of ``panel`` and the point ``baselines`` on the
    same windows, scored; ``protocol`` (a :class:`~forecaster.evaluation.protocols.Protocol`)
    adds its columns (M4: OWA against Naive2; ETTh1: standardised MSE and MAE).

    Quantile models add ``pinball`` and ``coverage_<lo>_<hi>`` of each symmetric pair of
    quantiles (``quantiles=False`` leaves them out).
    """
    y = panel.y.astype(np.float64)
    forecasts = {"model": fc.values[:, :, forecaster.point_index].astype(np.float64)}
    forecasts.update(baseline_forecasts(list(baselines), y, panel.offsets, fc.series, fc.t,
                                        forecaster.horizon, season_length))
    scale = M.seasonal_scales(y, panel.offsets, fc.series, fc.t, season_length)
    q = (fc.values, forecaster.quantiles) if quantiles and forecaster.quantiles else None
    table, per_series = score_methods(fc.actual, forecasts, scale, fc.series, panel.ids, q)
    if protocol is not None:
        table = protocol.columns(table, fc.actual, forecasts, panel)
    return Scores(table, per_series, forecasts, scale)
