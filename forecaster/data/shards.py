"""Training from a panel larger than memory: a folder (or glob) of Parquet or CSV shards, each
holding whole series.

One pass over the shards (:func:`scan_shards`) validates every series, fits the per-series
scaler on its training rows, counts the training windows of each shard and keeps only each
series' tail (the rows the validation and test windows read). The training windows then stream
from the shards, shard by shard (:class:`ShardWindows`): every epoch, each consumer (a DDP rank,
times the DataLoader workers of that rank) reads its own shards once, in a shuffled order, and
yields the same number of batches as every other consumer, so that DDP's gradient exchanges
stay in step. Memory holds one shard, the scaler and the tails, not the panel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from forecaster.data.features import FeatureSpec
from forecaster.data.frames import (
    DataValidationError,
    load_frame,
    same_freq,
    series_offsets,
    validate_frame,
)
from forecaster.data.scalers import SeriesScaler
from forecaster.data.splits import split_windows
from forecaster.data.windows import Panel, WindowDataset

log = logging.getLogger(__name__)


@dataclass
class ShardScan:
    """What one pass over the shards found.

    Attributes:
        files: the shards, in name order.
        windows: training windows of each shard (``stride`` apart).
        scaler: the per-series scaler fitted on every series' training rows.
        tail: each series' last rows (enough for its validation and test windows), validated.
        freq: the frequency shared by every shard.
        series, rows: totals over the panel.
    """

    files: list[Path]
    windows: np.ndarray
    scaler: SeriesScaler
    tail: pd.DataFrame
    freq: str | int
    series: int
    rows: int


def _training_cut(clean: pd.DataFrame, val_size: int, test_size: int) -> np.ndarray:
    return np.diff(series_offsets(clean)[1]) - val_size - test_size  # [S] training rows


def _shard(path: Path, spec: FeatureSpec, val_size: int, test_size: int, fill: str | None
           ) -> tuple[pd.DataFrame, str | int]:
    L, H = spec.input_size, spec.horizon
    try:
        clean, freq, _ = validate_frame(
            load_frame(path), min_length=L + H + val_size + test_size, fill=fill,
            futr_exog=spec.futr_exog, static_cols=spec.static_cols,
            length_rule=f"input_size {L} + horizon {H} + val_size {val_size} + "
                        f"test_size {test_size}")
    except DataValidationError as err:
        raise DataValidationError(f"shard {path}: {err}") from None
    return clean, freq


def scan_shards(files: Sequence[Path], spec: FeatureSpec, *, val_size: int, test_size: int,
                stride: int = 1, fill: str | None = None) -> ShardScan:
    """One pass: validate, fit the scaler, count the windows, keep the tails.

    Raises:
        DataValidationError: a shard breaks a rule (the message names the shard), shards
            disagree on the frequency, or a series lies in two shards.
    """
    L, H = spec.input_size, spec.horizon
    keep = L + H + val_size + test_size  # the validation and test windows' rows (and one
    # training window, which build_datasets asks of every series)
    scalers, tails, windows = [], [], []
    freq, seen, rows = None, set(), 0
    for path in files:
        clean, shard_freq = _shard(path, spec, val_size, test_size, fill)
        if freq is not None and not same_freq(freq, shard_freq, at=clean["ds"].to_numpy()):
            raise DataValidationError(f"shard {path}: column 'ds': frequency {shard_freq!r} "
                                      f"differs from the other shards' {freq!r}")
        freq = freq or shard_freq
        ids, offsets = series_offsets(clean)
        again = seen.intersection(ids)
        if again:
            raise DataValidationError(f"shard {path}: series {sorted(again)[0]!r} is also in "
                                      "another shard; a shard must hold whole series")
        seen.update(ids)
        train_end = _training_cut(clean, val_size, test_size)
        scalers.append(SeriesScaler(spec.scaler).fit_frame(clean, train_end, spec.futr_exog))
        series, _ = split_windows(np.zeros_like(train_end), train_end, L, H, stride)
        windows.append(len(series))
        lengths = np.diff(offsets)
        position = np.arange(len(clean)) - np.repeat(offsets[:-1], lengths)
        tails.append(clean[position >= np.repeat(lengths - keep, lengths)])
        rows += len(clean)
    if freq is None:
        raise DataValidationError("no shards to read")
    return ShardScan(list(files), np.asarray(windows, np.int64), SeriesScaler.concat(scalers),
                     pd.concat(tails, ignore_index=True), freq, len(seen), rows)


def assign_shards(windows: np.ndarray, consumers: int) -> list[list[int]]:
    """Shards per consumer, the most windows first to the least loaded (the same answer on
    every rank: it depends only on the counts)."""
    load = np.zeros(consumers, np.int64)
    out: list[list[int]] = [[] for _ in range(consumers)]
    for shard in np.argsort(-windows, kind="stable"):
        c = int(np.argmin(load))
        out[c].append(int(shard))
        load[c] += windows[shard]
    return out


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardWindows(IterableDataset):
    """Training batches streamed from shards (use with ``DataLoader(batch_size=None)``).

    Each consumer (rank x DataLoader worker) reads only its shards, once per epoch, and yields
    ``batches_per_consumer`` batches (the fewest any consumer can fill, so that every rank takes
    as many optimizer steps; the windows beyond are left out that epoch, in a new draw each
    epoch, as a DistributedSampler with ``drop_last`` leaves them out).

    Args:
        scan: the pass over the shards.
        spec: the run's spec (``freq`` set).
        val_size, test_size, stride, fill: the splits and the NaN policy, as the scan had them.
        batch_size: windows per batch.
        seed: the shuffles' seed (and the epoch).
        workers: DataLoader workers per rank.
    """

    def __init__(self, scan: ShardScan, spec: FeatureSpec, *, val_size: int, test_size: int,
                 stride: int, fill: str | None, batch_size: int, seed: int, workers: int = 0):
        self.scan, self.spec = scan, spec
        self.val_size, self.test_size, self.stride, self.fill = val_size, test_size, stride, fill
        self.batch_size, self.seed, self.workers = int(batch_size), int(seed), max(workers, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Start at ``epoch`` (each ``iter()`` is the next epoch: a new shuffle)."""
        self.epoch = int(epoch)

    def consumers(self) -> tuple[int, list[list[int]], int]:
        """This consumer's index, every consumer's shards, and the batches each yields."""
        rank, world = _world()
        info = get_worker_info()
        worker = info.id if info is not None else 0
        total = world * self.workers
        shards = assign_shards(self.scan.windows, total)
        full = self.scan.windows // self.batch_size  # whole batches of each shard
        per = min(int(full[s].sum()) for s in shards)
        if per == 0:
            raise DataValidationError(
                f"{len(self.scan.files)} shards for {total} readers ({world} processes x "
                f"{self.workers} workers): some reader gets fewer than one batch of "
                f"{self.batch_size} windows; use fewer processes or workers, or more shards")
        return rank * self.workers + worker, shards, per

    def __len__(self) -> int:  # batches per rank and epoch
        _, _, per = self.consumers()
        return per * self.workers

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        me, shards, per = self.consumers()
        epoch, self.epoch = self.epoch, self.epoch + 1  # the loader asks for one iter per epoch
        rng = np.random.default_rng([self.seed, epoch, me])
        left = per
        for shard in rng.permutation(shards[me]):
            if left == 0:
                break
            path = self.scan.files[shard]
            data = self._windows(path)
            order = rng.permutation(len(data))
            log.info("epoch %d: reader %d read shard %s (%d windows)", epoch, me, path.name,
                     len(order))
            for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
                yield data[order[start:start + self.batch_size]]
                left -= 1
                if left == 0:
                    break

    def _windows(self, path: Path) -> WindowDataset:
        clean, _ = _shard(path, self.spec, self.val_size, self.test_size, self.fill)
        panel = Panel.from_frame(clean, self.spec, self.scan.scaler)
        train_end = _training_cut(clean, self.val_size, self.test_size)
        return WindowDataset(panel, self.spec, *split_windows(
            np.zeros_like(train_end), train_end, self.spec.input_size, self.spec.horizon,
            self.stride))
