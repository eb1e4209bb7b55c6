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
from forecaster.datasets import DATA_SOURCES, load_configured, source_uri
from forecaster.errors import check, positive_int

FILLS = (None, "interpolate", "ffill")


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
        batch_size: training windows per batch.
    """

    def __init__(self, source: str = "co2", path: str | None = None, wide: bool = False,
                 loader: Mapping | None = None, fill: str | None = None,
                 time_col: str = "ds", id_col: str = "unique_id", target_col: str = "y",
                 input_size: int | None = None, horizon: int = 1, val_size: int | None = None,
                 test_size: int = 1, stride: int = 1, scaler: str = "none",
                 calendar: Sequence[str] = (), futr_exog: Sequence[str] = (),
                 static_cols: Sequence[str] = (), season_length: int | None = None,
                 batch_size: int = 64):
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
        check("data.batch_size", batch_size, positive_int(batch_size), "a positive integer")
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
        self.season_length, self.batch_size = season_length, int(batch_size)

    def load(self, data_dir: str | Path | None = None) -> pd.DataFrame:
        """The long frame, as the source (or ``loader``) gives it."""
        return load_configured({"source": self.source, "path": self.path, "wide": self.wide,
                                "loader": self.loader, **self.columns}, data_dir)

    @property
    def uri(self) -> str:
        """Where the rows come from: the file read, the public URL, or the loader function."""
        return source_uri(self.source, self.path, self.loader)

    def setup(self, df: pd.DataFrame, input_size: int, val_size: int) -> Datasets:
        """Validate ``df`` and cut it into train / validation / test windows of ``input_size``
        (the run's design decides it and ``val_size`` when the config leaves them null)."""
        spec = FeatureSpec(input_size=int(input_size), horizon=self.horizon,
                           calendar=self.calendar, futr_exog=self.futr_exog,
                           static_cols=self.static_cols, scaler=self.scaler)
        return build_datasets(df, spec, val_size=int(val_size), test_size=self.test_size,
                              stride=self.stride, fill=self.fill)

    def train_loader(self, data: Datasets, seed: int) -> DataLoader:
        return window_loader(data.train, batch_size=self.batch_size, shuffle=True, seed=seed)

    def val_loader(self, data: Datasets) -> DataLoader | None:
        """Validation windows in larger batches (no gradients), or None when there are none."""
        if not len(data.val):
            return None
        return window_loader(data.val, batch_size=4 * self.batch_size, shuffle=False)
