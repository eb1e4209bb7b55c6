"""One inference window per series: the last ``input_size`` observed rows and the future steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from forecaster.data.features import FeatureSpec, calendar_features, future_grid
from forecaster.data.frames import DataValidationError, same_freq, sort_frame, validate_frame
from forecaster.data.scalers import SeriesScaler
from forecaster.data.windows import Panel


def inference_batch(
    df: pd.DataFrame,
    spec: FeatureSpec,
    *,
    horizon: int | None = None,
    scaler: SeriesScaler | None = None,
) -> tuple[dict[str, torch.Tensor], list[str], np.ndarray]:
    """Builds the batch that forecasts the ``horizon`` steps after each series' last observation.

    The rows of a series after its last finite ``y`` are future rows: they carry the values of
    the known-future exogenous columns for the forecast steps (needed only when
    ``spec.futr_exog`` is not empty; further future rows are ignored). The rows before are the
    history: they must pass :func:`~forecaster.data.validate_frame` with at least
    ``input_size`` rows.

    Args:
        df: long frame of history rows and optional future rows (``y`` NaN).
        spec: feature specification the model was trained with.
        horizon: future steps, ``spec.horizon`` when ``None``.
        scaler: the training scaler; the series it knows use its stats, the others get stats
            fitted on their supplied history. ``None`` fits every series on its history.

    Returns:
        ``(batch, ids, future_ds)``: the batch-contract dict without ``"y"`` (one window per
        series, ``t`` = number of history rows), the series ids in batch order, and the future
        time stamps [S, H] (datetime64[ns] or int64).

    Raises:
        DataValidationError: the history breaks a rule, a series has no observed ``y``, the
            frequency differs from ``spec.freq``, or a known-future exogenous value is missing.
    """
    H = spec.horizon if horizon is None else horizon
    L = spec.input_size
    frame, ids, offsets, freq = sort_frame(df, futr_exog=spec.futr_exog, static_cols=spec.static_cols)
    if spec.freq is not None and not same_freq(spec.freq, freq):
        raise DataValidationError(f"column 'ds': frequency {freq!r} differs from spec.freq {spec.freq!r}")
    rows = np.arange(len(frame))
    observed = np.where(np.isfinite(frame["y"].to_numpy()), rows, -1)
    last_observed = np.maximum.reduceat(observed, offsets[:-1])  # [S] row of the last finite y
    if np.any(last_observed < offsets[:-1]):
        s = int(np.argmax(last_observed < offsets[:-1]))
        raise DataValidationError(f"column 'y': series {ids[s]!r} has no observed value")
    lengths = np.diff(offsets)
    future = rows > np.repeat(last_observed, lengths)  # [N]
    history, _, _ = validate_frame(
        frame[~future],
        min_length=L,
        futr_exog=spec.futr_exog,
        static_cols=spec.static_cols,
        length_rule=f"input_size {L}",
    )
    n_history = last_observed - offsets[:-1] + 1  # [S]
    kind = spec.scaler if scaler is None else scaler.kind
    fitted = SeriesScaler(kind).fit_frame(history, n_history, spec.futr_exog)
    if scaler is not None:
        fitted = fitted.update_from(scaler)
    panel = Panel.from_frame(history, spec, fitted)

    S, n_cal = len(ids), len(spec.calendar)
    end = panel.offsets[1:]  # [S] one past the last history row
    input_rows = end[:, None] + np.arange(-L, 0)  # [S, L]
    future_ds = future_grid(panel.ds[end - 1], freq, H)  # [S, H]
    futr = np.empty((S, H, spec.n_futr), dtype=np.float32)  # [S, H, C]
    futr[..., :n_cal] = calendar_features(future_ds.ravel(), spec.calendar).reshape(S, H, n_cal)
    if spec.futr_exog:
        futr[..., n_cal:] = _future_exog(frame, ids, last_observed, lengths - n_history, spec, H, fitted)
    batch = {
        "x": torch.from_numpy(panel.inputs(input_rows)),
        "futr": torch.from_numpy(futr),
        "static": torch.from_numpy(panel.static),
        "loc": torch.from_numpy(panel.loc),
        "scale": torch.from_numpy(panel.scale),
        "series": torch.arange(S, dtype=torch.int64),
        "t": torch.from_numpy(n_history.astype(np.int64)),
    }
    return batch, panel.ids, future_ds


def _future_exog(
    frame: pd.DataFrame,
    ids: list[str],
    last_observed: np.ndarray,
    n_future: np.ndarray,
    spec: FeatureSpec,
    horizon: int,
    scaler: SeriesScaler,
) -> np.ndarray:
    """Standardised known-future exogenous values of the ``horizon`` future rows: float32 [S, H, K]."""
    short = n_future < horizon
    if short.any():
        s = int(np.argmax(short))
        raise DataValidationError(
            f"column {spec.futr_exog[0]!r} (futr_exog): series {ids[s]!r} has {n_future[s]} future "
            f"rows; {horizon} are needed to carry known-future values"
        )
    S, K = len(ids), len(spec.futr_exog)
    rows = (last_observed + 1)[:, None] + np.arange(horizon)  # [S, H]
    values = frame[list(spec.futr_exog)].to_numpy(np.float64)[rows]  # [S, H, K]
    missing = ~np.isfinite(values)
    if missing.any():
        s, _, k = np.unravel_index(int(np.argmax(missing)), missing.shape)
        raise DataValidationError(
            f"column {spec.futr_exog[k]!r} (futr_exog): series {ids[s]!r} lacks known-future values "
            f"for {int(missing[s, :, k].sum())} of the {horizon} forecast steps"
        )
    flat = values.reshape(S * horizon, K)  # [S*H, K]
    scaled = scaler.transform_exog(flat, np.arange(S + 1) * horizon)
    return scaled.reshape(S, horizon, K)  # [S, H, K]
