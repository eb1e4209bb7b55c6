"""Where a batch job's rows come from and where its answers go.

The input is a long table (``unique_id``, ``ds``, ``y`` and the model's covariates) in CSV or
Parquet: one file, a folder of files (read recursively, in name order; names starting with
``_`` or ``.`` are skipped, as Spark writes them) or a glob. It is read as a stream of Arrow
record batches and regrouped into chunks of whole series, so that memory holds one chunk, not
the panel. That needs every series' rows to be contiguous (sorted or grouped by
``unique_id``), which a first pass over the id column checks before anything is written.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from forecaster.errors import UsageError

FORECASTS_DIR, ERRORS_DIR = "forecasts", "errors"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
BATCH_ROWS = 65_536


def input_files(spec: str) -> tuple[list[Path], str]:
    """The files of ``input=``: a file, a folder or a glob. Returns them and their format
    (``csv`` or ``parquet``).

    Raises:
        UsageError: nothing matches, or CSV and Parquet files are mixed.
    """
    path = Path(spec)
    if any(ch in spec for ch in "*?["):
        found = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
    elif path.is_dir():
        found = sorted(f for f in path.rglob("*") if not any(
            part.startswith(("_", ".")) for part in f.relative_to(path).parts))
    else:
        found = [path] if path.is_file() else []
    files = [f for f in found if f.is_file() and f.suffix.lower() in FORMATS]
    if not files:
        what = "a folder without .csv or .parquet files" if path.is_dir() else (
            "a file of another kind" if path.is_file() else "neither a file, a folder nor a glob "
            "that matches files")
        raise UsageError(f"input={spec}: {what}; give a long .csv or .parquet file (unique_id, "
                         "ds, y), a folder of them, or a glob such as 'panel/*.parquet'")
    kinds = {FORMATS[f.suffix.lower()] for f in files}
    if len(kinds) > 1:
        raise UsageError(f"input={spec}: mixes CSV and Parquet files; give one kind")
    return files, kinds.pop()


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def _to_pandas(batch: pa.RecordBatch) -> pd.DataFrame:
    """A record batch as pandas; Arrow dates become timestamps (pandas would give objects)."""
    if "ds" in batch.schema.names and pa.types.is_date(batch.schema.field("ds").type):
        i = batch.schema.get_field_index("ds")
        batch = batch.set_column(i, "ds", batch.column(i).cast(pa.timestamp("s")))
    return batch.to_pandas()


def read_batches(files: Sequence[Path], fmt: str, columns: Sequence[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The rows of ``files``, in order, as pandas frames of about ``batch_rows`` rows.

    CSV: ``unique_id`` is read as text and every column but ``ds`` as a number (a column
    that looks integral at first must not fail on its first decimal); ``ds`` as Arrow infers it
    (date-times, or integers for an integer index).
    """
    for path in files:
        if fmt == "parquet":
            yield from (_to_pandas(b) for b in pq.ParquetFile(path).iter_batches(
                batch_size=batch_rows, columns=list(columns) if columns else None))
            continue
        header = _csv_header(path)
        types = {c: pa.string() if c == "unique_id" else pa.float64()
                 for c in header if c != "ds"}
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(columns) if columns else None))
        for batch in reader:
            yield _to_pandas(batch)


def _runs(ids: np.ndarray) -> np.ndarray:
    """The row where each run of equal ids starts."""
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])


def check_grouped(files: Sequence[Path], fmt: str) -> int:
    """First pass, over the ``unique_id`` column only: every series' rows are contiguous.
    Returns the number of series.

    Raises:
        UsageError: the column is missing, or a series' rows are split (the input is then
            not streamable by series; sort it by ``unique_id``, or use ``engine=spark``).
    """
    seen: set = set()
    last = None
    try:
        for frame in read_batches(files, fmt, columns=["unique_id"]):
            ids = frame["unique_id"].to_numpy()
            if not len(ids):
                continue
            run_ids = ids[_runs(ids)]
            if last is not None and run_ids[0] == last:
                run_ids = run_ids[1:]
            for uid in run_ids.tolist():
                if uid in seen:
                    raise UsageError(
                        f"input: the rows of series {uid!r} are not together (the input must be "
                        "grouped by unique_id to be read chunk by chunk); sort it by unique_id, "
                        "ds or use engine=spark, which groups the rows itself")
                seen.add(uid)
            last = ids[-1]
    except (KeyError, pa.ArrowInvalid) as err:
        raise UsageError(f"input: cannot read column 'unique_id' ({err}); the input must be a "
                         "long table with the columns unique_id, ds, y") from None
    return len(seen)


def chunk_series(batches: Iterable[pd.DataFrame], n_series: int) -> Iterator[pd.DataFrame]:
    """Regroup a stream of frames (rows grouped by series) into frames of whole series, at
    least ``n_series`` each (the last may hold fewer); a series is never split."""
    buffer: list[pd.DataFrame] = []
    runs, last = 0, None
    for frame in batches:
        if frame.empty:
            continue
        ids = frame["unique_id"].to_numpy()
        starts = _runs(ids)
        runs += len(starts) - (1 if last is not None and ids[0] == last else 0)
        last = ids[-1]
        buffer.append(frame)
        if runs > n_series:  # all but the last series, which may go on in the next frame
            whole = pd.concat(buffer, ignore_index=True)
            cut = int(_runs(whole["unique_id"].to_numpy())[-1])
            yield whole.iloc[:cut]
            buffer, runs = [whole.iloc[cut:]], 1
    if buffer:
        yield pd.concat(buffer, ignore_index=True)


class PartWriter:
    """Parquet parts ``part-00000.parquet``... in ``folder``, written as frames come."""

    def __init__(self, folder: Path):
        self.folder, self.parts, self.rows = Path(folder), 0, 0
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       self.folder / f"part-{self.parts:05d}.parquet")
        self.parts += 1
        self.rows += len(frame)
