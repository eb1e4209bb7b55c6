"""The model of a batch job, and one chunk of series forecast with it.

A chunk's forecasts are the pyfunc model's (both call ``Forecaster.predict``, which gives a
series the same float32 numbers whatever else is in the batch). A series that breaks a rule
is not forecast: it is set aside with the field and the rule, in the library's own words, and
the rest of the chunk goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from forecaster.batch.io import run_starts
from forecaster.data.frames import DataValidationError
from forecaster.errors import UsageError
from forecaster.models.predictor import Forecaster, ModelFileError, NonFiniteForecastError

ERROR_COLUMNS = ("unique_id", "field", "rule")
# the field a library message names first: "column 'y': ...", "columns ('unique_id', 'ds'): ..."
_FIELD = re.compile(r"^columns? \(?((?:'[^']+'(?:, )?)+)")


@dataclass
class BatchModel:
    """A loaded ``Forecaster``, the folder of its files (what Spark ships to executors) and
    the URI it was asked for."""

    forecaster: Forecaster
    folder: Path
    uri: str


def load_model(model_uri: str, dst: str | Path) -> BatchModel:
    """``model_uri``: a registry or run URI (``models:/name@alias``, ``runs:/ID/model``),
    downloaded into ``dst``; or a folder: an MLflow model (``MLmodel``) or a ``Forecaster``
    folder (``python -m pipelines.serve --export``).

    Raises:
        UsageError: nothing is there, or its files are broken (the message names the file).
    """
    from forecaster.tracking.loading import ModelNotFoundError, download_forecaster

    path = Path(model_uri)
    try:
        if path.is_dir():
            folder = (path / "artifacts" / "forecaster" if (path / "MLmodel").is_file()
                      else path)
        elif "://" in model_uri or model_uri.startswith(("models:/", "runs:/")):
            folder = download_forecaster(model_uri, dst)
        else:
            raise UsageError(f"model_uri={model_uri}: neither a folder nor a models:/ or runs:/ "
                             "URI")
        return BatchModel(Forecaster.load(folder), folder, model_uri)
    except (ModelNotFoundError, ModelFileError) as err:
        raise UsageError(f"model_uri={model_uri}: {err}") from None


def check_columns(forecaster: Forecaster, columns) -> None:
    """The input's columns are the model's: a job-wide rule, not a series'."""
    needed = ["unique_id", "ds", "y", *forecaster.spec.futr_exog, *forecaster.spec.static_cols]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UsageError(f"input lacks the column(s) {missing}; the model needs {needed}, found "
                         f"{list(columns)}")


def _error(uid, err: Exception) -> tuple:
    message = str(err)
    named = _FIELD.match(message)
    return uid, re.findall(r"'([^']+)'", named[1])[-1] if named else "y", message


def forecast_chunk(forecaster: Forecaster, frame: pd.DataFrame, horizon: int | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast the series of ``frame`` (a long frame of whole series, each one's rows
    together, as ``chunk_series`` gives them).

    Returns:
        ``(forecasts, errors)``: the pyfunc model's long output for the valid series, and one
        row per invalid series (``unique_id``, ``field``, ``rule``).
    """
    check_columns(forecaster, frame.columns)
    errors: list[tuple] = []
    if not pd.api.types.is_numeric_dtype(frame["y"]):
        raise UsageError(f"input: column 'y' must be numeric, found {frame['y'].dtype}")
    # the usual fault, found without a forward pass: fewer observed values than the input
    starts = run_starts(pa.array(frame["unique_id"]))  # a chunk holds its series' rows together
    finite = np.isfinite(frame["y"].to_numpy(np.float64))
    observed = np.add.reduceat(finite.astype(np.int64), starts) if len(starts) else starts
    L = forecaster.input_size
    short = observed < L
    if short.any():
        uniques = frame["unique_id"].to_numpy()[starts]
        for s in np.flatnonzero(short):
            errors.append((uniques[s], "y", f"column 'y': series {uniques[s]!r} has "
                           f"{int(observed[s])} observed values but at least {L} are needed "
                           f"(input_size {L})"))
        frame = frame[~np.repeat(short, np.diff(np.r_[starts, len(frame)]))]
    out: list[pd.DataFrame] = []
    _isolate(forecaster, frame, horizon, out, errors)
    forecasts = (pd.concat(out, ignore_index=True) if out
                 else forecaster.to_frame(np.zeros((0, 1, len(forecaster.quantiles)),
                                                  np.float32), [], [np.array([], "M8[ns]")]))
    return forecasts, pd.DataFrame(errors, columns=list(ERROR_COLUMNS))


def _isolate(forecaster: Forecaster, frame: pd.DataFrame, horizon: int | None,
             out: list[pd.DataFrame], errors: list[tuple]) -> None:
    """Forecast ``frame``; when a series breaks a rule, halve the series until each bad one is
    alone (a few forward passes per bad series), forecasting the good halves."""
    if frame.empty:
        return
    try:
        out.append(forecaster.predict(frame, horizon=horizon))
        return
    except (DataValidationError, NonFiniteForecastError) as err:
        codes, uniques = pd.factorize(frame["unique_id"])
        if len(uniques) == 1:
            errors.append(_error(uniques[0], err))
            return
    half = len(uniques) // 2
    _isolate(forecaster, frame[codes < half], horizon, out, errors)
    _isolate(forecaster, frame[codes >= half], horizon, out, errors)
