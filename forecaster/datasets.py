"""Named data sources: where each dataset comes from and how it becomes a long frame.

| source | what | needs |
|---|---|---|
| ``co2`` | weekly Mauna Loa CO2, 1958-2001 (2,284 points, 59 missing) | statsmodels (a dependency; the data ships in its wheel) |
| ``elnino`` | monthly sea surface temperature of the El Nino region, 1950-2010 (732 points) | statsmodels |
| ``taylor`` | half-hourly electricity demand of England and Wales, 5 June - 27 August 2000 (4,032 points) | pmdarima (``pip install -e ".[bench]"``) |
| ``wineind`` | monthly Australian wine sales, 1980-1994 (176 points) | pmdarima |
| ``ausbeer`` | quarterly Australian beer production, 1956-2008 (211 points) | pmdarima |
| ``airpassengers`` | monthly international airline passengers, 1949-1960 (144 points) | pmdarima |
| ``csv`` | a user's long or wide CSV / Parquet | ``path`` |
| ``m4_hourly`` | M4 competition, Hourly: 414 series, each its training part followed by its 48 test values (integer ``ds``) | ``M4-Hourly-{train,test}.csv`` |
| ``etth1`` | Electricity Transformer Temperature, hourly, target ``OT``: the first 14,400 rows (the Informer protocol's 12 + 4 + 4 months) | ``ETTh1.csv`` |
| ``etth1_full`` | the same column, all 17,420 rows | ``ETTh1.csv`` |

So ``data.test_size=48`` cuts exactly the M4 test part, and ``data.val_size=2880
data.test_size=2880`` exactly the Informer validation and test months of ETTh1.

The benchmark files are read from ``data_dir`` (``paths.data_dir``, by default
``../shared/data``: relative to the working folder, else to the repository root); when missing
there they are fetched once from their public source into ``~/.cache/forecaster`` (needs
internet access) and checked against their published sha256.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data import load_frame

SOURCES = {
    "M4-Hourly-train.csv": "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Train/Hourly-train.csv",
    "M4-Hourly-test.csv": "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Test/Hourly-test.csv",
    "ETTh1.csv": "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv",
}
SHA256 = {
    "M4-Hourly-train.csv": "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f",
    "M4-Hourly-test.csv": "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42",
    "ETTh1.csv": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
}
CACHE_DIR = Path.home() / ".cache" / "forecaster"
REPO_ROOT = Path(__file__).resolve().parents[1]
ETTH1_INFORMER_ROWS = 14_400  # 12 months train + 4 validation + 4 test, 30-day months


def _folders(data_dir: str | Path | None) -> list[Path]:
    """Where to look for a benchmark file: ``data_dir`` (as given, then under the repository
    root when relative), then the download cache."""
    folders = []
    if data_dir:
        folders.append(Path(data_dir))
        if not Path(data_dir).is_absolute():
            folders.append(REPO_ROOT / data_dir)
    return [*folders, CACHE_DIR]


def benchmark_file(name: str, data_dir: str | Path | None) -> Path:
    """Path of benchmark file ``name``: in ``data_dir`` if there, else cached, else downloaded."""
    for folder in _folders(data_dir):
        if (folder / name).is_file():
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
    digest = hashlib.sha256(target.with_suffix(".part").read_bytes()).hexdigest()
    if digest != SHA256[name]:
        target.with_suffix(".part").unlink()
        raise FileNotFoundError(f"{name} downloaded from {SOURCES[name]} has sha256 {digest}, "
                                f"not the published {SHA256[name]}; it was not kept")
    target.with_suffix(".part").rename(target)
    return target


def load_co2() -> pd.DataFrame:
    """Weekly atmospheric CO2 at Mauna Loa (ppm), as shipped by statsmodels."""
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    return pd.DataFrame({"unique_id": "co2", "ds": data.index, "y": data["co2"].to_numpy()})


def load_elnino() -> pd.DataFrame:
    """Monthly El Nino sea surface temperature (deg C), as shipped by statsmodels (a year a row)."""
    from statsmodels.datasets import elnino

    wide = elnino.load_pandas().data
    y = wide.drop(columns="YEAR").to_numpy(dtype=float).reshape(-1)  # [years * 12], row-major
    ds = pd.date_range(f"{int(wide['YEAR'].iloc[0])}-01-01", periods=len(y), freq="MS")
    return pd.DataFrame({"unique_id": "elnino", "ds": ds, "y": y})


# pmdarima's packaged series: loader name, first time stamp, pandas frequency
_PMDARIMA = {"taylor": ("load_taylor", "2000-06-05 00:00", "30min"),
             "airpassengers": ("load_airpassengers", "1949-01-01", "MS"),
             "wineind": ("load_wineind", "1980-01-01", "MS"),
             "ausbeer": ("load_ausbeer", "1956-01-01", "QS")}


def load_pmdarima(name: str) -> pd.DataFrame:
    """A series that ships inside pmdarima's wheel, with its real time stamps."""
    try:
        from pmdarima import datasets
    except ImportError as err:
        raise ImportError(f"data.source={name} needs pmdarima: pip install -e \".[bench]\"") from err
    loader, start, freq = _PMDARIMA[name]
    y = np.asarray(getattr(datasets, loader)(), dtype=float)
    y = y[np.isfinite(y)] if name == "ausbeer" else y  # ausbeer ends with one missing quarter
    return pd.DataFrame({"unique_id": name, "ds": pd.date_range(start, periods=len(y), freq=freq),
                         "y": y})


def load_m4_hourly(data_dir: str | Path | None, part: str = "all") -> pd.DataFrame:
    """M4 Hourly ``part`` ("train", "test" or "all" = train then test) as a long frame with
    integer ``ds``.

    The files are wide and ragged (``V1`` = id, then values). Test rows continue the training
    positions, so ``ds`` of the test part starts where each training series ends.
    """
    if part not in ("train", "test", "all"):
        raise ValueError(f"part must be train, test or all, got {part!r}")
    train = _m4_long(pd.read_csv(benchmark_file("M4-Hourly-train.csv", data_dir)))
    if part == "train":
        return train
    test = _m4_long(pd.read_csv(benchmark_file("M4-Hourly-test.csv", data_dir)))
    start = train.groupby("unique_id", sort=False)["ds"].max() + 1
    test["ds"] += test["unique_id"].map(start).to_numpy()
    if part == "test":
        return test
    order = {uid: k for k, uid in enumerate(train["unique_id"].unique())}
    both = pd.concat([train, test], ignore_index=True)
    key = both["unique_id"].map(order).to_numpy() * 10**6 + both["ds"].to_numpy()
    return both.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


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


def load_etth1(data_dir: str | Path | None, target: str = "OT",
               rows: int | None = ETTH1_INFORMER_ROWS) -> pd.DataFrame:
    """ETTh1's ``target`` column (univariate) as a long frame, hourly timestamps; the first
    ``rows`` rows (``None``: all)."""
    raw = pd.read_csv(benchmark_file("ETTh1.csv", data_dir), parse_dates=["date"], nrows=rows)
    return pd.DataFrame({"unique_id": f"ETTh1_{target}", "ds": raw["date"], "y": raw[target]})


COLUMN_OPTIONS = ("time_col", "id_col", "target_col")  # data.<option>: the file's column names


def _statsmodels_file(name: str) -> str:
    module = __import__(f"statsmodels.datasets.{name}", fromlist=["__file__"])
    return str(Path(module.__file__).parent / f"{name}.csv")


def _pmdarima_uri(name: str) -> str:
    return f"https://alkaline-ml.com/pmdarima/modules/generated/pmdarima.datasets.{_PMDARIMA[name][0]}.html"


def _load_file(path: str | None, wide: bool, **columns) -> pd.DataFrame:
    if not path:
        raise ValueError("data.source=csv needs data.path=FILE (a long or wide CSV/Parquet)")
    return load_frame(path, wide=wide, **columns)


@dataclass(frozen=True)
class Source:
    """A named data source: how its long frame is loaded, and where its rows come from.

    Attributes:
        load: ``(path, wide, data_dir, **columns) -> frame``; a source uses what it needs.
        uri: ``path -> str``: the file read (absolute) or the public URL of the data.
    """

    load: Callable[..., pd.DataFrame]
    uri: Callable[[str | None], str]


def _series(load: Callable[[], pd.DataFrame], uri: str | Callable[[], str]) -> Source:
    """A source that is one packaged series (no path, no data_dir)."""
    return Source(lambda path, wide, data_dir, **_: load(),
                  lambda path: uri() if callable(uri) else uri)


DATA_SOURCES: dict[str, Source] = {
    "co2": _series(load_co2, lambda: _statsmodels_file("co2")),
    "elnino": _series(load_elnino, lambda: _statsmodels_file("elnino")),
    **{name: _series(partial(load_pmdarima, name), partial(_pmdarima_uri, name))
       for name in _PMDARIMA},
    "csv": Source(lambda path, wide, data_dir, **columns: _load_file(path, wide, **columns),
                  lambda path: str(Path(path).resolve())),
    "m4_hourly": Source(lambda path, wide, data_dir, **_: load_m4_hourly(data_dir),
                        lambda path: SOURCES["M4-Hourly-train.csv"]),
    "etth1": Source(lambda path, wide, data_dir, **_: load_etth1(data_dir),
                    lambda path: SOURCES["ETTh1.csv"]),
    "etth1_full": Source(lambda path, wide, data_dir, **_: load_etth1(data_dir, rows=None),
                         lambda path: SOURCES["ETTh1.csv"]),
}


def data_source(name: str) -> Source:
    """The source called ``name`` (the module table); an unknown one is named with the known."""
    if name not in DATA_SOURCES:
        raise ValueError(f"data.source={name!r} is not known; use one of {list(DATA_SOURCES)}, "
                         "or data.loader._target_=<a function returning a long frame>")
    return DATA_SOURCES[name]


def load_configured(data: Mapping, data_dir: str | Path | None = None) -> pd.DataFrame:
    """The long frame a ``data`` config group names: ``data.loader`` when set (any function
    returning a long frame, built with ``hydra.utils.instantiate`` from its ``_target_``), else
    the named ``source`` with ``path``, ``wide`` and the column mapping ``time_col`` /
    ``id_col`` / ``target_col``."""
    if data.get("loader"):
        from hydra.utils import instantiate

        return instantiate(data["loader"])
    columns = {k: data[k] for k in COLUMN_OPTIONS if data.get(k)}
    return load_dataset(data["source"], path=data.get("path"), wide=data.get("wide", False),
                        data_dir=data_dir, **columns)


def source_uri(source: str, path: str | None = None, loader: Mapping | None = None) -> str:
    """Where the rows of ``source`` come from: the file read (absolute), or its public URL;
    for a ``data.loader``, the function that loaded them."""
    if loader:
        return f"python:{loader['_target_']}"
    return data_source(source).uri(path)


def load_dataset(source: str, *, path: str | None = None, wide: bool = False,
                 data_dir: str | Path | None = None, **csv_options) -> pd.DataFrame:
    """The long frame of a named ``source`` (see the module table)."""
    return data_source(source).load(path, wide, data_dir, **csv_options)
