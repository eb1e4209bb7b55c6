"""Request and response schemas of the service: the pydantic models *are* the HTTP contract.

Every rule that does not depend on the loaded model is a pydantic constraint here, so
``/docs.json`` states it: strict types (no strings or booleans where numbers belong), finite
numbers only (``NaN``, ``Infinity`` and ``1e309`` are rejected), non-empty lists, ``horizon >= 1``
and no unknown fields. The rules that depend on the model (at least ``input_size`` values,
``horizon`` at most the model's, the covariate names) are checked by
``forecaster.serving.validation`` and stated in the field descriptions.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# read at import, so the limit the server enforces is the one /docs.json states
MAX_BATCH_SERIES = int(os.environ.get("FORECASTER_MAX_BATCH_SERIES", 10_000))

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Values = Annotated[list[Number], Field(
    min_length=1, description="The history, oldest first: finite numbers; at least the model's "
    "input_size of them (see /metadata). Only the last input_size are read.")]
Timestamps = Annotated[list[Annotated[str, StringConstraints(strict=True, min_length=1)]], Field(
    min_length=1, description="ISO-8601 time of each value: as many as values, strictly "
    "increasing, evenly spaced. The forecast's timestamps continue at that frequency.")]
Horizon = Annotated[int, Field(
    strict=True, ge=1, description="Steps to forecast: 1 to the model's horizon (see /metadata); "
    "default the model's horizon.")]
Covariates = Annotated[dict[str, Annotated[list[Number], Field(min_length=1)]], Field(
    description="One list per known-future exogenous column of the model (see /metadata "
    "futr_exog): len(values) + the model's horizon finite numbers, the history's then the "
    "forecast steps'.")]
SeriesId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ForecastRequest(_Strict):
    """One series' history."""

    values: Values
    timestamps: Timestamps | None = None
    horizon: Horizon | None = None
    covariates: Covariates | None = None


class SeriesInput(_Strict):
    """One series of a batch."""

    id: SeriesId
    values: Values
    timestamps: Timestamps | None = None
    covariates: Covariates | None = None


class BatchRequest(_Strict):
    """Several series, forecast in batched forward passes."""

    series: Annotated[list[SeriesInput], Field(
        min_length=1, max_length=MAX_BATCH_SERIES,
        description="The series, with unique ids; at most FORECASTER_MAX_BATCH_SERIES of them.")]
    horizon: Horizon | None = None


class ModelRef(BaseModel):
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None


class ForecastResponse(BaseModel):
    forecast: list[float] = Field(description="The point forecast (the median of a quantile model).")
    timestamps: list[str] | None = Field(None, description="Present when timestamps were given.")
    intervals: dict[str, list[float]] | None = Field(
        None, description="Quantile level -> forecast, for quantile models: {'0.1': [...], ...}.")
    model: ModelRef


class SeriesForecast(BaseModel):
    id: str
    forecast: list[float]
    timestamps: list[str] | None = None
    intervals: dict[str, list[float]] | None = None


class BatchResponse(BaseModel):
    forecasts: list[SeriesForecast]
    model: ModelRef


class Metadata(BaseModel):
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    uri: str | None = None
    input_size: int
    horizon: int
    frequency: str | None = None
    quantiles: list[float]
    futr_exog: list[str]
    calendar: list[str]
    metrics: dict[str, dict[str, float]] = Field(
        description="Test metrics of the model beside the baselines': "
        "{'model': {'mase': ...}, 'naive': {...}, 'seasonal_naive': {...}}.")
