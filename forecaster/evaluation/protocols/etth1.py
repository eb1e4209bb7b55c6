"""ETTh1: the Informer protocol (Zhou et al., 2021), as the long-horizon literature reports it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.evaluation.protocols.base import Protocol, register

# 12 months of training rows, 4 of validation, 4 of test (30-day months of 24 hours)
TRAIN_ROWS, TEST_ROWS = 8_640, 2_880


def standard_stats(y: np.ndarray, train_rows: int = TRAIN_ROWS) -> tuple[float, float]:
    """Mean and (population) standard deviation of the first ``train_rows`` values."""
    x = np.asarray(y[:train_rows], dtype=np.float64)
    return float(x.mean()), float(x.std())


def scaled_errors(actual: np.ndarray, forecasts, std: float) -> pd.DataFrame:
    """MSE and MAE of each method on standardised values (the shift cancels in the error)."""
    rows = {name: {"mse": float(np.mean(((actual - f) / std) ** 2)),
                   "mae": float(np.mean(np.abs(actual - f) / std))}
            for name, f in forecasts.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


@register
class ETTh1(Protocol):
    """Every test window (stride 1) of the last 4 months; MSE and MAE of values standardised
    with the training rows' mean and standard deviation."""

    name = "etth1"
    sources = ("etth1",)
    summary = ("mse_scaled", "mae_scaled")

    def windows(self, horizon: int) -> tuple[int, int]:
        return TEST_ROWS - horizon + 1, 1

    def columns(self, table, actual, forecasts, panel):
        y = panel.y[panel.offsets[0]:panel.offsets[1]].astype(np.float64)  # the one series
        scaled = scaled_errors(actual, forecasts, standard_stats(y)[1])
        return table.assign(mse_scaled=scaled["mse"], mae_scaled=scaled["mae"])
