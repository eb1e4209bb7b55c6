"""Rolling-origin backtests: every origin of every series forecast in batched forward passes.

Origin ``k`` of a series of length ``n`` is the position ``t_k = n - H - k * step`` of its first
target (``k = 0 .. n_windows - 1``, the latest first); origins with fewer than ``input_size``
values before them are dropped. All windows index one :class:`~forecaster.data.Panel` built with
the model's own spec and scaler, so the forecasts are those of ``Forecaster.predict`` on the
history cut at each origin (:func:`per_origin_forecasts`, one call per origin, is the slow
reference the tests and ``bench/backtest.py`` compare against).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.data import Panel, SeriesScaler, WindowDataset, validate_frame
from forecaster.data.frames import same_freq
from forecaster.evaluation.scoring import WindowForecasts, forecast_windows
from forecaster.models.predictor import Forecaster, quantile_column


@dataclass
class Backtest:
    """The windows of a backtest and the model's forecasts of them.

    Attributes:
        panel: every series, scaled with the model's scaler (series it does not know: stats of
            their history before their first origin).
        windows: the ``(series, t)`` windows, ordered by series, then time.
        forecasts: original-scale forecasts ``values`` ``[N, H, Q]`` and ``actual`` ``[N, H]``.
        origin: int [N] origin number ``k`` of each window (0 = the latest).
    """

    panel: Panel
    windows: WindowDataset
    forecasts: WindowForecasts
    origin: np.ndarray

    def to_frame(self, forecaster: Forecaster,
                 others: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """The long frame of the ecosystem (neuralforecast's ``cross_validation``): one row per
        window and step, ``unique_id, ds, cutoff, y, y_hat`` (the model's point forecast), the
        model's quantile columns as its pyfunc output names them, then one column per method
        of ``others`` (point forecasts ``[N, H]``, e.g. the baselines).

        ``cutoff`` is the time stamp of the last history value each forecast was made from.
        """
        panel, fc = self.panel, self.forecasts
        N, H, _ = fc.values.shape
        first = panel.offsets[fc.series] + fc.t  # [N] row of each window's first target
        rows = first[:, None] + np.arange(H)  # [N, H]
        frame = {"unique_id": np.repeat(np.asarray(panel.ids, dtype=object)[fc.series], H),
                 "ds": panel.ds[rows].reshape(-1),
                 "cutoff": np.repeat(panel.ds[first - 1], H),
                 "y": fc.actual.reshape(-1),
                 "y_hat": fc.values[:, :, forecaster.point_index].reshape(-1)}
        for k, q in enumerate(forecaster.quantiles):
            frame[quantile_column(q)] = fc.values[:, :, k].reshape(-1)
        for name, values in (others or {}).items():
            frame[name] = np.asarray(values).reshape(-1)
        return pd.DataFrame(frame)


def origins(lengths: np.ndarray, input_size: int, horizon: int, n_windows: int,
            step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(series, t, k)`` int64 [N] of the backtest windows (see the module docstring)."""
    if n_windows < 1 or step < 1:
        raise ValueError(f"n_windows and step must be >= 1, got {n_windows} and {step}")
    k = np.arange(n_windows)[::-1]  # [K] oldest origin first
    t = lengths[:, None] - horizon - k[None, :] * step  # [S, K]
    ok = t >= input_size
    series = np.broadcast_to(np.arange(len(lengths))[:, None], t.shape)[ok]
    return series.astype(np.int64), t[ok].astype(np.int64), np.broadcast_to(k, t.shape)[ok].astype(np.int64)


def clean_frame(df: pd.DataFrame, forecaster: Forecaster, fill: str | None) -> pd.DataFrame:
    """The validated, sorted frame the backtest reads (one window's worth at least per series)."""
    spec = forecaster.spec
    clean, _, _ = validate_frame(df, min_length=spec.input_size + spec.horizon, fill=fill,
                                 futr_exog=spec.futr_exog, static_cols=spec.static_cols,
                                 length_rule=f"input_size {spec.input_size} + horizon {spec.horizon}")
    return clean


def backtest(forecaster: Forecaster, df: pd.DataFrame, *, n_windows: int, step: int,
             fill: str | None = None, batch_size: int = 2048) -> Backtest:
    """Forecast ``n_windows`` origins ``step`` apart at the end of every series of ``df``.

    Args:
        forecaster: the model (its spec fixes ``input_size``, ``horizon`` and the features).
        df: long frame (``unique_id``, ``ds``, ``y`` [+ the model's covariates]).
        n_windows: origins per series.
        step: steps between consecutive origins.
        fill: NaN policy for ``y`` (see :func:`~forecaster.data.validate_frame`).
        batch_size: windows per forward pass.

    Raises:
        ValueError: no series is long enough for one window.
    """
    spec = forecaster.spec
    clean = clean_frame(df, forecaster, fill)
    lengths = clean.groupby("unique_id", sort=False).size().to_numpy()
    series, t, k = origins(lengths, spec.input_size, spec.horizon, n_windows, step)
    if not len(series):
        raise ValueError(f"no series has input_size {spec.input_size} values before an origin")
    panel = _panel(forecaster, clean, lengths, series, t)
    windows = WindowDataset(panel, spec, series, t)
    return Backtest(panel, windows, forecast_windows(forecaster, windows, batch_size), k)


def _panel(forecaster: Forecaster, clean: pd.DataFrame, lengths: np.ndarray, series: np.ndarray,
           t: np.ndarray) -> Panel:
    """The panel of ``clean`` for ``forecaster``: series it knows keep its scaler's stats, the
    others get stats of their history before their first window (every row if none)."""
    first = np.full(len(lengths), lengths.max(), dtype=np.int64)
    np.minimum.at(first, series, t)
    first = np.minimum(first, lengths)
    scaler = SeriesScaler(forecaster.scaler.kind).fit_frame(clean, first, forecaster.spec.futr_exog)
    return Panel.from_frame(clean, forecaster.spec, scaler.update_from(forecaster.scaler))


def windows_compatibility(forecaster: Forecaster, like: Forecaster, df: pd.DataFrame,
                          t: np.ndarray) -> str | None:
    """Why ``forecaster`` cannot forecast the windows of ``like`` (first targets ``t`` of
    ``df``'s series), or None when it can: another frequency or horizon, a longer input than
    the windows' history, or covariates ``df`` lacks."""
    a, b = forecaster.spec, like.spec
    if a.freq != b.freq and not (a.freq and b.freq and same_freq(a.freq, b.freq)):
        return f"frequency {a.freq!r}, this model {b.freq!r}"
    if a.horizon != b.horizon:
        return f"{a.horizon} steps ahead, this model {b.horizon}"
    if len(t) and t.min() < a.input_size:
        return f"from {a.input_size} past values, more than these windows have ({int(t.min())})"
    missing = [c for c in (*a.futr_exog, *a.static_cols) if c not in df.columns]
    if missing:
        return f"with covariates {missing} this data lacks"
    return None


def forecast_windows_of(forecaster: Forecaster, df: pd.DataFrame, ids, series: np.ndarray,
                        t: np.ndarray, fill: str | None = None) -> WindowForecasts:
    """``forecaster``'s forecasts of given windows of ``df``: window ``i`` forecasts series
    ``ids[series[i]]`` from position ``t[i]`` (another model's windows, e.g. the test windows a
    challenger was scored on). Check ``windows_compatibility`` first."""
    clean = clean_frame(df, forecaster, fill)
    own = list(clean["unique_id"].astype(str).unique())
    lengths = clean.groupby("unique_id", sort=False).size().to_numpy()
    where = {uid: k for k, uid in enumerate(own)}
    mapped = np.array([where[str(ids[s])] for s in series], dtype=np.int64)
    panel = _panel(forecaster, clean, lengths, mapped, t)
    return forecast_windows(forecaster, WindowDataset(panel, forecaster.spec, mapped, t))


def per_origin_forecasts(forecaster: Forecaster, df: pd.DataFrame, *, n_windows: int, step: int,
                         fill: str | None = None) -> np.ndarray:
    """The reference loop: one ``Forecaster.predict`` call per origin on the history cut there.

    Returns ``values`` ``[N, H, Q]`` in the window order of :func:`backtest`.
    """
    spec = forecaster.spec
    clean = clean_frame(df, forecaster, fill)
    offsets = np.concatenate([[0], np.cumsum(clean.groupby("unique_id", sort=False).size())])
    series, t, k = origins(np.diff(offsets), spec.input_size, spec.horizon, n_windows, step)
    columns = [quantile_column(q) for q in forecaster.quantiles] or ["y_hat"]
    n_future = spec.horizon if spec.futr_exog else 0
    values = np.empty((len(series), spec.horizon, len(columns)), dtype=np.float32)
    for origin in np.unique(k):
        idx = np.flatnonzero(k == origin)  # windows of this origin, one per series
        parts = []
        for w in idx:
            part = clean.iloc[offsets[series[w]]:offsets[series[w]] + t[w] + n_future].copy()
            if n_future:
                part.iloc[-n_future:, part.columns.get_loc("y")] = np.nan
            parts.append(part)
        out = forecaster.predict(pd.concat(parts, ignore_index=True))
        H = spec.horizon
        values[idx] = out[columns].to_numpy(np.float32).reshape(len(idx), H, len(columns))
    return values
