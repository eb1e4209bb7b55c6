"""Per-series scalers fitted on training rows: ``original = scaled * scale + loc``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster.data.frames import series_offsets

SCALER_KINDS = ("standard", "meanabs", "none")
# A scale below this (a constant series) would blow values up; such series keep scale 1.
MIN_SCALE = 1e-8
# Standardised exogenous values are clipped to +-EXOG_CLIP standard deviations: the network never
# sees such values in training, and a covariate far outside its history (1e16 after a constant
# history) would otherwise carry the forecast beyond float32.
EXOG_CLIP = 1e4


def standardise_exog(exog: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(exog - loc) / scale`` in float64 (``loc``, ``scale`` broadcast against ``exog``),
    clipped to +-``EXOG_CLIP`` standard deviations: float32, the network's input."""
    scaled = (np.asarray(exog, dtype=np.float64) - loc) / scale
    return np.clip(scaled, -EXOG_CLIP, EXOG_CLIP).astype(np.float32)


def _stats(kind: str, values: np.ndarray, series: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-series (loc, scale) in float64 from the rows ``values`` of series ``series``."""
    n_series = len(counts)
    if kind == "none":
        return np.zeros(n_series), np.ones(n_series)
    if kind == "meanabs":
        loc = np.zeros(n_series)
        scale = np.bincount(series, np.abs(values), n_series) / counts
    else:
        loc = np.bincount(series, values, n_series) / counts
        scale = np.sqrt(np.bincount(series, (values - loc[series]) ** 2, n_series) / counts)
    return loc, np.where(scale < MIN_SCALE, 1.0, scale)


class SeriesScaler:
    """Per-series scaling of the target (``kind``) and of known-future exogenous columns.

    The target uses ``kind``: ``"standard"`` (loc = mean, scale = std), ``"meanabs"``
    (loc = 0, scale = mean |y|) or ``"none"``; exogenous columns are always standardised. Stats
    come from training rows only and are kept per series id, so a scaler saved with a model is
    reused at inference (:meth:`to_dict` / :meth:`from_dict` round-trip exactly).

    Attributes:
        kind: target scaler kind.
        ids: series ids, the row order of every stats array.
        loc, scale: float32 [S] target stats.
        exog_names: exogenous columns, the column order of ``exog_loc``/``exog_scale``.
        exog_loc, exog_scale: float32 [S, K] exogenous stats.
    """

    def __init__(self, kind: str = "standard") -> None:
        """Creates an unfitted scaler.

        Args:
            kind: one of ``SCALER_KINDS``.
        """
        if kind not in SCALER_KINDS:
            raise ValueError(f"scaler kind must be one of {SCALER_KINDS}, got {kind!r}")
        self.kind = kind
        self.ids: list[str] = []
        self.loc = np.zeros(0, dtype=np.float32)
        self.scale = np.ones(0, dtype=np.float32)
        self.exog_names: tuple[str, ...] = ()
        self.exog_loc = np.zeros((0, 0), dtype=np.float32)
        self.exog_scale = np.ones((0, 0), dtype=np.float32)

    def fit(
        self,
        y: np.ndarray,
        offsets: np.ndarray,
        train_end: np.ndarray,
        ids: Sequence[str],
        exog: np.ndarray | None = None,
        exog_names: Sequence[str] = (),
    ) -> SeriesScaler:
        """Fits the stats of each series on its first ``train_end[s]`` rows.

        Args:
            y: [N] target values of all series, series after series.
            offsets: int [S+1], rows of series ``s`` are ``offsets[s]:offsets[s+1]``.
            train_end: int [S], number of leading rows of each series that are training rows.
            ids: S series ids.
            exog: [N, K] known-future exogenous values, or ``None`` for K = 0.
            exog_names: K column names of ``exog``.

        Returns:
            ``self``, fitted.
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        train_end = np.asarray(train_end, dtype=np.int64)
        if len(ids) != len(lengths) or train_end.shape != lengths.shape:
            raise ValueError(f"{len(ids)} ids and {train_end.shape} train_end for {len(lengths)} series")
        if np.any((train_end < 1) | (train_end > lengths)):
            raise ValueError("train_end must lie in [1, series length] for every series")
        series = np.repeat(np.arange(len(lengths)), lengths)  # [N]
        train = np.arange(offsets[-1]) - offsets[series] < train_end[series]  # [N]
        loc, scale = _stats(self.kind, np.asarray(y, dtype=np.float64)[train], series[train], train_end)
        self.ids = [str(i) for i in ids]
        self.loc, self.scale = loc.astype(np.float32), scale.astype(np.float32)
        self.exog_names = tuple(exog_names)
        k = len(self.exog_names)
        self.exog_loc = np.zeros((len(lengths), k), dtype=np.float32)  # [S, K]
        self.exog_scale = np.ones((len(lengths), k), dtype=np.float32)  # [S, K]
        for j in range(k):
            col = np.asarray(exog[:, j], dtype=np.float64)[train]
            col_loc, col_scale = _stats("standard", col, series[train], train_end)
            self.exog_loc[:, j], self.exog_scale[:, j] = col_loc, col_scale
        return self

    def fit_frame(self, clean: pd.DataFrame, train_end: np.ndarray, exog_names: Sequence[str] = ()) -> SeriesScaler:
        """Fits on a frame sorted by :func:`~forecaster.data.validate_frame` (see :meth:`fit`).

        Args:
            clean: validated long frame.
            train_end: int [S], number of leading training rows of each series, in id order.
            exog_names: known-future exogenous columns of ``clean`` to standardise.

        Returns:
            ``self``, fitted.
        """
        ids, offsets = series_offsets(clean)
        exog = clean[list(exog_names)].to_numpy(np.float64)  # [N, K]
        return self.fit(clean["y"].to_numpy(), offsets, train_end, ids, exog=exog, exog_names=exog_names)

    @staticmethod
    def _apply(values: np.ndarray, offsets: np.ndarray, loc: np.ndarray, scale: np.ndarray, inverse: bool) -> np.ndarray:
        """``(values - loc) / scale`` or its inverse, with per-series stats repeated over rows."""
        lengths = np.diff(np.asarray(offsets, dtype=np.int64))
        row_loc = np.repeat(loc, lengths, axis=0)  # [N] or [N, K]
        row_scale = np.repeat(scale, lengths, axis=0)
        if inverse:
            return (np.asarray(values, dtype=np.float64) * row_scale + row_loc).astype(np.float32)
        return ((np.asarray(values, dtype=np.float64) - row_loc) / row_scale).astype(np.float32)

    def transform(self, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Scales targets: float32 [N] from [N] values laid out by ``offsets`` (one block per id)."""
        return self._apply(y, offsets, self.loc, self.scale, inverse=False)

    def inverse(self, y_scaled: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`transform`: original-unit float32 [N]."""
        return self._apply(y_scaled, offsets, self.loc, self.scale, inverse=True)

    def transform_exog(self, exog: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Standardises exogenous values: float32 [N, K] from [N, K] laid out by ``offsets``,
        clipped to +-``EXOG_CLIP`` standard deviations."""
        lengths = np.diff(np.asarray(offsets, dtype=np.int64))
        return standardise_exog(exog, np.repeat(self.exog_loc, lengths, axis=0),
                                np.repeat(self.exog_scale, lengths, axis=0))

    def subset(self, ids: Sequence[str]) -> SeriesScaler:
        """The stats of ``ids``, in that order.

        Raises:
            KeyError: an id is unknown to this scaler.
        """
        position = {sid: i for i, sid in enumerate(self.ids)}
        unknown = [sid for sid in ids if sid not in position]
        if unknown:
            raise KeyError(f"series {unknown[0]!r} is unknown to the scaler ({len(unknown)} unknown)")
        rows = np.array([position[sid] for sid in ids], dtype=np.int64)
        return self._take(list(ids), rows, self)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each id in this scaler's stats, -1 for ids it does not know: int64 [len(ids)].

        The id -> row map is built once per ``ids`` list and cached (serving looks ids up on
        every request).
        """
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] is not self.ids or cached[1] != len(self.ids):
            cached = (self.ids, len(self.ids), {sid: i for i, sid in enumerate(self.ids)})
            self.__dict__["_positions"] = cached
        position = cached[2]
        return np.fromiter((position.get(sid, -1) for sid in ids), dtype=np.int64, count=len(ids))

    def update_from(self, other: SeriesScaler) -> SeriesScaler:
        """A copy whose series known to ``other`` take ``other``'s stats (e.g. training stats).

        Args:
            other: fitted scaler of the same kind and exogenous columns.
        """
        if other.kind != self.kind or other.exog_names != self.exog_names:
            raise ValueError(
                f"scaler ({other.kind}, {other.exog_names}) does not match ({self.kind}, {self.exog_names})"
            )
        out = self._take(self.ids, np.arange(len(self.ids)), self)
        position = {sid: i for i, sid in enumerate(other.ids)}
        mine = np.array([i for i, sid in enumerate(self.ids) if sid in position], dtype=np.int64)
        theirs = np.array([position[self.ids[i]] for i in mine], dtype=np.int64)
        out.loc[mine], out.scale[mine] = other.loc[theirs], other.scale[theirs]
        out.exog_loc[mine], out.exog_scale[mine] = other.exog_loc[theirs], other.exog_scale[theirs]
        return out

    @classmethod
    def _take(cls, ids: list[str], rows: np.ndarray, source: SeriesScaler) -> SeriesScaler:
        """A new scaler holding the stats rows ``rows`` of ``source`` under ``ids``."""
        out = cls(source.kind)
        out.ids = ids
        out.loc, out.scale = source.loc[rows].copy(), source.scale[rows].copy()
        out.exog_names = source.exog_names
        out.exog_loc, out.exog_scale = source.exog_loc[rows].copy(), source.exog_scale[rows].copy()
        return out

    @classmethod
    def concat(cls, scalers: Sequence[SeriesScaler]) -> SeriesScaler:
        """One scaler of the series of ``scalers`` (each fitted on other series: shards)."""
        first = scalers[0]
        out = cls(first.kind)
        out.ids = [sid for s in scalers for sid in s.ids]
        out.loc = np.concatenate([s.loc for s in scalers])
        out.scale = np.concatenate([s.scale for s in scalers])
        out.exog_names = first.exog_names
        out.exog_loc = np.concatenate([s.exog_loc for s in scalers])
        out.exog_scale = np.concatenate([s.exog_scale for s in scalers])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; float32 values survive a JSON round trip exactly."""
        return {
            "kind": self.kind,
            "ids": list(self.ids),
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "exog_names": list(self.exog_names),
            "exog_loc": self.exog_loc.tolist(),
            "exog_scale": self.exog_scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesScaler:
        """Inverse of :meth:`to_dict`."""
        out = cls(d["kind"])
        out.ids = [str(i) for i in d["ids"]]
        out.loc = np.asarray(d["loc"], dtype=np.float32)
        out.scale = np.asarray(d["scale"], dtype=np.float32)
        out.exog_names = tuple(d["exog_names"])
        shape = (len(out.ids), len(out.exog_names))
        out.exog_loc = np.asarray(d["exog_loc"], dtype=np.float32).reshape(shape)
        out.exog_scale = np.asarray(d["exog_scale"], dtype=np.float32).reshape(shape)
        return out
