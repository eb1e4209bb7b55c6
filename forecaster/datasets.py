"""Named data sources: where each dataset comes from and how it becomes a long frame.

| source | what | needs |
|---|---|---|
| ``co2`` | weekly Mauna Loa CO2, 1958-2001 (2,284 points, 59 missing) | statsmodels (a dependency; the data ships in its wheel) |
| ``csv`` | a user's long or wide CSV / Parquet | ``path`` |
| ``m4_hourly`` | M4 competition, Hourly: 414 series, train + 48-step test | ``M4-Hourly-{train,test}.csv`` |
| ``etth1`` | Electricity Transformer Temperature, hourly, target ``OT`` | ``ETTh1.csv`` |

The benchmark files are read from ``data_dir`` (``paths.data_dir``, by default
``../shared/data``); when missing there they are fetched once from their public source into
``~/.cache/forecaster`` (needs internet access).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data import load_frame

SOURCES = {
    "M4-Hourly-train.csv": "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Train/Hourly-train.csv",
    "M4-Hourly-test.csv": "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Test/Hourly-test.csv",
    "ETTh1.csv": "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv",
}
CACHE_DIR = Path.home() / ".cache" / "forecaster"


def benchmark_file(name: str, data_dir: str | Path | None) -> Path:
    """Path of benchmark file ``name``: in ``data_dir`` if there, else cached, else downloaded."""
    for folder in (Path(data_dir) if data_dir else None, CACHE_DIR):
        if folder is not None and (folder / name).is_file():
            return folder / name
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = CACHE_DIR / name
    try:
        with urllib.request.urlopen(SOURCES[name], timeout=60) as response, open(
            target.with_suffix(".part"), "wb"
        ) as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        raise FileNotFoundError(
            f"{name} is not in data_dir={data_dir!s} nor in {CACHE_DIR}, and downloading it from "
            f"{SOURCES[name]} failed ({err}); set paths.data_dir (or FORECASTER_DATA_DIR) to the "
            "folder that holds it"
        ) from err
    target.with_suffix(".part").rename(target)
    return target


def load_co2() -> pd.DataFrame:
    """Weekly atmospheric CO2 at Mauna Loa (ppm), as shipped by statsmodels."""
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    return pd.DataFrame({"unique_id": "co2", "ds": data.index, "y": data["co2"].to_numpy()})


def load_m4_hourly(data_dir: str | Path | None, part: str = "train") -> pd.DataFrame:
    """M4 Hourly ``part`` ("train" or "test") as a long frame with integer ``ds``.

    The files are wide and ragged (``V1`` = id, then values). Test rows continue the training
    positions, so ``ds`` of the test part starts where each training series ends.
    """
    train = pd.read_csv(benchmark_file("M4-Hourly-train.csv", data_dir))
    frames = _m4_long(train)
    if part == "train":
        return frames
    test = pd.read_csv(benchmark_file("M4-Hourly-test.csv", data_dir))
    start = frames.groupby("unique_id", sort=False)["ds"].max() + 1
    test_long = _m4_long(test)
    test_long["ds"] += test_long["unique_id"].map(start).to_numpy()
    return test_long


def _m4_long(wide: pd.DataFrame) -> pd.DataFrame:
    ids = wide.iloc[:, 0].astype(str).to_numpy()
    values = wide.iloc[:, 1:].to_numpy(dtype=float)  # [S, max_len], NaN-padded
    mask = ~np.isnan(values)
    lengths = mask.sum(1)
    return pd.DataFrame({
        "unique_id": np.repeat(ids, lengths),
        "ds": np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
        "y": values[mask],
    })


def load_etth1(data_dir: str | Path | None, target: str = "OT") -> pd.DataFrame:
    """ETTh1's ``target`` column (univariate) as a long frame, hourly timestamps."""
    raw = pd.read_csv(benchmark_file("ETTh1.csv", data_dir), parse_dates=["date"])
    return pd.DataFrame({"unique_id": f"ETTh1_{target}", "ds": raw["date"], "y": raw[target]})


def load_dataset(source: str, *, path: str | None = None, wide: bool = False,
                 data_dir: str | Path | None = None, **csv_options) -> pd.DataFrame:
    """The long frame of a named ``source`` (see the module table)."""
    if source == "co2":
        return load_co2()
    if source == "csv":
        if not path:
            raise ValueError("data.source=csv needs data.path=FILE (a long or wide CSV/Parquet)")
        return load_frame(path, wide=wide, **csv_options)
    if source == "m4_hourly":
        return load_m4_hourly(data_dir)
    if source == "etth1":
        return load_etth1(data_dir)
    raise ValueError(f"data.source={source!r} is not known; use co2, csv, m4_hourly or etth1")
