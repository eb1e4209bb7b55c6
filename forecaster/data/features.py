"""Feature specification, calendar features and future time stamps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from forecaster.data.scalers import SCALER_KINDS

# name -> (zero-based value of a time stamp, its largest value); encoded as value / max - 0.5.
CALENDAR_FEATURES: dict[str, tuple[Callable[[pd.DatetimeIndex], Any], float]] = {
    "minute": (lambda idx: idx.minute, 59.0),
    "hour": (lambda idx: idx.hour, 23.0),
    "dayofweek": (lambda idx: idx.dayofweek, 6.0),
    "dayofmonth": (lambda idx: idx.day - 1, 30.0),
    "dayofyear": (lambda idx: idx.dayofyear - 1, 365.0),
    "month": (lambda idx: idx.month - 1, 11.0),
    "weekofyear": (lambda idx: idx.isocalendar().week.to_numpy(np.int64) - 1, 52.0),
}


@dataclass(frozen=True)
class FeatureSpec:
    """What a window holds; saved with a model so serving builds the same inputs.

    Args:
        input_size: ``L``, past time steps fed to the encoder.
        horizon: ``H``, future time steps predicted.
        calendar: calendar feature names (keys of ``CALENDAR_FEATURES``); datetime ``ds`` only.
        futr_exog: known-future exogenous columns, standardised per series with train-row stats.
        static_cols: static per-series numeric columns, used as they are.
        scaler: target scaler kind, one of ``SCALER_KINDS``.
        freq: frequency of ``ds`` (offset alias or integer step); ``None`` until inferred.
    """

    input_size: int
    horizon: int
    calendar: tuple[str, ...] = ()
    futr_exog: tuple[str, ...] = ()
    static_cols: tuple[str, ...] = ()
    scaler: str = "standard"
    freq: str | int | None = None

    def __post_init__(self) -> None:
        for name in ("calendar", "futr_exog", "static_cols"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.input_size < 1 or self.horizon < 1:
            raise ValueError(f"input_size and horizon must be >= 1, got {self.input_size}, {self.horizon}")
        unknown = [c for c in self.calendar if c not in CALENDAR_FEATURES]
        if unknown:
            raise ValueError(f"unknown calendar features {unknown}; known: {list(CALENDAR_FEATURES)}")
        if self.scaler not in SCALER_KINDS:
            raise ValueError(f"scaler must be one of {SCALER_KINDS}, got {self.scaler!r}")

    @property
    def n_futr(self) -> int:
        """``C``: known-future features per step (calendar + known-future exogenous)."""
        return len(self.calendar) + len(self.futr_exog)

    @property
    def n_features(self) -> int:
        """``F``: encoder features per step (scaled target + the ``C`` features)."""
        return 1 + self.n_futr

    @property
    def n_static(self) -> int:
        """Static features per series."""
        return len(self.static_cols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def calendar_features(ds: pd.DatetimeIndex | np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Calendar features of time stamps, each encoded as ``value / max - 0.5`` in [-0.5, 0.5].

    Args:
        ds: N time stamps (datetime-like).
        names: feature names, keys of ``CALENDAR_FEATURES``.

    Returns:
        float32 array [N, len(names)].

    Raises:
        ValueError: a name is unknown, or ``ds`` is an integer index while ``names`` is not empty.
    """
    out = np.empty((len(ds), len(names)), dtype=np.float32)  # [N, C]
    if not names:
        return out
    if np.asarray(ds).dtype.kind in "iu":
        raise ValueError(f"calendar features {list(names)} need datetime ds; got an integer index")
    idx = pd.DatetimeIndex(ds)
    for j, name in enumerate(names):
        if name not in CALENDAR_FEATURES:
            raise ValueError(f"unknown calendar feature {name!r}; known: {list(CALENDAR_FEATURES)}")
        value, largest = CALENDAR_FEATURES[name]
        out[:, j] = np.asarray(value(idx), dtype=np.float64) / largest - 0.5
    return out


def future_grid(last_ds: np.ndarray, freq: str | int, horizon: int) -> np.ndarray:
    """The ``horizon`` time stamps after each of S last time stamps.

    Args:
        last_ds: [S] last time stamps (datetime64 or int64).
        freq: offset alias, or the integer step for integer time stamps.
        horizon: number of future steps.

    Returns:
        [S, H] datetime64[ns] or int64.
    """
    last_ds = np.asarray(last_ds)
    if isinstance(freq, (int, np.integer)):
        return last_ds.astype(np.int64)[:, None] + freq * np.arange(1, horizon + 1)  # [S, H]
    offset = to_offset(freq)
    out = np.empty((len(last_ds), horizon), dtype="datetime64[ns]")  # [S, H]
    current = pd.DatetimeIndex(last_ds.astype("datetime64[ns]"))
    # Calendar offsets (months, years) have no fixed length: step one offset at a time, each
    # step vectorised over the series.
    for h in range(horizon):
        current = current + offset
        out[:, h] = current.as_unit("ns").to_numpy()
    return out


def future_timestamps(
    last_ds: pd.Timestamp | np.datetime64 | int, freq: str | int, horizon: int
) -> pd.DatetimeIndex | np.ndarray:
    """The ``horizon`` time stamps following ``last_ds``.

    Args:
        last_ds: last observed time stamp (datetime-like or integer).
        freq: offset alias (``"h"``, ``"D"``, ``"MS"``...) or the integer step.
        horizon: number of future steps.

    Returns:
        ``pd.DatetimeIndex`` for datetime stamps, int64 array for an integer index.
    """
    if isinstance(freq, (int, np.integer)):
        return future_grid(np.array([last_ds], dtype=np.int64), freq, horizon)[0]
    last = np.array([pd.Timestamp(last_ds).to_datetime64()])
    return pd.DatetimeIndex(future_grid(last, freq, horizon)[0])
