"""``engine=spark``: the batch job on a Spark cluster (any master: ``local[2]``, ``spark://``,
``yarn``, ``k8s://``).

Spark reads the input, hashes the rows of each series into one partition and keeps them
together (``repartition`` + ``sortWithinPartitions``); ``mapInArrow`` hands each Python
worker its partition as Arrow batches, which are regrouped into chunks of whole series and
forecast with the same code as ``engine=local`` (:func:`forecast_chunk`). The model's folder
travels with ``SparkContext.addFile`` and the ``forecaster`` package with ``addPyFile``, so
executors need torch, numpy, pandas and safetensors installed, not the project; each Python
worker loads the model once. One pass writes the forecasts; the invalid series (a row each)
reach the driver through an accumulator and are written beside them.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyspark.accumulators import AccumulatorParam

import forecaster as _package
from forecaster.batch.forecast import BatchModel, check_columns, forecast_chunk
from forecaster.batch.io import ERRORS_DIR, FORECASTS_DIR, chunk_series, read_batches
from forecaster.data.files import header
from forecaster.errors import UsageError

_MODELS: dict[str, object] = {}  # per Python worker: the model folder -> its Forecaster


@dataclass
class SparkResult:
    series: int  # series forecast
    rows: int  # forecast rows written
    errors: int  # series set aside
    by_field: dict[str, int]


def session(master: str, app_name: str, conf: Mapping[str, str]):
    """A Spark session on ``master`` (under ``spark-submit``, on its ``--master``); its Python
    workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise. Time stamps are read
    and written as UTC."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit, whose --master wins
        builder = builder.master(master)
    builder = (builder.appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.ui.showConsoleProgress", "false")
               # Arrow batches to the Python workers: 100k rows (Spark's 10k meant many small
               # frames to regroup into chunks of series)
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000"))
    for key, value in conf.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")  # the job prints its own summary
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return spark


def _read(spark, files: list[Path], fmt: str, integer_ds: bool):
    paths = [str(f) for f in files]
    if fmt == "parquet":
        return spark.read.parquet(*paths)
    from pyspark.sql import types as T

    # as engine=local reads CSV: ids as text, every column but ds as a number; ds as text
    # the model parses (date-times), or integers for a model of an integer index
    types = {"unique_id": T.StringType(), "ds": T.LongType() if integer_ds else T.StringType()}
    schema = T.StructType([T.StructField(c, types.get(c, T.DoubleType()))
                           for c in header(files[0])])
    return spark.read.csv(paths, header=True, schema=schema, mode="FAILFAST")


def _output_schema(model: BatchModel):
    """The forecasts' Spark schema, and the same as Arrow."""
    from pyspark.sql import types as T

    f = model.forecaster
    ds = T.LongType() if isinstance(f.spec.freq, int) else T.TimestampNTZType()
    fields = [T.StructField("unique_id", T.StringType()), T.StructField("ds", ds)]
    fields += [T.StructField(c, T.FloatType()) for c in f.output_columns]
    arrow = pa.schema([("unique_id", pa.string()),
                       ("ds", pa.int64() if isinstance(f.spec.freq, int) else pa.timestamp("us")),
                       *[(c, pa.float32()) for c in f.output_columns]])
    return T.StructType(fields), arrow


def _worker_model(folder_name: str):
    """The model of this Python worker, loaded on its first chunk. Its torch threads: the
    task's CPUs (``spark.task.cpus``; Spark runs a task per core by default, and more threads
    per task oversubscribe them), or ``FORECASTER_TORCH_THREADS``."""
    if folder_name not in _MODELS:
        from pyspark import SparkFiles, TaskContext

        from forecaster import runtime
        from forecaster.models import Forecaster

        task = TaskContext.get()
        runtime.apply(runtime.choose_threads(cpus=task.cpus() if task else 1))
        _MODELS[folder_name] = Forecaster.load(SparkFiles.get(folder_name))
    return _MODELS[folder_name]


class _Rows(AccumulatorParam):
    """An accumulator of rows (the invalid series, a few): lists, added up."""

    def zero(self, value):
        return []

    def addInPlace(self, a, b):
        a.extend(b)
        return a


def _forecast_partition(folder_name: str, horizon: int | None, chunk: int, schema: pa.Schema,
                        invalid):
    """The function ``mapInArrow`` runs on each partition: Arrow batches in (rows grouped by
    series), forecast rows out; the invalid series go to the ``invalid`` accumulator (the
    driver writes them), so that one pass over the data writes the forecasts."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = _worker_model(folder_name)
        for frame in chunk_series(batches, chunk):
            forecasts, errors = forecast_chunk(model, frame, horizon)
            yield _batch(forecasts, schema)
            if len(errors):
                invalid.add([tuple(map(str, row)) for row in errors.itertuples(index=False)])
    return run


def _read_files(fmt: str, run_chunks):
    """``mapInArrow`` over file paths: each file read with Arrow, its rows forecast."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path in batch.column("path").to_pylist():
                yield from run_chunks(read_batches([Path(path)], fmt))
    return run


def _batch(frame: pd.DataFrame, schema: pa.Schema) -> pa.RecordBatch:
    """``frame`` as a record batch of the output schema (time stamps in Spark's microseconds)."""
    arrays = []
    for f in schema:
        array = pa.array(frame[f.name], from_pandas=True) if len(frame) else pa.array([], f.type)
        if isinstance(array, pa.ChunkedArray):  # pandas' Arrow-backed strings
            array = array.combine_chunks()
        arrays.append(array.cast(f.type, safe=False))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _package_zip(tmp: Path) -> str:
    """The ``forecaster`` package as a zip for ``addPyFile``."""
    root = Path(_package.__file__).parent
    return shutil.make_archive(str(tmp / "forecaster"), "zip", root.parent, root.name)


def run(model: BatchModel, files: list[Path], fmt: str, output: Path, *, horizon: int | None,
        chunk: int, master: str, app_name: str = "forecaster-predict",
        conf: Mapping[str, str] | None = None, partitions: int | None = None,
        grouped: bool = False) -> SparkResult:
    """Forecast every series of ``files`` on Spark; write ``output/forecasts`` and
    ``output/errors`` (Parquet folders).

    ``grouped``: every input file holds whole series, its rows grouped by series (as shards
    written by series are). The files are then the tasks: each Python worker reads its files
    with Arrow (paths the executors can open: a shared filesystem) and forecasts them as
    ``engine=local`` does, and Spark writes the answers; no Spark scan of the rows, no shuffle,
    no sort. A series found in two files makes the job fail after writing, naming the setting.
    """
    from pyspark.sql import functions as F

    spark = session(master, app_name, conf or {})
    with tempfile.TemporaryDirectory(prefix="forecaster-spark-") as tmp:
        tmp = Path(tmp)
        folder = shutil.copytree(model.folder, tmp / "model")  # its name on the executors
        spark.sparkContext.addFile(str(folder), recursive=True)
        spark.sparkContext.addPyFile(_package_zip(tmp))
        n = partitions or 2 * spark.sparkContext.defaultParallelism
        schema, arrow = _output_schema(model)
        invalid = spark.sparkContext.accumulator([], _Rows())
        run_chunks = _forecast_partition(folder.name, horizon, chunk, arrow, invalid)
        if grouped:  # a task per file (range partitioning of distinct numbers: one each)
            check_columns(model.forecaster, header(files[0]))
            paths = spark.createDataFrame([(i, str(f.resolve())) for i, f in enumerate(files)],
                                          "i long, path string").repartitionByRange(len(files), "i")
            out = paths.mapInArrow(_read_files(fmt, run_chunks), schema)
        else:
            frame = _read(spark, files, fmt, isinstance(model.forecaster.spec.freq, int))
            check_columns(model.forecaster, frame.columns)
            out = (frame.repartition(n, "unique_id").sortWithinPartitions("unique_id")
                   .mapInArrow(run_chunks, schema))
        out.write.mode("overwrite").parquet(str(output / FORECASTS_DIR))
        # a task run twice (a retry, speculation) adds its rows twice: one per series
        errors = sorted(dict((row[0], row) for row in invalid.value).values())
        spark.createDataFrame(errors, "unique_id string, field string, rule string") \
            .coalesce(1).write.mode("overwrite").parquet(str(output / ERRORS_DIR))
        written = spark.read.parquet(str(output / FORECASTS_DIR))
        rows = written.count()  # from the files' footers
        # spark.grouped: a series in two files would have two forecasts (a shuffle to check)
        split = grouped and written.select(F.countDistinct("unique_id")).first()[0] * (
            horizon or model.forecaster.horizon) != rows
    if split:
        raise UsageError(f"{output}: some series are in more than one input file, so their "
                         "forecasts there come from part of their rows: with spark.grouped=true "
                         "every input file must hold whole series; run again with "
                         "spark.grouped=false")
    by_field: dict[str, int] = {}
    for _, field, _ in errors:
        by_field[field] = by_field.get(field, 0) + 1
    return SparkResult(series=rows // (horizon or model.forecaster.horizon), rows=rows,
                       errors=len(errors), by_field=by_field)
