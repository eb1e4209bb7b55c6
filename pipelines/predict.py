"""Batch forecasts of a panel: ``python -m pipelines.predict input=... output=... [overrides]``.

    python -m pipelines.predict input=panel.parquet output=forecasts/
    python -m pipelines.predict input='shards/*.parquet' output=out/ engine=spark spark.master=yarn
    python -m pipelines.predict model_uri=runs:/RUN_ID/model input=panel.csv output=out/ horizon=12

Writes ``output/forecasts`` (``unique_id, ds, y_hat`` and the interval columns, as the pyfunc
model names them) and ``output/errors`` (``unique_id, field, rule``: the series not forecast)
as Parquet parts, and prints one summary line. See docs/scale-out.md for clusters.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from forecaster.errors import UsageError, check, positive_int
from pipelines import _precheck

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
ENGINES = ("local", "spark")


def _output(cfg: DictConfig) -> Path:
    out = Path(str(cfg.output))
    if out.exists() and not out.is_dir():
        raise UsageError(f"output={cfg.output} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise UsageError(f"output={cfg.output} is not empty; give a new folder or overwrite=true")
    return out


def run(cfg: DictConfig) -> dict:
    """The job; returns its counts (``series``, ``rows``, ``errors``, ``by_field``, ``seconds``)."""
    check("engine", cfg.engine, cfg.engine in ENGINES, f"one of {list(ENGINES)}")
    check("chunk_series", cfg.chunk_series, positive_int(cfg.chunk_series), "a positive integer")
    check("horizon", cfg.horizon, cfg.horizon is None or positive_int(cfg.horizon),
          "null or a positive integer")
    from forecaster.batch import io

    files, fmt = io.input_files(str(cfg.input))
    output = _output(cfg)
    start = time.perf_counter()
    if cfg.tracking_uri:
        import os

        os.environ["MLFLOW_TRACKING_URI"] = str(cfg.tracking_uri)
    from forecaster.batch.forecast import load_model

    with tempfile.TemporaryDirectory(prefix="forecaster-predict-") as tmp:
        model = load_model(str(cfg.model_uri), tmp)
        horizon = None if cfg.horizon is None else int(cfg.horizon)
        if horizon is not None and horizon > model.forecaster.horizon:
            raise UsageError(f"horizon={horizon}: at most the model's horizon "
                             f"{model.forecaster.horizon}")
        if cfg.engine == "spark":
            try:
                from forecaster.batch import spark
            except ImportError as err:
                raise UsageError(f"engine=spark needs pyspark ({err}): pip install -e "
                                 "'.[spark]', and a Java 17 runtime") from None

            result = spark.run(model, files, fmt, output, horizon=horizon,
                               chunk=int(cfg.chunk_series), master=str(cfg.spark.master),
                               app_name=str(cfg.spark.app_name), conf=dict(cfg.spark.conf),
                               partitions=cfg.spark.partitions,
                               grouped=bool(cfg.spark.grouped))
            counts = {"series": result.series, "rows": result.rows, "errors": result.errors,
                      "by_field": result.by_field}
        else:
            counts = _local(model, files, fmt, output, horizon, int(cfg.chunk_series),
                            bool(cfg.progress))
    counts["seconds"] = time.perf_counter() - start
    return counts


def _local(model, files, fmt, output: Path, horizon, chunk: int, progress: bool) -> dict:
    import pyarrow as pa
    from tqdm import tqdm

    from forecaster.batch import (
        ERRORS_DIR,
        FORECASTS_DIR,
        PartWriter,
        check_grouped,
        chunk_series,
        forecast_chunk,
        read_batches,
    )
    from forecaster.batch.io import run_starts

    total = check_grouped(files, fmt)
    for folder in (FORECASTS_DIR, ERRORS_DIR):  # overwrite=true: no part of an earlier run stays
        shutil.rmtree(output / folder, ignore_errors=True)
    forecasts, errors = PartWriter(output / FORECASTS_DIR), PartWriter(output / ERRORS_DIR)
    by_field: dict[str, int] = {}
    with tqdm(total=total, unit="series", disable=not progress, file=sys.stderr,
              mininterval=1) as bar:
        for frame in chunk_series(read_batches(files, fmt), chunk):
            fc, err = forecast_chunk(model.forecaster, frame, horizon)
            forecasts.write(fc)
            errors.write(err)
            for field, n in err["field"].value_counts().items():
                by_field[field] = by_field.get(field, 0) + int(n)
            bar.update(len(run_starts(pa.array(frame["unique_id"]))))
    return {"series": total - sum(by_field.values()), "rows": forecasts.rows,
            "errors": sum(by_field.values()), "by_field": by_field}


def summary(counts: dict, output: str) -> str:
    fields = ", ".join(f"{k}: {v}" for k, v in sorted(counts["by_field"].items()))
    bad = f"{counts['errors']} series not forecast ({fields}) -> {output}/errors" if \
        counts["errors"] else "0 series not forecast"
    return (f"forecast {counts['series']} series ({counts['rows']} rows) -> {output}/forecasts; "
            f"{bad}; {counts['seconds']:.1f} s")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    with _precheck.checked():
        counts = run(cfg)
    print(summary(counts, str(Path(str(cfg.output)))), flush=True)  # no doubled slash


if __name__ == "__main__":
    main()
