"""Forecast accuracy metrics on original-scale values (numpy): point, quantile and interval
metrics, per window and aggregated (overall or per series). The one place a metric is defined.

Shapes: ``y``, ``y_hat`` ``[N, H]`` (N forecast windows of H steps). sMAPE is in percent, as in
the M4 competition; MASE divides by the in-sample mean absolute seasonal difference of each
window's series (``scale`` ``[N]``).

Adding a metric: add its per-window values to :func:`window_errors` (point) or
:func:`quantile_window_errors` (quantiles); :func:`aggregate` averages every key, and training,
backtests and their tables pick it up.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.mean(np.abs(y - y_hat)))


def rmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - y_hat) ** 2)))


def _smape_terms(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """Elementwise ``200 |y - y_hat| / (|y| + |y_hat|)`` (0 where both are 0)."""
    den = np.abs(y) + np.abs(y_hat)
    return 200.0 * np.divide(np.abs(y - y_hat), den, out=np.zeros_like(den, dtype=float),
                             where=den > 0)


def smape(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Symmetric MAPE in percent, ``200 |y - y_hat| / (|y| + |y_hat|)`` (0 where both are 0)."""
    return float(np.mean(_smape_terms(y, y_hat)))


def mase(y: np.ndarray, y_hat: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error: each window's MAE over its series' seasonal-naive in-sample MAE."""
    per_window = np.mean(np.abs(y - y_hat), axis=1) / scale  # [N]
    return float(np.mean(per_window))


def seasonal_scales(y: np.ndarray, offsets: np.ndarray, series: np.ndarray, t: np.ndarray,
                    season_length: int) -> np.ndarray:
    """MASE scale ``[N]`` of each window: the mean ``|y_i - y_{i-m}|`` over its series' values
    before the window's first target (the in-sample part, as in the M4 competition).

    One cumulative sum over all series makes this O(rows). Windows with at most ``m`` values of
    history use lag 1; a zero scale (a constant history) becomes 1.
    """
    def scales(m: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.arange(len(y)) - np.repeat(offsets[:-1], np.diff(offsets))  # position in series
        diffs = np.zeros(len(y))
        ok = pos >= m
        diffs[ok] = np.abs(y[ok] - y[np.flatnonzero(ok) - m])
        csum = np.concatenate([[0.0], np.cumsum(diffs)])  # csum[i] = sum of diffs[:i]
        start = offsets[series]
        total = csum[start + t] - csum[start + np.minimum(m, t)]
        return total, t - m

    m = max(int(season_length), 1)
    total, count = scales(m)
    short = count <= 0
    if short.any():
        total1, count1 = scales(1)
        total, count = np.where(short, total1, total), np.where(short, count1, count)
    scale = np.divide(total, count, out=np.ones(len(t)), where=count > 0)
    return np.where(scale > 0, scale, 1.0)


def _pinball_terms(y: np.ndarray, q_hat: np.ndarray, quantiles) -> np.ndarray:
    """Elementwise pinball loss of ``q_hat`` ``[N, H, Q]`` against ``y`` ``[N, H]``."""
    q = np.asarray(quantiles, dtype=float)
    u = y[..., None] - q_hat  # [N, H, Q]
    return np.maximum(q * u, (q - 1) * u)


def pinball(y: np.ndarray, q_hat: np.ndarray, quantiles) -> float:
    """Mean pinball loss over ``q_hat`` ``[N, H, Q]``."""
    return float(np.mean(_pinball_terms(y, q_hat, quantiles)))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of actual values inside ``[lo, hi]``."""
    return float(np.mean((y >= lo) & (y <= hi)))


def intervals(values: np.ndarray, quantiles) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The symmetric intervals of quantile forecasts ``values`` ``[N, H, Q]`` (ascending
    quantiles): ``[("coverage_0.1_0.9", lo, hi), ...]``, outermost first."""
    q = list(quantiles)
    return [(f"coverage_{q[i]:g}_{q[-1 - i]:g}", values[:, :, i], values[:, :, len(q) - 1 - i])
            for i in range(len(q) // 2)]


def window_errors(y: np.ndarray, y_hat: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window ``[N]`` absolute error, squared error, sMAPE (percent) and MASE."""
    err = np.abs(y - y_hat)  # [N, H]
    return {"mae": err.mean(1), "mse": (err ** 2).mean(1), "smape": _smape_terms(y, y_hat).mean(1),
            "mase": err.mean(1) / scale}


def quantile_window_errors(y: np.ndarray, values: np.ndarray, quantiles) -> dict[str, np.ndarray]:
    """Per-window ``[N]`` pinball loss and coverage of each symmetric interval of ``values``."""
    out = {"pinball": _pinball_terms(y, values, quantiles).mean((1, 2))}
    out.update({name: ((y >= lo) & (y <= hi)).mean(1) for name, lo, hi in intervals(values, quantiles)})
    return out


def aggregate(per_window: Mapping[str, np.ndarray], groups: np.ndarray | None = None,
              n_groups: int = 1) -> dict[str, np.ndarray]:
    """Means of per-window metrics ``[N]`` over all windows, or per group (``groups`` ``[N]`` of
    ints below ``n_groups``): ``{metric: [n_groups]}`` plus ``windows`` (the counts).

    RMSE is the root of the mean squared error (``mse`` per window), so it equals the RMSE of
    all points together; every other metric is the mean of its per-window values.
    """
    n = len(next(iter(per_window.values())))
    g = np.zeros(n, dtype=np.int64) if groups is None else groups
    counts = np.bincount(g, minlength=n_groups)
    means = {k: np.bincount(g, v, n_groups) / np.maximum(counts, 1) for k, v in per_window.items()}
    out = {}
    for k, v in means.items():
        if k == "mse":
            out["rmse"] = np.sqrt(v)
        else:
            out[k] = v
    out["windows"] = counts.astype(float)
    return out
