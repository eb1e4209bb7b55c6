"""Evaluation layer: metrics, the one scorer, baselines, benchmark protocols and backtests.

    metrics    point, quantile and interval metrics, per window and aggregated
    baselines  naive, seasonal naive, M4's Naive2, statsforecast AutoETS / AutoARIMA (optional)
    scoring    the model's window forecasts beside the baselines, scored (training and backtests)
    protocols  benchmarks found by name: rolling, m4 (OWA), etth1 (scaled MSE / MAE)
    backtest   windows at n_windows origins, forecast in batched passes (and the per-origin loop)
    report     printed table, MLflow metrics, per-series CSV, plots
    runner     evaluate(cfg): the whole job behind ``python -m pipelines.evaluate``
"""

from forecaster.evaluation.backtest import Backtest, backtest, origins, per_origin_forecasts
from forecaster.evaluation.baselines import baseline_forecasts, naive2, naive_forecasts, seasonality_test
from forecaster.evaluation.scoring import Scores, WindowForecasts, forecast_windows, score, score_methods

__all__ = [
    "Backtest",
    "Scores",
    "WindowForecasts",
    "backtest",
    "baseline_forecasts",
    "forecast_windows",
    "naive2",
    "naive_forecasts",
    "origins",
    "per_origin_forecasts",
    "score",
    "score_methods",
    "seasonality_test",
]
