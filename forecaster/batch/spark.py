"""``engine=spark``: the batch job on a Spark cluster (any master: ``local[2]``, ``spark://``,
``yarn``, ``k8s://``).

Spark reads the input, hashes the rows of each series into one partition and keeps them
together (``repartition`` + ``sortWithinPartitions``); ``mapInPandas`` hands each Python
worker its partition as Arrow batches, which are regrouped into chunks of whole series and
forecast with the same code as ``engine=local`` (:func:`forecast_chunk`). The model's folder
travels with ``SparkContext.addFile`` and the ``forecaster`` package with ``addPyFile``, so
executors need torch, numpy, pandas and safetensors installed, not the project; each Python
worker loads the model once. Forecasts and invalid series come out of one pass and are
written as two Parquet folders.
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

import forecaster as _package
from forecaster.batch.forecast import ERROR_COLUMNS, BatchModel, forecast_chunk
from forecaster.batch.io import ERRORS_DIR, FORECASTS_DIR, _csv_header, chunk_series

_MODELS: dict[str, object] = {}  # per Python worker: the model folder -> its Forecaster


@dataclass
class SparkResult:
    series: int  # series forecast
    rows: int  # forecast rows written
    errors: int  # series set aside
    by_field: dict[str, int]


def session(master: str, app_name: str, conf: Mapping[str, str]):
    """A Spark session on ``master``; its Python workers run this interpreter unless
    ``PYSPARK_PYTHON`` says otherwise. Time stamps are read and written as UTC."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
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
    header = _csv_header(files[0])
    types = {"unique_id": T.StringType(), "ds": T.LongType() if integer_ds else T.StringType()}
    schema = T.StructType([T.StructField(c, types.get(c, T.DoubleType())) for c in header])
    return spark.read.csv(paths, header=True, schema=schema, mode="FAILFAST")


def _output_schema(model: BatchModel):
    from pyspark.sql import types as T

    f = model.forecaster
    ds = T.LongType() if isinstance(f.spec.freq, int) else T.TimestampNTZType()
    fields = [T.StructField("unique_id", T.StringType()), T.StructField("ds", ds)]
    fields += [T.StructField(c, T.FloatType()) for c in f.output_columns]
    fields += [T.StructField(c, T.StringType()) for c in ERROR_COLUMNS[1:]]
    return T.StructType(fields)


def _worker_model(folder_name: str):
    """The model of this Python worker, loaded on its first chunk."""
    if folder_name not in _MODELS:
        from pyspark import SparkFiles

        from forecaster.models import Forecaster

        _MODELS[folder_name] = Forecaster.load(SparkFiles.get(folder_name))
    return _MODELS[folder_name]


def _forecast_partition(folder_name: str, horizon: int | None, chunk: int, columns: list[str]):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _worker_model(folder_name)
        for frame in chunk_series(batches, chunk):
            forecasts, errors = forecast_chunk(model, frame, horizon)
            yield _arrow_safe(forecasts.assign(field=None, rule=None)[columns])
            if len(errors):
                yield _arrow_safe(errors.assign(ds=None, **{c: None for c in columns[2:-2]})[
                    columns])
    return run


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects: PySpark 4 cannot hand pandas 3's Arrow-backed strings
    to Arrow ("Cannot convert pyarrow.lib.ChunkedArray to pyarrow.lib.Array")."""
    for c in ("unique_id", *ERROR_COLUMNS[1:]):
        frame[c] = frame[c].astype(object)
    return frame


def _package_zip(tmp: Path) -> str:
    """The ``forecaster`` package as a zip for ``addPyFile``."""
    root = Path(_package.__file__).parent
    return shutil.make_archive(str(tmp / "forecaster"), "zip", root.parent, root.name)


def run(model: BatchModel, files: list[Path], fmt: str, output: Path, *, horizon: int | None,
        chunk: int, master: str, app_name: str = "forecaster-predict",
        conf: Mapping[str, str] | None = None, partitions: int | None = None) -> SparkResult:
    """Forecast every series of ``files`` on Spark; write ``output/forecasts`` and
    ``output/errors`` (Parquet folders)."""
    from pyspark.sql import functions as F

    spark = session(master, app_name, conf or {})
    with tempfile.TemporaryDirectory(prefix="forecaster-spark-") as tmp:
        tmp = Path(tmp)
        folder = shutil.copytree(model.folder, tmp / "model")  # its name on the executors
        spark.sparkContext.addFile(str(folder), recursive=True)
        spark.sparkContext.addPyFile(_package_zip(tmp))
        frame = _read(spark, files, fmt, isinstance(model.forecaster.spec.freq, int))
        from forecaster.batch.forecast import check_columns

        check_columns(model.forecaster, frame.columns)
        n = partitions or 2 * spark.sparkContext.defaultParallelism
        schema = _output_schema(model)
        out = (frame.repartition(n, "unique_id").sortWithinPartitions("unique_id")
               .mapInPandas(_forecast_partition(folder.name, horizon, chunk, schema.names),
                            schema)).persist()
        forecast_cols = [F.col(f"`{c}`") for c in schema.names if c not in ERROR_COLUMNS[1:]]
        out.where(F.col("rule").isNull()).select(*forecast_cols).write.mode("overwrite") \
            .parquet(str(output / FORECASTS_DIR))
        out.where(F.col("rule").isNotNull()).select(*ERROR_COLUMNS).write.mode("overwrite") \
            .parquet(str(output / ERRORS_DIR))
        counts = out.groupBy(F.col("rule").isNull().alias("ok")).agg(
            F.countDistinct("unique_id").alias("series"), F.count("*").alias("rows")).collect()
        by_field = {r["field"]: r["n"] for r in out.where(F.col("rule").isNotNull())
                    .groupBy("field").agg(F.count("*").alias("n")).collect()}
        out.unpersist()
    ok = {r["ok"]: r for r in counts}
    return SparkResult(series=ok[True]["series"] if True in ok else 0,
                       rows=ok[True]["rows"] if True in ok else 0,
                       errors=ok[False]["series"] if False in ok else 0, by_field=by_field)
