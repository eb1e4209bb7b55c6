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
    FORECASTER_TORCH_THREADS     each worker's torch threads (default: its share of the CPUs
                                 available, forecaster/runtime.py; a bad value ends the server)
    FORECASTER_API_TOKEN         a bearer token the forecast endpoints, /metadata and /metrics
                                 then need (401 without it); /livez and /readyz stay open
    FORECASTER_API_TOKEN_FILE    read the token from this file instead (a mounted secret)
    FORECASTER_POLL_SECONDS      how often a service of an alias (models:/name@alias) asks the
                                 registry where it points (default 30; 0: never); a new version
                                 is loaded, checked on its input example and swapped in
    FORECASTER_MAX_CONCURRENCY   forecast requests a worker answers or queues at once (default
                                 256); more get a fast 503 with Retry-After: 1
    FORECASTER_MAX_SERIES_LENGTH values per series (default 100,000; longer -> 422)
    FORECASTER_MAX_HEADER_BYTES  request headers in total (default 16 KiB; more -> 431, closed)
    FORECASTER_HEADER_TIMEOUT_S  seconds a connection may take to send its headers (default 10;
                                 slower -> 408, closed)
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import logging
import os
import threading
import time

from forecaster import runtime

runtime.prepare_openmp()  # before torch loads: short spins for waiting threads

import bentoml  # noqa: E402
import torch  # noqa: E402
from bentoml._internal.context import server_context
from starlette.responses import Response

from forecaster.models.predictor import NonFiniteForecastError
from forecaster.serving import fastpath, rules, source, writer
from forecaster.serving.model import ModelLoadError, ServedModel
from forecaster.serving.middleware import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
    CancellingTimeoutMiddleware,
    HeaderLimits,
    RequestGuard,
    RouteMetricsMiddleware,
    install_client_errors,
    install_prompt_respawn,
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

log = logging.getLogger("bentoml.forecaster")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in server logs

CancellingTimeoutMiddleware.install()  # BentoML's leaves a 60 s timer per request (see there)
install_client_errors()  # BentoML's logs a client's bad JSON as a server traceback (see there)
RouteMetricsMiddleware.install()  # BentoML's labels metrics by raw path: unbounded (see there)
install_prompt_respawn()  # BentoML's arbiter looks for dead workers every 10 s (see there)
HeaderLimits.install(float(os.environ.get("FORECASTER_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S)),
                     int(os.environ.get("FORECASTER_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)))

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


WORKERS = _workers(os.environ.get("FORECASTER_WORKERS", "1"))


def _worker_threads() -> runtime.ThreadChoice:
    """Each worker's torch threads: ``FORECASTER_TORCH_THREADS``, else its share of the CPUs
    available (``forecaster.runtime``: one per worker with ``cpu_count`` workers)."""
    jobs = runtime.available_cpus() if WORKERS == "cpu_count" else WORKERS
    return runtime.choose_threads(jobs=jobs, setting_name=runtime.THREADS_ENV)


def _process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc, to the clock tick)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return float("nan")


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
    """A 200 with forecasts (``writer.to_json``: float32 rows written by orjson)."""
    return Response(writer.to_json(body), media_type="application/json")


def _series_failure(m: ServedModel, id: str, loc: tuple, err: BaseException) -> dict:
    """The answer of a batch's series that failed on its own in the forward pass."""
    if isinstance(err, NonFiniteForecastError):
        return {"id": id, "errors": [m.non_finite(err, loc).to_dict()]}
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
    "503": "The worker is answering FORECASTER_MAX_CONCURRENCY requests already: retry after "
           "the Retry-After header's seconds",
}
_API_PATHS = ("/forecast", "/forecast_batch", "/metadata")

_served: ServedModel | None = None  # this worker's model, for /docs.json


def _branch(prop: dict) -> dict:
    """The non-null branch of an optional field's schema (pydantic writes ``anyOf``)."""
    return next((b for b in prop.get("anyOf", ()) if b.get("type") != "null"), prop)


def _require(schema: dict, name: str) -> None:
    """Make an optional field of ``schema`` required, and not null (the model needs it)."""
    prop = _branch(schema["properties"][name])
    for key in ("default", "nullable"):
        prop.pop(key, None)
    schema["properties"][name] = prop
    schema["required"] = [*schema.get("required", []), name]


def _model_rules(d: dict, m: ServedModel) -> None:
    """Write the loaded model's rules and its runnable examples into the OpenAPI dict."""
    fc = d["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    batch = d["paths"]["/forecast_batch"]["post"]["requestBody"]["content"]["application/json"]
    for schema in (fc["schema"], d["components"]["schemas"]["SeriesInput"]):
        series = schema["properties"]
        series["values"]["minItems"] = m.input_size
        series["values"]["maxItems"] = m.max_length
        if isinstance(m.freq, str):
            ts = _branch(series["last_timestamp"])
            ts["description"] += f" This model's frequency: {m.freq!r}."
            if m.calendar:
                ts["description"] += f" Required: the model reads calendar features {m.calendar}."
                _require(schema, "last_timestamp")
        else:  # integer time steps: the model has no dates, and the field is refused
            series.pop("last_timestamp")
        for field, low, high in (("covariates", m.input_size, m.max_length),
                                 ("future_covariates", m.horizon, m.horizon)):
            cov = _branch(series[field])
            each = {**cov["additionalProperties"], "minItems": low, "maxItems": high}
            cov["properties"] = {name: each for name in m.futr_exog}
            cov["required"], cov["additionalProperties"] = list(m.futr_exog), False
            cov["description"] += f" This model's: {m.futr_exog}."
            if m.futr_exog:  # the model reads them
                _require(schema, field)
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
        for path in ("/forecast", "/forecast_batch"):  # an empty body is a 422: say it is needed
            d["paths"][path]["post"]["requestBody"]["required"] = True
        get = {k: v for k, v in d["paths"]["/metadata"]["post"].items() if k != "requestBody"}
        d["paths"]["/metadata"]["get"] = {**get, "operationId": "forecaster__metadata_get"}
        if _API_TOKEN is not None:  # Swagger's "Authorize" button, and the rule stated
            d["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path in (*_API_PATHS, "/metrics"):
                for op in d["paths"].get(path, {}).values():
                    op["security"] = [{"bearer": []}]
        if m is not None:
            _model_rules(d, m)
        _nullable(d)
        # a batch answers a series that breaks its schema with that series' errors (200), so
        # the schema accepts any item and says what happens to it
        batch = d["paths"]["/forecast_batch"]["post"]["requestBody"]["content"][
            "application/json"]["schema"]["properties"]["series"]
        batch["items"] = {"anyOf": [batch["items"], {
            "description": "Any other item is not forecast: it is answered in its place with "
                           "its errors (the series id when it has one, each field and rule)"}]}
        return d


def _nullable(node) -> None:
    """Optional fields (``default: null``) accept null: say so (OpenAPI 3.0 ``nullable``), so
    that the schema states what the server accepts."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None and "type" in node:
            node["nullable"] = True
        for value in node.values():
            _nullable(value)
    elif isinstance(node, list):
        for value in node:
            _nullable(value)


class _Service(bentoml.Service):
    @property
    def openapi_spec(self):
        return _Spec(super().openapi_spec)


@bentoml.service(
    name="forecaster",
    service_class=_Service,
    workers=WORKERS,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},  # RequestGuard logs one JSON line per request
)
class ForecastService:
    if BENTO_MODEL_TAG:  # declared at class level so that `bentoml build` packs it
        bento_model = bentoml.models.BentoModel(BENTO_MODEL_TAG)

    @bentoml.on_deployment
    def prepare_model() -> None:
        """Runs once, before the workers start: the model is resolved (downloaded from the
        registry into a local folder the workers then read), loaded and warmed up on its input
        example. Any failure ends the server with exit status 1 and one message naming the file
        or URI and the cause: no worker starts, so nothing restarts in a loop."""
        try:  # a bad setting ends the server here, before any worker starts
            runtime.explicit_threads(None)
        except runtime.ThreadSettingError as err:
            raise SystemExit(f"forecaster: {err}") from None
        torch.set_num_threads(1)
        path = bentoml.models.get(BENTO_MODEL_TAG).path if BENTO_MODEL_TAG else None
        try:
            folder = source.prepare(path)
        except ModelLoadError as err:  # one line on stderr, exit status 1
            raise SystemExit(f"forecaster: {err}") from None
        os.environ[source.PREPARED_ENV] = str(folder)  # the workers inherit it

    def __init__(self) -> None:
        threads = runtime.apply(_worker_threads())
        log.info("torch threads: %s", threads.describe())
        path = self.bento_model.path if BENTO_MODEL_TAG else None
        global _served
        try:
            model = _served = source.open_served(path)  # loaded and warmed up
        except ModelLoadError as err:  # the deployment hook checked it: a rare case
            log.error("%s", err)
            raise SystemExit(f"forecaster: {err}") from None
        # (model, its batcher): read once per request, replaced in one assignment by a swap
        self.current = (model, fastpath.MicroBatcher(model.predict))
        info = model.info
        poll = float(os.environ.get("FORECASTER_POLL_SECONDS", 30))
        self.follower = (source.AliasFollower(info.version, self._swap, poll).start()
                         if poll > 0 and source.follows_alias() else None)
        if server_context.bento_version == "not available" and info.version:
            # the metrics' service_version label: the Bento's version, else the model's
            server_context.bento_version = f"model-{info.version}"
        log.info("serving %s (version %s, alias %s) from %s; worker ready %.2f s after its "
                 "process started", info.name, info.version, info.alias, info.uri,
                 _process_age_s())
        # The objects loaded so far (torch, pandas, bentoml, the model) live as long as the
        # process: move them out of the collector's reach, so that a full collection triggered
        # by request garbage scans only that garbage (it took 100s of ms: the p99 of /forecast).
        gc.collect()
        gc.freeze()

    @property
    def model(self) -> ServedModel:
        return self.current[0]

    def _swap(self, model: ServedModel) -> None:
        """Serve ``model`` from now on (the follower checked it): requests already running
        finish on the model they started with; its batcher closes once they are done."""
        global _served
        old = self.current[1]
        self.current = (model, fastpath.MicroBatcher(model.predict))
        _served = model
        if model.info.version:
            server_context.bento_version = f"model-{model.info.version}"
        threading.Timer(120, old.close).start()  # longer than any request may run

    def __is_ready__(self) -> bool:
        """``/readyz``: this worker's model forecast its input example finitely (``__init__``
        fails otherwise)."""
        return self.current[0] is not None

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.current[1].close()

    @bentoml.api(route="/forecast")
    async def forecast(self, request: ForecastRequest, /) -> ForecastResponse:
        """Forecast one series from its history."""
        m, batcher = self.current  # the model that answers, whatever a swap does meanwhile
        errors: list[rules.FieldError] = []
        horizon = m.check_horizon(request.horizon, errors)
        series = m.check_series(None, request.values, request.last_timestamp,
                                request.covariates, request.future_covariates, horizon, (),
                                errors)
        if errors:
            return _json(rules.RequestError(errors).to_dict(), 422)
        try:
            values = await batcher.submit(series)  # [H, Q]
        except NonFiniteForecastError as err:
            return _json(rules.RequestError([m.non_finite(err)]).to_dict(), 422)
        except rules.RequestError as err:
            return _json(err.to_dict(), 422)
        return _forecast_json({**m.render(series, values, horizon), "model": m.model_ref})

    @bentoml.api(route="/forecast_batch")
    async def forecast_batch(self, request: BatchRequest, /) -> BatchResponse:
        """Forecast many series in batched forward passes; a series that breaks a rule gets
        its errors in its place, the others their forecasts."""
        m, batcher = self.current
        errors: list[rules.FieldError] = []
        horizon = m.check_horizon(request.horizon, errors)
        if errors:  # a rule of the whole request
            return _json(rules.RequestError(errors).to_dict(), 422)
        answers: list[dict | None] = [None] * len(request.series)  # request order
        checked, where = [], []  # the series to forecast, their positions
        seen: set[str] = set()
        for k, s in enumerate(request.series):
            if isinstance(s, InvalidSeries):
                answers[k] = {"id": s.id, "errors": details(s.errors, ("series", k))}
                continue
            errors = []
            if s.id in seen:
                errors.append(rules.FieldError(("series", k, "id"), f"series ids must be "
                                                 f"unique; {s.id!r} repeats", "duplicated"))
            seen.add(s.id)
            series = m.check_series(s.id, s.values, s.last_timestamp, s.covariates,
                                    s.future_covariates, horizon, ("series", k), errors)
            if errors:
                answers[k] = {"id": s.id, "errors": [e.to_dict() for e in errors]}
            else:
                checked.append(series)
                where.append(k)
        values, failed = await batcher.run(checked) if checked else (None, {})
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
    token=_API_TOKEN,
    max_in_flight=int(os.environ.get("FORECASTER_MAX_CONCURRENCY", DEFAULT_MAX_IN_FLIGHT)))
