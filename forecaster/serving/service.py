"""The BentoML service: ``bentoml serve`` (from the repository root) or ``python -m pipelines.serve``.

    POST /forecast         one series            -> forecast, timestamps, intervals, model
    POST /forecast_batch   many series, batched  -> forecasts
    GET|POST /metadata     the model: version, sizes, quantiles, test metrics beside baselines
    GET  /livez /readyz /metrics /docs.json      BentoML's probes, Prometheus and OpenAPI

Configuration (environment):
    FORECASTER_MODEL_URI         registry URI (default models:/forecaster-rnn@champion)
    MLFLOW_TRACKING_URI          the store (default sqlite:///mlflow.db in the working folder)
    FORECASTER_MODEL_DIR         serve this exported folder instead (no tracking store needed)
    FORECASTER_BENTO_MODEL       serve this BentoML model (``bentoml build`` packs it)
    FORECASTER_MAX_BODY_BYTES    request body limit (default 10 MB; larger -> 413)
    FORECASTER_MAX_BATCH_SERIES  series per /forecast_batch body (default 10,000)
    FORECASTER_WORKERS           server processes: a number (default 1) or cpu_count (one per
                                 core the container may use); see docs/benchmarks.md
    FORECASTER_API_TOKEN         a bearer token the forecast endpoints, /metadata and /metrics
                                 then need (401 without it); /livez and /readyz stay open
    FORECASTER_API_TOKEN_FILE    read the token from this file instead (a mounted secret)
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import logging
import os

import bentoml
import torch
from bentoml._internal.context import server_context
from starlette.responses import Response

from forecaster.models import NonFiniteForecastError
from forecaster.serving import predict
from forecaster.serving.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    CancellingTimeoutMiddleware,
    RequestGuard,
    RouteMetricsMiddleware,
    install_client_errors,
)
from forecaster.serving.schemas import (
    BatchRequest,
    BatchResponse,
    ForecastRequest,
    ForecastResponse,
    InvalidSeries,
    Metadata,
    details,
)
from forecaster.tracking.loading import ModelNotFoundError

log = logging.getLogger("bentoml.forecaster")

CancellingTimeoutMiddleware.install()  # BentoML's leaves a 60 s timer per request (see there)
install_client_errors()  # BentoML's logs a client's bad JSON as a server traceback (see there)
RouteMetricsMiddleware.install()  # BentoML's labels metrics by raw path: unbounded (see there)

BENTO_MODEL_TAG = os.environ.get("FORECASTER_BENTO_MODEL")


def _workers(value: str) -> int | str:
    """FORECASTER_WORKERS: a positive number of processes, or ``cpu_count``."""
    value = value.strip()
    if value == "cpu_count":
        return value
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise SystemExit(f"forecaster: FORECASTER_WORKERS must be a positive integer or "
                         f"'cpu_count', got {value!r}")
    return workers


def _api_token(env=os.environ) -> str | None:
    """FORECASTER_API_TOKEN, else the content of FORECASTER_API_TOKEN_FILE, else ``None``."""
    token, path = env.get("FORECASTER_API_TOKEN"), env.get("FORECASTER_API_TOKEN_FILE")
    if token is None and path:
        try:
            token = open(path).read().strip()
        except OSError as err:
            raise SystemExit(f"forecaster: FORECASTER_API_TOKEN_FILE {path!r} cannot be read: "
                             f"{err.strerror}") from None
    if token is not None and not token.strip():  # an empty token would protect nothing
        raise SystemExit("forecaster: the API token is empty; set FORECASTER_API_TOKEN (or "
                         "FORECASTER_API_TOKEN_FILE) to a secret, or unset it")
    return token


_API_TOKEN = _api_token()


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, allow_nan=False).encode(), status_code=status,
                    media_type="application/json")


def _forecast_json(body: dict) -> Response:
    """A 200 with forecasts (``predict.to_json``: float32 rows written by orjson)."""
    return Response(predict.to_json(body), media_type="application/json")


def _series_failure(m: predict.ServedModel, id: str, loc: tuple, err: BaseException) -> dict:
    """The answer of a batch's series that failed on its own in the forward pass."""
    if isinstance(err, NonFiniteForecastError):
        return {"id": id, "errors": [m.non_finite(err, loc)[1].to_dict()]}
    return {"id": id, "errors": [{**e.to_dict(), "loc": [*loc, *e.loc]} for e in err.errors]}


_ERROR = {"type": "object", "required": ["error", "detail"], "properties": {
    "error": {"type": "string"},
    "detail": {"type": "array", "items": {"type": "object", "required": ["loc", "msg", "type"],
               "properties": {
                   "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                 {"type": "integer"}]}},
                   "msg": {"type": "string"}, "type": {"type": "string"}}}}}}
_ERRORS = {
    "400": "The body is not JSON",
    "401": "No or a wrong bearer token (only when FORECASTER_API_TOKEN is set)",
    "413": "Request body too large (FORECASTER_MAX_BODY_BYTES)",
    "415": "Content type is not application/json",
    "422": "The body breaks a rule: each detail names the field (loc), the rule and what is "
           "needed (msg)",
    "500": "The model produced a non-finite forecast",
}
_API_PATHS = ("/forecast", "/forecast_batch", "/metadata")

_served: predict.ServedModel | None = None  # this worker's model, for /docs.json


def _branch(prop: dict) -> dict:
    """The non-null branch of an optional field's schema (pydantic writes ``anyOf``)."""
    return next((b for b in prop.get("anyOf", ()) if b.get("type") != "null"), prop)


def _model_rules(d: dict, m: predict.ServedModel) -> None:
    """Write the loaded model's rules and its runnable examples into the OpenAPI dict."""
    fc = d["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    batch = d["paths"]["/forecast_batch"]["post"]["requestBody"]["content"]["application/json"]
    for series in (fc["schema"]["properties"],
                   d["components"]["schemas"]["SeriesInput"]["properties"]):
        series["values"]["minItems"] = m.input_size
        ts = _branch(series["timestamps"])
        ts["description"] += f" This model's frequency: {m.freq!r}."
        if m.calendar:
            ts["description"] += f" Required: the model reads calendar features {m.calendar}."
        cov = _branch(series["covariates"])
        cov["properties"] = {name: cov["additionalProperties"] for name in m.futr_exog}
        cov["required"], cov["additionalProperties"] = list(m.futr_exog), False
        cov["description"] += f" This model's: {m.futr_exog}."
    for body in (fc, batch):
        _branch(body["schema"]["properties"]["horizon"])["maximum"] = m.horizon
    example = m.example
    fc["example"] = example
    batch["example"] = {"series": [{"id": "series-1", **example},
                                   {"id": "series-2", **example}]}


class _Spec:
    """BentoML's OpenAPI document, made true for this service: the loaded model's rules
    (``minItems`` = input_size, horizon maximum, frequency, covariate names) and a runnable
    example per endpoint; the error answers as they are sent; the title and version of the
    project and the model; ``GET /metadata``."""

    def __init__(self, spec):
        self._spec = spec

    def __getattr__(self, name):
        return getattr(self._spec, name)

    def asdict(self) -> dict:
        d = self._spec.asdict()
        m = _served
        version, about = importlib.metadata.version("forecaster"), ""
        if m is not None:
            version += f"+model.{m.info.version}" if m.info.version else ""
            about = (f" Serving {m.info.name or m.info.uri}, version {m.info.version}, alias "
                     f"{m.info.alias}.")
        d["info"] = {"title": "forecaster", "version": version, "description":
                     importlib.metadata.metadata("forecaster")["Summary"] + about
                     + " Every rule the server enforces is stated here."}
        schemas = d.setdefault("components", {}).setdefault("schemas", {})
        for name in ("InvalidArgument", "NotFound", "InternalServerError"):
            schemas.pop(name, None)
        schemas["Error"] = _ERROR
        for path in _API_PATHS:
            op = d["paths"].get(path, {}).get("post")
            if op is None:
                continue
            ok = {str(k): v for k, v in op["responses"].items() if str(k) == "200"}
            op["responses"] = {**ok, **{
                status: {"description": text, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}
                for status, text in _ERRORS.items()}}
        d["paths"]["/metadata"]["post"]["requestBody"]["content"]["application/json"][
            "example"] = {}
        get = {k: v for k, v in d["paths"]["/metadata"]["post"].items() if k != "requestBody"}
        d["paths"]["/metadata"]["get"] = {**get, "operationId": "forecaster__metadata_get"}
        if _API_TOKEN is not None:  # Swagger's "Authorize" button, and the rule stated
            d["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path in (*_API_PATHS, "/metrics"):
                for op in d["paths"].get(path, {}).values():
                    op["security"] = [{"bearer": []}]
        if m is not None:
            _model_rules(d, m)
        return d


class _Service(bentoml.Service):
    @property
    def openapi_spec(self):
        return _Spec(super().openapi_spec)


@bentoml.service(
    name="forecaster",
    service_class=_Service,
    workers=_workers(os.environ.get("FORECASTER_WORKERS", "1")),
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},  # RequestGuard logs one JSON line per request
)
class ForecastService:
    if BENTO_MODEL_TAG:  # declared at class level so that `bentoml build` packs it
        bento_model = bentoml.models.BentoModel(BENTO_MODEL_TAG)

    @bentoml.on_deployment
    def check_model() -> None:
        """Runs once, before the workers start: no registered model -> exit with how to train."""
        try:
            predict.check_source()
        except ModelNotFoundError as err:
            log.error("%s", err)
            raise SystemExit(f"forecaster: {err}") from None

    def __init__(self) -> None:
        torch.set_num_threads(int(os.environ.get("FORECASTER_TORCH_THREADS", 1)))
        path = self.bento_model.path if BENTO_MODEL_TAG else None
        global _served
        forecaster, info, example = predict.load(path)
        self.model = _served = predict.ServedModel(forecaster, info, example)
        if server_context.bento_version == "not available" and info.version:
            # the metrics' service_version label: the Bento's version, else the model's
            server_context.bento_version = f"model-{info.version}"
        self.batcher = predict.MicroBatcher(self.model.predict)
        log.info("serving %s (version %s, alias %s) from %s", info.name, info.version,
                 info.alias, info.uri)
        # The objects loaded so far (torch, pandas, bentoml, the model) live as long as the
        # process: move them out of the collector's reach, so that a full collection triggered
        # by request garbage scans only that garbage (it took 100s of ms: the p99 of /forecast).
        gc.collect()
        gc.freeze()

    @bentoml.on_shutdown
    def close(self) -> None:
        self.batcher.close()

    @bentoml.api(route="/forecast")
    async def forecast(self, request: ForecastRequest, /) -> ForecastResponse:
        """Forecast one series from its history."""
        m = self.model
        errors: list[predict.FieldError] = []
        horizon = m.check_horizon(request.horizon, errors)
        series = m.check_series(None, request.values, request.timestamps,
                                request.covariates, horizon, (), errors)
        if errors:
            return _json(predict.RequestError(errors).to_dict(), 422)
        try:
            values = await self.batcher.submit(series)  # [H, Q]
        except NonFiniteForecastError as err:
            status, error = m.non_finite(err)
            body = predict.RequestError([error]).to_dict()
            if status == 500:
                body["error"] = "the model produced a non-finite forecast"
            return _json(body, status)
        except predict.RequestError as err:
            return _json(err.to_dict(), 422)
        return _forecast_json({**m.render(series, values, horizon), "model": m.model_ref})

    @bentoml.api(route="/forecast_batch")
    async def forecast_batch(self, request: BatchRequest, /) -> BatchResponse:
        """Forecast many series in batched forward passes; a series that breaks a rule gets
        its errors in its place, the others their forecasts."""
        m = self.model
        errors: list[predict.FieldError] = []
        horizon = m.check_horizon(request.horizon, errors)
        if errors:  # a rule of the whole request
            return _json(predict.RequestError(errors).to_dict(), 422)
        answers: list[dict | None] = [None] * len(request.series)  # request order
        checked, where = [], []  # the series to forecast, their positions
        seen: set[str] = set()
        for k, s in enumerate(request.series):
            if isinstance(s, InvalidSeries):
                answers[k] = {"id": s.id, "errors": details(s.errors, ("series", k))}
                continue
            errors = []
            if s.id in seen:
                errors.append(predict.FieldError(("series", k, "id"), f"series ids must be "
                                                 f"unique; {s.id!r} repeats", "duplicated"))
            seen.add(s.id)
            series = m.check_series(s.id, s.values, s.timestamps, s.covariates, horizon,
                                    ("series", k), errors)
            if errors:
                answers[k] = {"id": s.id, "errors": [e.to_dict() for e in errors]}
            else:
                checked.append(series)
                where.append(k)
        values, failed = await self.batcher.run(checked) if checked else (None, {})
        for i, err in failed.items():
            answers[where[i]] = _series_failure(m, checked[i].id, ("series", where[i]), err)
        if len(checked) == len(answers) and not failed:  # the usual case: all forecast
            answers = m.render_many(checked, values, horizon)
        elif done := [i for i in range(len(checked)) if i not in failed]:
            rendered = m.render_many([checked[i] for i in done], values, horizon)
            for i, answer in zip(done, rendered):
                answers[where[i]] = answer
        return _forecast_json({"forecasts": answers, "model": m.model_ref})

    @bentoml.api(route="/metadata")
    def metadata(self) -> Metadata:
        """The served model: version, sizes, quantiles, and its test metrics beside baselines'."""
        return Metadata(**self.model.metadata())


ForecastService.add_asgi_middleware(
    RequestGuard,
    max_body_bytes=int(os.environ.get("FORECASTER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
    token=_API_TOKEN)
