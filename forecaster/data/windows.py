"""The panel (all series as flat arrays) and the windows cut from it as index views.

A window is two integers, its series ``s`` and the position ``t`` (inside the series) of its
first target step: inputs are rows ``offsets[s] + t - L ... offsets[s] + t - 1``, targets rows
``offsets[s] + t ... offsets[s] + t + H - 1``. Batches are gathered with one fancy-indexing
call over the flat arrays, so memory stays O(rows) whatever the number of windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from forecaster.data.features import FeatureSpec, calendar_features
from forecaster.data.frames import DataValidationError, series_offsets
from forecaster.data.scalers import SeriesScaler


def feature_matrix(
    ds: np.ndarray, exog: np.ndarray, offsets: np.ndarray, spec: FeatureSpec, scaler: SeriesScaler
) -> np.ndarray:
    """Known-future features of every row: calendar features, then standardised exogenous values.

    Args:
        ds: [N] time stamps.
        exog: [N, K] raw values of ``spec.futr_exog``.
        offsets: int64 [S+1] series layout of the rows.
        spec: feature specification.
        scaler: scaler fitted for the S series, in row order.

    Returns:
        float32 [N, C].
    """
    if spec.calendar and ds.dtype.kind in "iu":
        raise DataValidationError(
            f"column 'ds' is an integer index: calendar features {list(spec.calendar)} need datetimes"
        )
    n_cal = len(spec.calendar)
    out = np.empty((len(ds), spec.n_futr), dtype=np.float32)  # [N, C]
    out[:, :n_cal] = calendar_features(ds, spec.calendar)
    out[:, n_cal:] = scaler.transform_exog(exog, offsets)
    return out


@dataclass
class Panel:
    """All series of a frame as flat, row-aligned arrays (series after series, time-sorted).

    Attributes:
        ids: S series ids.
        offsets: int64 [S+1]; rows of series ``s`` are ``offsets[s]:offsets[s+1]``.
        ds: [N] time stamps, datetime64[ns] or int64.
        y: float32 [N] raw target.
        y_scaled: float32 [N] scaled target.
        features: float32 [N, C] known-future features of each row (calendar, scaled exogenous).
            As every exogenous column is known-future, the history features of the encoder
            (``F - 1`` columns) are these same ``C`` columns.
        static: float32 [S, n_static] static features.
        loc, scale: float32 [S] target scaler stats.
    """

    ids: list[str]
    offsets: np.ndarray
    ds: np.ndarray
    y: np.ndarray
    y_scaled: np.ndarray
    features: np.ndarray
    static: np.ndarray
    loc: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_frame(cls, clean: pd.DataFrame, spec: FeatureSpec, scaler: SeriesScaler) -> Panel:
        """Builds the panel of a validated frame.

        Args:
            clean: frame returned by :func:`~forecaster.data.validate_frame`.
            spec: feature specification.
            scaler: fitted scaler that knows every series id of ``clean``.

        Raises:
            DataValidationError: a series is unknown to ``scaler``, or calendar features are
                asked of an integer ``ds``.
            ValueError: the scaler's exogenous columns differ from ``spec.futr_exog``.
        """
        if scaler.exog_names != spec.futr_exog:
            raise ValueError(f"scaler exog columns {scaler.exog_names} != spec.futr_exog {spec.futr_exog}")
        ids, offsets = series_offsets(clean)
        try:
            scaler = scaler.subset(ids)
        except KeyError as err:
            raise DataValidationError(f"column 'unique_id': {err.args[0]}") from err
        ds = clean["ds"].to_numpy()
        y = clean["y"].to_numpy(np.float64)
        exog = clean[list(spec.futr_exog)].to_numpy(np.float64)  # [N, K]
        static = clean[list(spec.static_cols)].to_numpy(np.float32)[offsets[:-1]]  # [S, n_static]
        return cls(
            ids=ids,
            offsets=offsets,
            ds=ds,
            y=y.astype(np.float32),
            y_scaled=scaler.transform(y, offsets),
            features=feature_matrix(ds, exog, offsets, spec, scaler),
            static=static,
            loc=scaler.loc,
            scale=scaler.scale,
        )

    @property
    def lengths(self) -> np.ndarray:
        """int64 [S] number of rows of each series."""
        return np.diff(self.offsets)

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """Encoder inputs of input rows ``rows`` [B, L]: float32 [B, L, F] (scaled target first)."""
        out = np.empty((*rows.shape, 1 + self.features.shape[1]), dtype=np.float32)  # [B, L, F]
        out[..., 0] = self.y_scaled[rows]
        out[..., 1:] = self.features[rows]
        return out


class WindowDataset(Dataset):
    """Windows of a panel, given as index arrays; ``ds[idx]`` returns a whole batch.

    Args:
        panel: the panel the windows read.
        spec: feature specification (``input_size`` L and ``horizon`` H).
        series: int [W] series index of each window.
        t: int [W] position inside its series of each window's first target step; needs
            ``L <= t`` and ``t + H <= length``.
    """

    def __init__(self, panel: Panel, spec: FeatureSpec, series: np.ndarray, t: np.ndarray) -> None:
        self.panel = panel
        self.spec = spec
        self.series = np.asarray(series, dtype=np.int64)
        self.t = np.asarray(t, dtype=np.int64)
        if self.series.shape != self.t.shape or self.series.ndim != 1:
            raise ValueError(f"series {self.series.shape} and t {self.t.shape} must be equal 1-D shapes")
        length = panel.lengths[self.series]
        outside = (self.t < spec.input_size) | (self.t + spec.horizon > length)
        if outside.any():
            w = int(np.argmax(outside))
            raise ValueError(
                f"window {w} (series {panel.ids[self.series[w]]!r}, t={self.t[w]}) does not fit: "
                f"needs {spec.input_size} <= t <= length {length[w]} - horizon {spec.horizon}"
            )
        self._input_steps = np.arange(-spec.input_size, 0)
        self._target_steps = np.arange(spec.horizon)

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, idx: int | Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Gathers the windows ``idx`` (an int gives a batch of one) as a batch-contract dict."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))  # [B]
        series, t = self.series[idx], self.t[idx]
        first = self.panel.offsets[series] + t  # [B] row of the first target
        input_rows = first[:, None] + self._input_steps  # [B, L]
        target_rows = first[:, None] + self._target_steps  # [B, H]
        return {
            "x": torch.from_numpy(self.panel.inputs(input_rows)),
            "futr": torch.from_numpy(self.panel.features[target_rows]),  # [B, H, C]
            "static": torch.from_numpy(self.panel.static[series]),  # [B, n_static]
            "y": torch.from_numpy(self.panel.y_scaled[target_rows]),  # [B, H]
            "loc": torch.from_numpy(self.panel.loc[series]),
            "scale": torch.from_numpy(self.panel.scale[series]),
            "series": torch.from_numpy(series),
            "t": torch.from_numpy(t),
        }


def window_loader(
    ds: WindowDataset, batch_size: int, shuffle: bool, seed: int | None = None, drop_last: bool = False
) -> DataLoader:
    """A DataLoader over windows that gathers each batch in one call of ``ds[indices]``.

    Args:
        ds: the windows.
        batch_size: windows per batch.
        shuffle: draw windows in random order each epoch.
        seed: seed of the shuffling generator (reproducible order); ``None`` uses torch's RNG.
        drop_last: drop the last, smaller batch.

    Returns:
        DataLoader yielding batch-contract dicts (``num_workers=0``).
    """
    if shuffle:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        sampler = RandomSampler(ds, generator=generator)
    else:
        sampler = SequentialSampler(ds)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
    return DataLoader(ds, sampler=batches, batch_size=None, num_workers=0)
