"""One inference window per series: the last ``input_size`` observed rows and the future steps.

:func:`inference_batch` validates a long frame and turns it into flat per-series arrays;
:func:`batch_from_arrays` (numpy only for a model without calendar features) builds the batch
from such arrays. The service calls the array core directly, so both paths compute the same
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from forecaster.data.features import FeatureSpec, calendar_features, future_grid
from forecaster.data.frames import DataValidationError, same_freq, sort_frame, validate_frame
from forecaster.data.scalers import SeriesScaler, _stats, standardise_exog


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
    if spec.freq is not None and not same_freq(spec.freq, freq, at=frame["ds"].to_numpy()):
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
    hist_offsets = np.concatenate([[0], np.cumsum(n_history)]).astype(np.int64)  # [S+1]
    futr_exog = None
    if spec.futr_exog:
        futr_exog = _future_exog(frame, ids, last_observed, lengths - n_history, spec, H)
    return batch_from_arrays(
        history["y"].to_numpy(np.float64),
        hist_offsets,
        ids,
        spec,
        horizon=H,
        scaler=scaler,
        ds=history["ds"].to_numpy(),
        freq=freq,
        exog=history[list(spec.futr_exog)].to_numpy(np.float64) if spec.futr_exog else None,
        futr_exog=futr_exog,
        static=history[list(spec.static_cols)].to_numpy(np.float32)[hist_offsets[:-1]],
    )


def batch_from_arrays(
    y: np.ndarray,
    offsets: np.ndarray,
    ids: Sequence[str],
    spec: FeatureSpec,
    *,
    horizon: int | None = None,
    scaler: SeriesScaler | None = None,
    ds: np.ndarray | None = None,
    freq: str | int | None = None,
    exog: np.ndarray | None = None,
    futr_exog: np.ndarray | None = None,
    static: np.ndarray | None = None,
) -> tuple[dict[str, torch.Tensor], list[str], np.ndarray | None]:
    """Builds the inference batch of S series given as flat arrays; the core of every prediction.

    :func:`inference_batch` (the pyfunc model, ``Forecaster.predict``) and the service both
    end here, so they compute identical numbers. Everything is vectorised over the
    concatenated series: the scaler stats (the formulas of :class:`SeriesScaler`: training
    stats for the ids ``scaler`` knows, stats of the supplied history otherwise), the gather of
    the last ``input_size`` rows, calendar features and known-future exogenous scaling.

    Args:
        y: [N] history targets (finite), series after series, oldest first.
        offsets: int [S+1]; the history of series ``s`` is ``y[offsets[s]:offsets[s+1]]``, at
            least ``input_size`` rows.
        ids: S series ids, the batch order.
        spec: feature specification the model was trained with.
        horizon: future steps, ``spec.horizon`` when ``None``.
        scaler: the training scaler, or ``None`` to fit every series on its history.
        ds: [N] time stamps of the history rows (datetime64 or int64); needed for calendar
            features and for ``future_ds``. ``None``: no time stamps (``future_ds`` is ``None``).
        freq: frequency of ``ds``, ``spec.freq`` when ``None``.
        exog: [N, K] raw history values of ``spec.futr_exog`` (required when K > 0).
        futr_exog: [S, >=H, K] raw known-future values of ``spec.futr_exog`` (K > 0).
        static: [S, n_static] static features (required when ``spec.static_cols``).

    Returns:
        ``(batch, ids, future_ds)``: the batch-contract dict without ``"y"`` (``t`` = number of
        history rows), the ids as str, and the future time stamps [S, H] (``None`` without
        ``ds``).

    Raises:
        DataValidationError: a series is shorter than ``input_size``, a value is not finite,
            or calendar features need datetime ``ds``.
        ValueError: the arrays do not fit together or the scaler does not fit the spec.
    """
    H = spec.horizon if horizon is None else horizon
    L, n_cal, K = spec.input_size, len(spec.calendar), len(spec.futr_exog)
    y = np.asarray(y, dtype=np.float64)  # [N]
    offsets = np.asarray(offsets, dtype=np.int64)  # [S+1]
    ids = [str(i) for i in ids]
    S = len(offsets) - 1
    lengths = np.diff(offsets)  # [S]
    if len(ids) != S or offsets[0] != 0 or offsets[-1] != len(y) or np.any(lengths < 0):
        raise ValueError(f"{len(ids)} ids, offsets ending at {offsets[-1]} for {len(y)} values")
    if scaler is not None and scaler.exog_names != spec.futr_exog:
        raise ValueError(f"scaler exog columns {scaler.exog_names} != spec.futr_exog {spec.futr_exog}")
    short = lengths < L
    if short.any():
        s = int(np.argmax(short))
        raise DataValidationError(
            f"column 'y': series {ids[s]!r} has {lengths[s]} points but at least {L} are needed "
            f"(input_size {L})"
        )
    series = np.repeat(np.arange(S), lengths)  # [N] series of each row
    if not np.isfinite(y).all():
        s = int(series[np.argmax(~np.isfinite(y))])
        raise DataValidationError(f"column 'y': series {ids[s]!r} has NaN/inf values")
    if n_cal and (ds is None or np.asarray(ds).dtype.kind in "iu"):
        raise DataValidationError(
            f"column 'ds' is an integer index: calendar features {list(spec.calendar)} need datetimes"
        )
    if K:
        exog = np.asarray(exog, dtype=np.float64).reshape(len(y), K)  # [N, K]
        futr_exog = np.asarray(futr_exog, dtype=np.float64)[:, :H]  # [S, H, K]
        if futr_exog.shape != (S, H, K):
            raise ValueError(f"futr_exog has shape {futr_exog.shape}, expected {(S, H, K)}")
        for values, what in ((exog, "history"), (futr_exog.reshape(S * H, K), "known-future")):
            bad = ~np.isfinite(values)
            if bad.any():
                i, k = np.unravel_index(int(np.argmax(bad)), bad.shape)
                s = int(series[i]) if what == "history" else int(i) // H
                raise DataValidationError(
                    f"column {spec.futr_exog[k]!r} (futr_exog): series {ids[s]!r} has NaN/inf "
                    f"{what} values; known-future exogenous values must be finite"
                )

    # per-series stats, exactly as SeriesScaler.fit on all history rows (+ update_from)
    kind = spec.scaler if scaler is None else scaler.kind
    loc, scale = (a.astype(np.float32) for a in _stats(kind, y, series, lengths))  # [S]
    exog_loc = np.zeros((S, K), dtype=np.float32)  # [S, K]
    exog_scale = np.ones((S, K), dtype=np.float32)
    for k in range(K):
        col_loc, col_scale = _stats("standard", exog[:, k], series, lengths)
        exog_loc[:, k], exog_scale[:, k] = col_loc, col_scale
    if scaler is not None and scaler.ids:
        pos = scaler.positions(ids)  # [S] row in the training stats, -1 unknown
        known = pos >= 0
        if known.any():
            loc[known], scale[known] = scaler.loc[pos[known]], scaler.scale[pos[known]]
            exog_loc[known], exog_scale[known] = scaler.exog_loc[pos[known]], scaler.exog_scale[pos[known]]

    input_rows = offsets[1:, None] + np.arange(-L, 0)  # [S, L]
    x = np.empty((S, L, spec.n_features), dtype=np.float32)  # [S, L, F]
    # same float64 arithmetic as SeriesScaler.transform, on the gathered rows only
    x[..., 0] = (y[input_rows] - loc[:, None].astype(np.float64)) / scale[:, None].astype(np.float64)
    futr = np.empty((S, H, spec.n_futr), dtype=np.float32)  # [S, H, C]
    future_ds = None
    if ds is not None:
        ds = np.asarray(ds)
        freq = spec.freq if freq is None else freq
        if freq is None:
            raise ValueError("freq is needed to extend ds: pass it or set spec.freq")
        future_ds = future_grid(ds[offsets[1:] - 1], freq, H)  # [S, H]
    if n_cal:
        x[..., 1 : 1 + n_cal] = calendar_features(ds[input_rows].ravel(), spec.calendar).reshape(S, L, n_cal)
        futr[..., :n_cal] = calendar_features(future_ds.ravel(), spec.calendar).reshape(S, H, n_cal)
    if K:
        x_loc, x_scale = exog_loc[:, None, :], exog_scale[:, None, :]  # [S, 1, K]
        # as SeriesScaler.transform_exog, on the gathered rows only
        x[..., 1 + n_cal :] = standardise_exog(exog[input_rows], x_loc, x_scale)
        futr[..., n_cal:] = standardise_exog(futr_exog, x_loc, x_scale)
    if static is None:
        static = np.zeros((S, spec.n_static), dtype=np.float32)
    static = np.asarray(static, dtype=np.float32).reshape(S, spec.n_static)  # [S, n_static]
    batch = {
        "x": torch.from_numpy(x),
        "futr": torch.from_numpy(futr),
        "static": torch.from_numpy(np.ascontiguousarray(static)),
        "loc": torch.from_numpy(loc),
        "scale": torch.from_numpy(scale),
        "series": torch.arange(S, dtype=torch.int64),
        "t": torch.from_numpy(lengths.astype(np.int64)),
    }
    return batch, ids, future_ds


def _future_exog(
    frame: pd.DataFrame,
    ids: list[str],
    last_observed: np.ndarray,
    n_future: np.ndarray,
    spec: FeatureSpec,
    horizon: int,
) -> np.ndarray:
    """Raw known-future exogenous values of the ``horizon`` future rows: float64 [S, H, K]."""
    short = n_future < horizon
    if short.any():
        s = int(np.argmax(short))
        raise DataValidationError(
            f"column {spec.futr_exog[0]!r} (futr_exog): series {ids[s]!r} has {n_future[s]} future "
            f"rows; {horizon} are needed to carry known-future values"
        )
    rows = (last_observed + 1)[:, None] + np.arange(horizon)  # [S, H]
    values = frame[list(spec.futr_exog)].to_numpy(np.float64)[rows]  # [S, H, K]
    missing = ~np.isfinite(values)
    if missing.any():
        s, _, k = np.unravel_index(int(np.argmax(missing)), missing.shape)
        raise DataValidationError(
            f"column {spec.futr_exog[k]!r} (futr_exog): series {ids[s]!r} lacks known-future values "
            f"for {int(missing[s, :, k].sum())} of the {horizon} forecast steps"
        )
    return values
