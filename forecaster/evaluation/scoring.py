"""Metrics of backtest windows, per series and aggregated, and the benchmark protocols' scores.

All errors are on original-scale values ``[N, H]`` (``N`` windows of ``H`` steps); sMAPE in
percent and MASE as in :mod:`forecaster.models.metrics` (reused here, so a backtest of the test
windows reproduces a training run's ``test/*`` metrics).

Protocols:

- **M4** (:func:`m4_scores`): sMAPE and MASE averaged over series, and OWA = mean of
  sMAPE / sMAPE(Naive2) and MASE / MASE(Naive2), as the competition scored them.
- **ETTh1** (:func:`scaled_errors`): MSE and MAE of values standardised with the mean and
  standard deviation of the training rows (the Informer protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecaster.models.metrics import quantile_window_errors, window_errors

POINT = ("mae", "rmse", "smape", "mase")


def _aggregate(per_window: Mapping[str, np.ndarray], groups: np.ndarray | None,
               n_groups: int = 1) -> dict[str, np.ndarray]:
    """Means over windows (per group when ``groups`` is given); RMSE from the mean squared error."""
    g = np.zeros(len(next(iter(per_window.values()))), dtype=np.int64) if groups is None else groups
    counts = np.bincount(g, minlength=n_groups)
    means = {k: np.bincount(g, v, n_groups) / np.maximum(counts, 1) for k, v in per_window.items()}
    out = {"mae": means["mae"], "rmse": np.sqrt(means["mse"]), "smape": means["smape"],
           "mase": means["mase"]}
    out.update({k: v for k, v in means.items() if k not in ("mae", "mse", "smape", "mase")})
    out["windows"] = counts.astype(float)
    return out


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
        per_window = window_errors(actual, forecast, scale)
        if name == "model" and quantile_values is not None:
            per_window.update(quantile_window_errors(actual, *quantile_values))
        agg_rows[name] = {k: float(v[0]) for k, v in _aggregate(per_window, None).items()}
        by_series = _aggregate(per_window, series, len(ids))
        has = by_series["windows"] > 0
        frame = pd.DataFrame({k: v[has] for k, v in by_series.items()})
        frame.insert(0, "unique_id", np.asarray(ids, dtype=object)[has])
        frame.insert(0, "method", name)
        series_rows.append(frame)
    aggregate = pd.DataFrame.from_dict(agg_rows, orient="index").rename_axis("method")
    return aggregate, pd.concat(series_rows, ignore_index=True)


def m4_scores(aggregate: pd.DataFrame, reference: str = "naive2") -> pd.DataFrame:
    """OWA of each method against ``reference`` (M4: Naive2) from the aggregate sMAPE and MASE."""
    ref = aggregate.loc[reference]
    out = aggregate[["smape", "mase"]].copy()
    out["owa"] = 0.5 * (out["smape"] / ref["smape"] + out["mase"] / ref["mase"])
    return out


def standard_stats(y: np.ndarray, train_rows: int) -> tuple[float, float]:
    """Mean and (population) standard deviation of the first ``train_rows`` values."""
    x = np.asarray(y[:train_rows], dtype=np.float64)
    return float(x.mean()), float(x.std())


def scaled_errors(actual: np.ndarray, forecasts: Mapping[str, np.ndarray],
                  std: float) -> pd.DataFrame:
    """MSE and MAE of each method on standardised values (the shift cancels in the error)."""
    rows = {name: {"mse": float(np.mean(((actual - f) / std) ** 2)),
                   "mae": float(np.mean(np.abs(actual - f) / std))}
            for name, f in forecasts.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")

