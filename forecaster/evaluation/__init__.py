"""Evaluation layer: rolling-origin backtests, baselines on the same windows, benchmark scoring.

    backtest   windows at n_windows origins, forecast in batched passes (and the per-origin loop)
    baselines  naive, seasonal naive, M4's Naive2, statsforecast AutoETS / AutoARIMA (optional)
    scoring    per-series and aggregate metrics, M4 OWA, ETTh1 scaled MSE / MAE
    report     printed table, MLflow metrics, per-series CSV, plots
    runner     evaluate(cfg): the whole job behind ``python -m pipelines.evaluate``
"""

from forecaster.evaluation.backtest import Backtest, backtest, origins, per_origin_forecasts
from forecaster.evaluation.baselines import baseline_forecasts, naive2, seasonality_test
from forecaster.evaluation.scoring import m4_scores, scaled_errors, score_methods

__all__ = [
    "Backtest",
    "backtest",
    "baseline_forecasts",
    "m4_scores",
    "naive2",
    "origins",
    "per_origin_forecasts",
    "scaled_errors",
    "score_methods",
    "seasonality_test",
]
