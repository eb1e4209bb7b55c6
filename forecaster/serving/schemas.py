"""Request and response schemas of the service: the pydantic models *are* the HTTP contract.

Every rule that does not depend on the loaded model is a pydantic constraint here, so
``/docs.json`` states it: strict types (no strings or booleans where numbers belong), finite
numbers within +-1e30 only (``NaN``, ``Infinity``, ``1e309`` and ``1e39`` are rejected), non-empty
lists, ``horizon >= 1`` and no unknown fields. The rules that depend on the model (at least
``input_size`` values, ``horizon`` at most the model's, the frequency, the covariate names) are
checked by ``forecaster.serving.model.ServedModel`` and written into ``/docs.json`` by the
service once the model is loaded.

:func:`client_errors` turns pydantic's errors into the service's own: ``{loc, msg, type}``
whose message names the field, the rule and what is needed (no class names, no links).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WrapValidator,
)

# read at import, so the limit the server enforces is the one /docs.json states
MAX_BATCH_SERIES = int(os.environ.get("FORECASTER_MAX_BATCH_SERIES", 10_000))

# The model computes in float32 (at most 3.4e38): a value is at most 1e30 in size, so that a
# forecast may reach 10^8 times beyond the history's range and still be a float32 (a history of
# +-3e38 was forecast as infinity, though every value was a float32).
MAX_VALUE = 1e30
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)]
Values = Annotated[list[Number], Field(
    min_length=1, description="The history, oldest first: finite numbers; at least the model's "
    "input_size of them (see /metadata). Only the last input_size are read.")]
# An ISO-8601 date or date-time from 1900 to 2199 that exists (no 2023-02-29), with an optional
# UTC offset: every string it matches parses, so the schema states exactly what is accepted.
_YEAR = r"(?:19|20|21)\d\d"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])"
         r"|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8]))"
         r"|(?:19|20|21)(?:0[48]|[2468][048]|[13579][26])-02-29|2000-02-29)")
_TIME = (r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?"
         r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?")
TIMESTAMP_PATTERN = f"^{_DATE}{_TIME}$"
LastTimestamp = Annotated[str, StringConstraints(strict=True, pattern=TIMESTAMP_PATTERN), Field(
    description="The time of the last value: an ISO-8601 date or date-time from 1900 to 2199, "
    "e.g. 2001-12-29 or 2024-03-01T13:00:00+02:00. The other values are one step of the model's "
    "frequency apart, oldest first: fill gaps before sending. A time with a UTC offset is read "
    "in UTC, and the forecast's timestamps, which continue from it, come back in UTC.",
    json_schema_extra={"example": "2001-12-29"})]
Horizon = Annotated[int, Field(
    strict=True, ge=1, description="Steps to forecast: 1 to the model's horizon (see /metadata); "
    "default the model's horizon.")]
Covariates = Annotated[dict[str, Annotated[list[Number], Field(min_length=1)]], Field(
    description="One list per known-future exogenous column of the model (see /metadata "
    "futr_exog): its values at the latest steps of the history, oldest first, aligned at the "
    "end with values (at least the model's input_size). A list longer than values starts "
    "earlier (its first items are not read); a shorter one covers the latest values only, and "
    "the forecast reads the history from where every covariate is known. The model reads each "
    "covariate in standard deviations of its history, clipped at 10,000.")]
FutureCovariates = Annotated[dict[str, Annotated[list[Number], Field(min_length=1)]], Field(
    description="One list per known-future exogenous column of the model: its values at the "
    "model's horizon steps after the last value (all of them, whatever the request's horizon).")]
SeriesId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ForecastRequest(_Strict):
    """One series' history."""

    values: Values
    last_timestamp: LastTimestamp | None = None
    horizon: Horizon | None = None
    covariates: Covariates | None = None
    future_covariates: FutureCovariates | None = None


class SeriesInput(_Strict):
    """One series of a batch."""

    id: SeriesId
    values: Values
    last_timestamp: LastTimestamp | None = None
    covariates: Covariates | None = None
    future_covariates: FutureCovariates | None = None


@dataclass
class InvalidSeries:
    """A series of a batch that broke its schema: answered with its errors, not forecast."""

    id: str | None  # None: the id itself was missing or not a string
    errors: list[dict]  # pydantic's errors, loc inside the series


def _series_or_errors(value, handler):
    """One bad series must not fail the batch: its schema errors are kept for its answer."""
    try:
        return handler(value)
    except ValidationError as err:
        sid = value.get("id") if isinstance(value, dict) else None
        return InvalidSeries(sid if isinstance(sid, str) else None,
                             err.errors(include_url=False))


class BatchRequest(_Strict):
    """Several series, forecast in batched forward passes."""

    series: Annotated[list[Annotated[SeriesInput, WrapValidator(_series_or_errors)]], Field(
        min_length=1, max_length=MAX_BATCH_SERIES,
        description="The series, with unique ids; at most FORECASTER_MAX_BATCH_SERIES of them. "
        "A series that breaks a rule gets an error object in the answer; the others are "
        "forecast.")]
    horizon: Horizon | None = None


class ModelRef(BaseModel):
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None


class ForecastResponse(BaseModel):
    forecast: list[float] = Field(
        description="The point forecast (the median of a quantile model).")
    timestamps: list[str] | None = Field(
        None, description="The forecast's times: present when last_timestamp was given.")
    intervals: dict[str, list[float]] | None = Field(
        None, description="Quantile level -> forecast, for quantile models: {'0.1': [...], ...}.")
    model: ModelRef


class SeriesForecast(BaseModel):
    id: str
    forecast: list[float]
    timestamps: list[str] | None = None
    intervals: dict[str, list[float]] | None = None


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="The field: ['series', 2, 'values', 5] is the 6th "
                                 "value of the 3rd series.")
    msg: str = Field(description="The rule broken and what is needed.")
    type: str


class SeriesError(BaseModel):
    id: str | None = Field(description="The series' id (null when the id itself is invalid).")
    errors: list[ErrorDetail]


class BatchResponse(BaseModel):
    forecasts: list[SeriesForecast | SeriesError] = Field(
        description="One entry per series, in request order: its forecast, or the errors that "
        "kept it from being forecast.")
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
    ensemble: dict[str, Any] = Field(
        description="What the model is: 'combine' (median of the members), 'members' (kind, "
        "input_size, lags, segment, base of each), 'seasons', and how 'intervals' are made.")


# ------------------------------------------------------------------------------ errors
def _where(loc: tuple) -> str:
    """``("series", 2, "values", 5)`` -> ``series[2].values[5]``; ``()`` -> ``the body``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"


def _message(err: dict) -> str:
    kind, where, ctx = err["type"], _where(err["loc"]), err.get("ctx") or {}
    given = err.get("input")
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden" and err["loc"][-1:] == ("timestamps",):
        return (f"{where} is no longer a field: send last_timestamp, the time of the last value "
                "(the values are one step of the model's frequency apart)")
    if kind == "extra_forbidden":
        return f"{where} is not a field of this request (see /docs.json for the fields)"
    if kind == "finite_number":
        return f"{where} must be a finite number: NaN and Infinity are not numbers in JSON"
    if kind in ("less_than_equal", "greater_than_equal") and abs(ctx.get("le", ctx.get(
            "ge", 0))) == MAX_VALUE:
        return (f"{where} must be within -1e30 to 1e30, got {given!r}: the model computes in "
                "float32, and its forecasts must stay within float32's range; send the values "
                "in larger units")
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        bound = {"less_than_equal": "at most {le}", "greater_than_equal": "at least {ge}",
                 "less_than": "below {lt}", "greater_than": "above {gt}"}[kind].format(**ctx)
        return f"{where} must be {bound}, got {given!r}"
    if kind == "string_pattern_mismatch" and err["loc"][-1:] == ("last_timestamp",):
        return (f"{where} must be an ISO-8601 date or date-time from 1900 to 2199 that exists, "
                f"like 2001-12-29 or 2024-03-01T13:00:00+02:00, got {clip(repr(given))}")
    if kind in ("too_short", "string_too_short"):
        return f"{where} needs at least {ctx['min_length']} item(s)" + (
            f", got {ctx['actual_length']}" if "actual_length" in ctx else "")
    if kind in ("too_long", "string_too_long"):
        return f"{where} may have at most {ctx['max_length']} item(s)" + (
            f", got {ctx['actual_length']}" if "actual_length" in ctx else "")
    named = {"float_type": "a number (not a string or a boolean)", "int_type": "an integer",
             "string_type": "a string", "list_type": "a list", "dict_type": "an object",
             "model_type": "an object", "model_attributes_type": "an object"}
    if kind in named:
        got = "null" if given is None else type(given).__name__
        return f"{where} must be {named[kind]}, got {got}"
    return f"{where}: {err['msg']}"


def client_errors(exc: ValidationError) -> tuple[int, dict]:
    """The status and body of a request that failed its schema.

    Returns:
        ``(400, ...)`` when the body is not JSON, else ``(422, ...)``; the body is
        ``{"error": ..., "detail": [{"loc", "msg", "type"}]}`` as for the model's own rules.
    """
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        reason = next(e for e in errors if e["type"] == "json_invalid").get("ctx", {}).get("error")
        return 400, {"error": "the body is not valid JSON", "detail": [{
            "loc": ["body"], "type": "json_invalid",
            "msg": f"the body must be a JSON object: {reason or 'it does not parse'}"}]}
    return 422, error_body(details(errors[:100]))


MAX_ECHO = 80  # characters of a client's input an error repeats (a name, a key)
MAX_MSG = 400


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` as an error may repeat it: at most ``limit`` characters, marked when cut."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def detail(loc, msg: str, type: str) -> dict:
    """One error detail, bounded: each ``loc`` part and the message are clipped, so that an
    answer never echoes more than an excerpt of the input."""
    return {"loc": [p if isinstance(p, int) else clip(p) for p in loc],
            "msg": clip(msg, MAX_MSG), "type": type}


def details(errors: list[dict], prefix: tuple = ()) -> list[dict]:
    """pydantic's errors as ``{loc, msg, type}`` in the project's words, ``loc`` after
    ``prefix`` (``("series", 2)`` for a series of a batch)."""
    out = []
    for e in errors:
        e = {**e, "loc": (*prefix, *e["loc"])}
        out.append(detail(e["loc"], _message(e), e["type"]))
    return out


def error_body(detail: list[dict]) -> dict:
    """``{"error": "n rules broken", "detail": detail}``: every 422 has this shape."""
    n = len(detail)
    return {"error": f"{n} rule{'s' * (n > 1)} broken", "detail": detail}
