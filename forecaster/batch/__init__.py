"""Batch forecasts of large panels (``python -m pipelines.predict``).

    io        where the rows come from (a CSV or Parquet file, a folder or a glob of them),
              streamed in chunks of whole series; Parquet parts written as they are ready
    forecast  the model of a registry URI or a folder; one chunk forecast, its invalid series
              set aside with the rule they break
    spark     the same chunks on a Spark cluster: grouped by series, the model loaded once per
              executor (imported only with ``engine=spark``)
"""

from forecaster.batch.forecast import BatchModel, forecast_chunk, load_model
from forecaster.batch.io import (
    ERRORS_DIR,
    FORECASTS_DIR,
    PartWriter,
    check_grouped,
    chunk_series,
    input_files,
    read_batches,
)

__all__ = ["BatchModel", "ERRORS_DIR", "FORECASTS_DIR", "PartWriter", "check_grouped",
           "chunk_series", "forecast_chunk", "input_files", "load_model", "read_batches"]
