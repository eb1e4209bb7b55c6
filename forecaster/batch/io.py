"""Where a batch job's rows come from and where its answers go.

The input is a long table (``unique_id``, ``ds``, ``y`` and the model's covariates) in CSV or
Parquet: one file, a folder of files (read recursively, in name order; names starting with
``_`` or ``.`` are skipped, as Spark writes them) or a glob. It is read as a stream of Arrow
record batches and regrouped into chunks of whole series, so that memory holds one chunk, not
the panel. That needs every series' rows to be contiguous (sorted or grouped by
``unique_id``), which a first pass over the id column checks before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from forecaster.data.files import FORMATS, header, input_files  # noqa: F401 (part of this API)
from forecaster.errors import UsageError

FORECASTS_DIR, ERRORS_DIR = "forecasts", "errors"
BATCH_ROWS = 65_536


def to_pandas(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """Arrow rows as pandas; Arrow dates become timestamps (pandas would give objects)."""
    if "ds" in batch.schema.names and pa.types.is_date(batch.schema.field("ds").type):
        i = batch.schema.get_field_index("ds")
        batch = batch.set_column(i, "ds", batch.column(i).cast(pa.timestamp("s")))
    return batch.to_pandas()


def read_batches(files: Sequence[Path], fmt: str, columns: Sequence[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The rows of ``files``, in order, as Arrow record batches of about ``batch_rows`` rows.

    CSV: ``unique_id`` is read as text and every column but ``ds`` as a number (a column
    that looks integral at first must not fail on its first decimal); ``ds`` as Arrow infers it
    (date-times, or integers for an integer index).
    """
    for path in files:
        if fmt == "parquet":
            yield from pq.ParquetFile(path).iter_batches(
                batch_size=batch_rows, columns=list(columns) if columns else None)
            continue
        types = {c: pa.string() if c == "unique_id" else pa.float64()
                 for c in header(path) if c != "ds"}
        yield from pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(columns) if columns else None))


def run_starts(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The row where each run of equal ids starts (computed by Arrow, not Python objects)."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.int64)
    change = pc.not_equal(ids.slice(1), ids.slice(0, n - 1))
    if isinstance(change, pa.ChunkedArray):
        change = change.combine_chunks()
    return np.concatenate([[0], np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1])


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
        for batch in read_batches(files, fmt, columns=["unique_id"]):
            ids = batch.column("unique_id")
            if not len(ids):
                continue
            run_ids = ids.take(pa.array(run_starts(ids))).to_pylist()
            if last is not None and run_ids[0] == last:
                run_ids = run_ids[1:]
            for uid in run_ids:
                if uid in seen:
                    raise UsageError(
                        f"input: the rows of series {uid!r} are not together (the input must be "
                        "grouped by unique_id to be read chunk by chunk); sort it by unique_id, "
                        "ds or use engine=spark, which groups the rows itself")
                seen.add(uid)
            last = ids[-1].as_py()
    except (KeyError, pa.ArrowInvalid) as err:
        raise UsageError(f"input: cannot read column 'unique_id' ({err}); the input must be a "
                         "long table with the columns unique_id, ds, y") from None
    return len(seen)


def chunk_series(batches: Iterable[pa.RecordBatch], n_series: int) -> Iterator[pd.DataFrame]:
    """Regroup a stream of Arrow record batches (rows grouped by series) into pandas frames of
    whole series, at least ``n_series`` each (the last may hold fewer); a series is never split.
    The rows are cut as Arrow and converted to pandas once per chunk."""
    buffer: list[pa.RecordBatch] = []
    runs, last = 0, None
    for batch in batches:
        if not len(batch):
            continue
        ids = batch.column("unique_id")
        runs += len(run_starts(ids)) - (1 if last is not None and ids[0].as_py() == last else 0)
        last = ids[-1].as_py()
        buffer.append(batch)
        if runs > n_series:  # all but the last series, which may go on in the next batch
            whole = pa.Table.from_batches(buffer)
            cut = int(run_starts(whole.column("unique_id"))[-1])
            yield to_pandas(whole.slice(0, cut))
            buffer, runs = whole.slice(cut).to_batches(), 1
    if buffer:
        yield to_pandas(pa.Table.from_batches(buffer))


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
