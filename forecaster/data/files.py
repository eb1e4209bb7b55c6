"""Which files a path names: a file, a folder of files (read recursively, in name order; names
starting with ``_`` or ``.`` are skipped, as Spark writes them) or a glob."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

from forecaster.errors import UsageError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def is_many(spec: str) -> bool:
    """Whether ``spec`` names a folder or a glob (shards), not one file."""
    return any(ch in spec for ch in "*?[") or Path(spec).is_dir()


def input_files(spec: str, key: str = "input") -> tuple[list[Path], str]:
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
        raise UsageError(f"{key}={spec}: {what}; give a long .csv or .parquet file (unique_id, "
                         "ds, y), a folder of them, or a glob such as 'panel/*.parquet'")
    kinds = {FORMATS[f.suffix.lower()] for f in files}
    if len(kinds) > 1:
        raise UsageError(f"{key}={spec}: mixes CSV and Parquet files; give one kind")
    return files, kinds.pop()


def header(path: Path) -> list[str]:
    """The column names of a ``.csv`` (its first line) or ``.parquet`` file (its schema)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq  # only for parquet files; the CSV path stays light

        return list(pq.read_schema(path).names)
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])
