"""Forecast accuracy metrics on original-scale values (numpy) and the naive baselines.

Shapes: ``y``, ``y_hat`` ``[N, H]`` (N forecast windows of H steps). sMAPE is in percent, as in
the M4 competition; MASE divides by the in-sample mean absolute seasonal difference of each
window's series (``scale`` ``[N]``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Season lengths by pandas frequency prefix (the period that repeats), as in neuralforecast.
_SEASONS = {"h": 24, "min": 60, "s": 60, "d": 7, "b": 5, "w": 52, "m": 12, "ms": 12, "me": 12,
            "q": 4, "qs": 4, "qe": 4, "y": 1, "ys": 1, "ye": 1, "a": 1}


def infer_season_length(freq) -> int:
    """Season length for a pandas frequency string (``"h"`` -> 24, ``"W-SAT"`` -> 52...); 1 if unknown."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return 1
    name = offset.name.split("-")[0].lower()
    base = _SEASONS.get(name, _SEASONS.get(name.rstrip("es"), 1))
    if name in ("h", "min", "s") and offset.n > 1:  # e.g. 30min -> 48 per day
        per_day = {"h": 24, "min": 1440, "s": 86400}[name] // offset.n
        return max(int(per_day), 1)
    if name == "d" and offset.n > 1:  # e.g. 7D (weekly data) -> 52 per year
        return max(round(365.25 / offset.n), 1)
    return base


def infer_seasons(freq, history: int | None = None) -> list[int]:
    """Every season length of a frequency, the primary (``infer_season_length``) first.

    Sub-daily data has a daily and a weekly season (hourly 24 and 168, half-hourly 48 and 336,
    15-minute 96 and 672); daily data 7, and 365 when ``history`` holds three years; other
    frequencies their one season (weekly 52, monthly 12, quarterly 4); yearly or integer steps
    none. A season needs ``history`` (the shortest series' length, when given) to hold three
    of its periods.
    """
    m = infer_season_length(freq)
    if m <= 1:
        return []
    seasons = [m]
    name = pd.tseries.frequencies.to_offset(freq).name.split("-")[0].lower()
    if name in ("h", "min", "s") and m > 1:
        seasons.append(7 * m)  # the week
    elif name == "d" and m == 7:
        seasons.append(365)
    return [s for s in seasons if history is None or 3 * s <= history]


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


def point_metrics(y: np.ndarray, y_hat: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, sMAPE and MASE of one method."""
    return {"mae": mae(y, y_hat), "rmse": rmse(y, y_hat), "smape": smape(y, y_hat),
            "mase": mase(y, y_hat, scale)}


def naive_forecasts(y: np.ndarray, offsets: np.ndarray, series: np.ndarray, t: np.ndarray,
                    horizon: int, season_length: int) -> dict[str, np.ndarray]:
    """Naive (last value) and seasonal-naive forecasts ``[N, H]`` of the windows ``(series, t)``.

    ``y`` ``[rows]`` holds every series back to back (``offsets`` ``[S + 1]``); window ``i``
    forecasts the ``horizon`` steps from position ``t[i]`` of series ``series[i]`` using only the
    values before it. Seasonal naive repeats the last ``season_length`` values, and falls back to
    naive where a window has less history than one season.
    """
    start = offsets[series] + t  # [N] absolute row of the first target
    naive = np.repeat(y[start - 1][:, None], horizon, axis=1)  # [N, H]
    m = max(int(season_length), 1)
    h = np.arange(horizon)
    rows = start[:, None] - m + (h % m)[None, :]  # [N, H]
    seasonal = np.where((t >= m)[:, None], y[np.maximum(rows, 0)], naive)
    return {"naive": naive, "seasonal_naive": seasonal}
