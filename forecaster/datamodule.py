"""The data side of a run, built from the ``data`` config group with ``hydra.utils.instantiate``
(as lightning-hydra-template builds its DataModule, without Lightning): where the series come
from, how they are checked and cut into windows, and the loaders. Every ``data.*`` rule is
checked here, when the object is built, before any file is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from torch.utils.data import DataLoader

from forecaster.data import (
    CALENDAR_FEATURES,
    SCALER_KINDS,
    Datasets,
    FeatureSpec,
    build_datasets,
    window_loader,
)
from forecaster.data.files import input_files, is_many
from forecaster.data.shards import ShardScan, ShardWindows, scan_shards
from forecaster.datasets import DATA_SOURCES, load_configured, source_uri
from forecaster.errors import check, positive_int

FILLS = (None, "interpolate", "ffill")


def auto_batch_size(windows: int, smallest: int = 64, largest: int = 512,
                    steps: int = 128) -> int:
    """``smallest``, doubled up to ``largest`` while an epoch of ``windows`` would take more
    than ``steps`` steps. A panel of 1,400 short monthly series (42,000 windows) trains in
    batches of 512: 4.4x faster than in 64, test MASE 0.789 against 0.786
    (docs/benchmarks.md); a single series keeps 64."""
    size = smallest
    while size < largest and windows > steps * size:
        size *= 2
    return size


class DataModule:
    """Series -> validated panel -> train / validation / test windows -> loaders.

    Args:
        source: a named source (``forecaster.datasets``: co2, csv, m4_hourly...).
        path, wide, time_col, id_col, target_col: a user's file and its columns (``csv``).
        loader: instead of ``source``, any function returning a long frame, as a config node
            with a ``_target_`` (built with ``instantiate`` when the data is loaded).
        fill: NaN policy of ``y``: None (an error), ``interpolate`` or ``ffill``.
        input_size: window length (None: decided from the seasons and the history).
        horizon: steps forecast at once.
        val_size: validation steps before the test split (None: up to three horizons).
        test_size: steps at the end of each series kept for the test.
        stride: steps between training windows.
        scaler: per-series scaler of the training rows (``none``: the network normalises).
        calendar, futr_exog, static_cols: features (calendar names, covariate columns).
        season_length: None: from the frequency.
        batch_size: training windows per batch, or ``auto``: 64, doubled (up to 512) while an
            epoch would take more than 128 steps, so a large panel's epoch costs about as many
            steps as a single series' (``auto_batch_size``).
    """

    def __init__(self, source: str = "co2", path: str | None = None, wide: bool = False,
                 loader: Mapping | None = None, fill: str | None = None,
                 time_col: str = "ds", id_col: str = "unique_id", target_col: str = "y",
                 input_size: int | None = None, horizon: int = 1, val_size: int | None = None,
                 test_size: int = 1, stride: int = 1, scaler: str = "none",
                 calendar: Sequence[str] = (), futr_exog: Sequence[str] = (),
                 static_cols: Sequence[str] = (), season_length: int | None = None,
                 batch_size: int | str = "auto"):
        check("data.source", source, loader is not None or source in DATA_SOURCES,
              f"one of {list(DATA_SOURCES)} (or set data.loader._target_)")
        check("input_size", input_size, input_size is None or positive_int(input_size),
              "null or a positive integer")
        check("horizon", horizon, positive_int(horizon), "a positive integer")
        check("data.fill", fill, fill in FILLS, "null, interpolate or ffill")
        check("data.val_size", val_size, val_size is None or (
            isinstance(val_size, int) and not isinstance(val_size, bool) and val_size >= 0),
            "null or an integer >= 0")
        check("data.test_size", test_size, positive_int(test_size),
              "a positive integer (the test split the run is scored and gated on)")
        check("data.stride", stride, positive_int(stride), "a positive integer")
        check("data.batch_size", batch_size, batch_size == "auto" or positive_int(batch_size),
              "auto or a positive integer")
        check("data.scaler", scaler, scaler in SCALER_KINDS, f"one of {list(SCALER_KINDS)}")
        check("data.calendar", list(calendar), all(c in CALENDAR_FEATURES for c in calendar),
              f"a list of {list(CALENDAR_FEATURES)}")
        check("data.season_length", season_length, season_length is None
              or positive_int(season_length), "null or a positive integer")
        self.source, self.path, self.wide, self.loader = source, path, bool(wide), loader
        self.fill, self.columns = fill, {"time_col": time_col, "id_col": id_col,
                                         "target_col": target_col}
        self.input_size, self.horizon = input_size, int(horizon)
        self.val_size, self.test_size, self.stride = val_size, int(test_size), int(stride)
        self.scaler, self.calendar = scaler, tuple(calendar)
        self.futr_exog, self.static_cols = tuple(futr_exog), tuple(static_cols)
        self.season_length, self.batch_setting = season_length, batch_size
        self.batch_size = None if batch_size == "auto" else int(batch_size)  # auto: in setup

    @property
    def sharded(self) -> bool:
        """``data.path`` names a folder or a glob of shards (``forecaster.data.shards``)."""
        return self.source == "csv" and self.path is not None and is_many(str(self.path))

    def load(self, data_dir: str | Path | None = None) -> pd.DataFrame:
        """The long frame, as the source (or ``loader``) gives it; for shards, one pass over
        them (the scaler, the windows per shard) and the frame of each series' tail."""
        if self.sharded:
            return self._scan_shards().tail
        return load_configured({"source": self.source, "path": self.path, "wide": self.wide,
                                "loader": self.loader, **self.columns}, data_dir)

    def _scan_shards(self) -> ShardScan:
        check("input_size", self.input_size, self.input_size is not None,
              "an integer when data.path is a folder or glob of shards (it cannot be decided "
              "without reading every series)")
        check("data.val_size", self.val_size, self.val_size is not None,
              "an integer when data.path is a folder or glob of shards")
        check("data.path", self.path, not self.wide and self.columns == {
            "time_col": "ds", "id_col": "unique_id", "target_col": "y"},
            "shards in the long format with the columns unique_id, ds, y (data.wide=false, "
            "the default column names)")
        files, _ = input_files(str(self.path), key="data.path")
        self.scan = scan_shards(files, self._spec(self.input_size), val_size=int(self.val_size),
                                test_size=self.test_size, stride=self.stride, fill=self.fill)
        return self.scan

    @property
    def uri(self) -> str:
        """Where the rows come from: the file read, the public URL, or the loader function."""
        return source_uri(self.source, self.path, self.loader)

    def setup(self, df: pd.DataFrame, input_size: int, val_size: int) -> Datasets:
        """Validate ``df`` and cut it into train / validation / test windows of ``input_size``
        (the run's design decides it and ``val_size`` when the config leaves them null). Series
        too short for one window of each split are left out (``Datasets.left_out``); only a
        panel with no series long enough is refused."""
        scaler = self.scan.scaler if self.sharded else None  # fitted on every training row
        data = build_datasets(df, self._spec(input_size), val_size=int(val_size),
                              test_size=self.test_size, stride=self.stride, fill=self.fill,
                              scaler=scaler, drop_short=not self.sharded)
        if self.batch_setting == "auto":
            windows = int(self.scan.windows.sum()) if self.sharded else len(data.train)
            self.batch_size = auto_batch_size(windows)
        return data

    def _spec(self, input_size: int) -> FeatureSpec:
        return FeatureSpec(input_size=int(input_size), horizon=self.horizon,
                           calendar=self.calendar, futr_exog=self.futr_exog,
                           static_cols=self.static_cols, scaler=self.scaler)

    def train_loader(self, data: Datasets, seed: int) -> DataLoader:
        """Shuffled training batches: of the windows in memory, or streamed from the shards
        (each DDP process reads its own shards)."""
        if self.sharded:
            stream = ShardWindows(self.scan, data.spec, val_size=int(self.val_size),
                                  test_size=self.test_size, stride=self.stride, fill=self.fill,
                                  batch_size=self.batch_size, seed=seed)
            return DataLoader(stream, batch_size=None)
        return window_loader(data.train, batch_size=self.batch_size, shuffle=True, seed=seed)

    def val_loader(self, data: Datasets) -> DataLoader | None:
        """Validation windows in larger batches (no gradients), or None when there are none."""
        if not len(data.val):
            return None
        return window_loader(data.val, batch_size=4 * self.batch_size, shuffle=False)
