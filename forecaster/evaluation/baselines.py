"""Baseline forecasts of backtest windows: naive, seasonal naive, M4's Naive2 and (optional)
statistical models from statsforecast.

Every function takes the flat target ``y`` ``[rows]`` laid out by ``offsets`` ``[S + 1]`` and the
windows ``(series, t)`` ``[N]``, and forecasts window ``i`` from the values of its series before
position ``t[i]`` only; it returns point forecasts ``[N, H]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from forecaster.console import progress

log = logging.getLogger(__name__)
STATISTICAL = ("auto_ets", "auto_arima")


# ----------------------------------------------------------------------------- Naive2 (M4)
def acf(x: np.ndarray, k: int) -> float:
    """Sample autocorrelation at lag ``k`` as the M4 benchmark code computes it."""
    d = x - x.mean()
    return float(np.dot(d[k:], d[:len(x) - k]) / np.dot(d, d))


def seasonality_test(x: np.ndarray, m: int) -> bool:
    """M4's 90 % test: ``|acf(m)| > 1.645 sqrt((1 + 2 s) / n)``.

    ``s = acf(1) + sum_{i=2}^{m-1} acf(i)^2``: the competition's code adds the first
    autocorrelation unsquared, and the published Naive2 figures depend on it.
    """
    s = acf(x, 1) + sum(acf(x, i) ** 2 for i in range(2, m))
    return abs(acf(x, m)) > 1.645 * np.sqrt((1 + 2 * s) / len(x))


def _moving_average(x: np.ndarray, m: int) -> np.ndarray:
    """Centred moving average as in the M4 code: ``2 x m`` when ``len(x)`` is even (the code
    tests the series length, not ``m``), a plain centred ``m``-average otherwise; NaN at the ends."""
    def centred(v: np.ndarray, w: int) -> np.ndarray:  # pandas rolling(w, center=True).mean()
        out = np.full(len(v), np.nan)
        means = np.lib.stride_tricks.sliding_window_view(v, w).mean(1)  # [n - w + 1]
        out[w // 2:w // 2 + len(means)] = means  # window [i - w//2, i - w//2 + w) sits at i
        return out

    ma = centred(x, m)
    if len(x) % 2 == 0:
        ma = np.roll(centred(ma, 2), -1)
    return ma


def seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal indices ``[m]`` (in percent, position ``i`` -> ``i % m``) of the
    classical decomposition, or all 100 when ``x`` fails :func:`seasonality_test`."""
    if m <= 1 or len(x) < 3 * m or not seasonality_test(x, m):
        return np.full(max(m, 1), 100.0)
    ratio = x * 100 / _moving_average(x, m)
    ratio = np.concatenate([ratio, np.full(m - len(ratio) % m, np.nan)]).reshape(-1, m)
    si = np.nanmean(ratio, 0)
    return si / (si.sum() / (m * 100))


def naive2(y: np.ndarray, offsets: np.ndarray, series: np.ndarray, t: np.ndarray, horizon: int,
           season_length: int) -> np.ndarray:
    """M4's Naive2: the last value of the seasonally adjusted history, reseasonalised."""
    out = np.empty((len(series), horizon))
    m = max(int(season_length), 1)
    for i, (s, ti) in enumerate(zip(series, t)):
        x = y[offsets[s]:offsets[s] + ti].astype(np.float64)
        si = seasonal_indices(x, m)
        last = x[-1] * 100 / si[(ti - 1) % m]
        out[i] = last * si[(ti + np.arange(horizon)) % m] / 100
    return out


# ----------------------------------------------------------------------------- statsforecast
def statsforecast_available() -> bool:
    try:
        import statsforecast.models  # noqa: F401
    except ImportError:
        return False
    return True


def statistical(name: str, y: np.ndarray, offsets: np.ndarray, series: np.ndarray, t: np.ndarray,
                horizon: int, season_length: int, max_history: int | None = None,
                time_budget_s: float | None = None) -> np.ndarray | None:
    """``auto_ets`` or ``auto_arima`` (statsforecast) forecasts of the windows, one fit each.

    Args:
        max_history: fit on at most this many latest values before each origin (bounds time).
        time_budget_s: give up (return ``None``, logged) when the windows fitted so far project a
            total above this many seconds.
    """
    from statsforecast.models import AutoARIMA, AutoETS

    make = {"auto_ets": AutoETS, "auto_arima": AutoARIMA}[name]
    out = np.empty((len(series), horizon))
    start = time.perf_counter()
    windows = progress(zip(series, t), total=len(series), desc=f"{name} fits")  # minutes, at times
    for i, (s, ti) in enumerate(windows):
        lo = offsets[s] + (max(ti - max_history, 0) if max_history else 0)
        x = y[lo:offsets[s] + ti].astype(np.float64)
        m = season_length if len(x) >= 2 * season_length else 1
        out[i] = make(season_length=m).forecast(y=x, h=horizon)["mean"]
        spent = time.perf_counter() - start
        projected = spent / (i + 1) * len(series)
        # judged after a few fits: the first one also compiles statsforecast's numba code
        if time_budget_s and i + 1 >= min(5, len(series)) and projected > time_budget_s \
                and i + 1 < len(series):
            log.warning("%s skipped: %d of %d windows took %.1f s, projecting %.0f s > budget %g s",
                        name, i + 1, len(series), spent, projected, time_budget_s)
            return None
    return out


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


def baseline_forecasts(methods: Sequence[str], y: np.ndarray, offsets: np.ndarray,
                       series: np.ndarray, t: np.ndarray, horizon: int, season_length: int,
                       **statistical_options) -> dict[str, np.ndarray]:
    """Forecasts ``[N, H]`` of each of ``methods`` (naive, seasonal_naive, naive2, auto_ets,
    auto_arima); statistical ones missing statsforecast, or over budget, are left out (logged)."""
    simple = naive_forecasts(y, offsets, series, t, horizon, season_length)
    out = {}
    for name in methods:
        if name in simple:
            out[name] = simple[name]
        elif name == "naive2":
            out[name] = naive2(y, offsets, series, t, horizon, season_length)
        elif name in STATISTICAL:
            if not statsforecast_available():
                log.warning("%s skipped: statsforecast is not installed (pip install statsforecast)",
                            name)
                continue
            fc = statistical(name, y, offsets, series, t, horizon, season_length,
                             **statistical_options)
            if fc is not None:
                out[name] = fc
        else:
            raise ValueError(f"unknown baseline {name!r}; use naive, seasonal_naive, naive2, "
                             f"{', '.join(STATISTICAL)}")
    return out
