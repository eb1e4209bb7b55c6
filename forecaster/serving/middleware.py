"""ASGI middleware: request id + one structured log line per request, body limits, JSON only,
and the places where BentoML 1.4's own behaviour is replaced.

BentoML has no body limit and parses any content type as JSON, so these rules sit in front
of it: a body over ``max_body_bytes`` is answered 413 before it is parsed (by its
Content-Length, or by counting the streamed bytes when there is none or it lies), and a POST
whose content type is not JSON is answered 415. ``GET /metadata`` is served as the POST. With
a token, the protected paths need ``Authorization: Bearer <token>`` (else 401); the probes
stay open for the orchestrator.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid

# private modules: what is replaced below lives there in bentoml 1.4 (pyproject bounds the
# version; tests/serving/test_timeout_middleware.py fails if the factory stops using ours)
from _bentoml_impl.server.app import ServiceAppFactory as _ServiceAppFactory
from bentoml._internal.server.http import instruments as _bentoml_instruments
from bentoml._internal.server.http import traffic as _bentoml_traffic
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.routing import Match

from forecaster.serving.schemas import client_errors

# a child of "bentoml", whose handler BentoML configures in every server process
log = logging.getLogger("bentoml.forecaster.access")

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_json(send, status: int, body: dict, request_id: str) -> None:
    payload = json.dumps(body).encode()
    challenge = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()), (b"connection", b"close"), *challenge]})
    await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive):
    """A ``receive`` that hands over the buffered body once, then the client's messages."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestGuard:
    """Request ids, access log lines, and the size / content-type rules of POST bodies.

    Args:
        app: the wrapped ASGI app.
        max_body_bytes: largest accepted request body, in bytes.
        skip_log_paths: paths not logged (probes).
        get_as_post: API paths without parameters whose GET is answered as their POST.
        token: the bearer token the protected paths need; ``None``: no token needed.
        protected: the paths that need the token.
    """

    def __init__(self, app, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 skip_log_paths: tuple[str, ...] = ("/livez", "/readyz", "/metrics"),
                 get_as_post: tuple[str, ...] = ("/metadata",), token: str | None = None,
                 protected: tuple[str, ...] = ("/forecast", "/forecast_batch", "/metadata",
                                               "/metrics")):
        self.app, self.max_body_bytes = app, int(max_body_bytes)
        self.skip_log_paths, self.get_as_post = set(skip_log_paths), set(get_as_post)
        self.token = None if token is None else f"Bearer {token}".encode()
        self.protected = set(protected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        state = {"status": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        if scope.get("method") == "GET" and scope.get("path") in self.get_as_post:
            scope = {**scope, "method": "POST"}  # BentoML routes its APIs for POST only
        try:
            rejection = self._unauthorized(scope) or self._reject(scope)
            if rejection:
                await _send_json(send, rejection[0], rejection[1], request_id)
                state["status"] = rejection[0]
                return
            if scope.get("method") == "POST":
                body = await self._read_body(receive)
                if body is None:
                    state["status"] = 413
                    await _send_json(send, 413, self._too_large(), request_id)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope.get("path", "")
            if path not in self.skip_log_paths:
                log.info(json.dumps({
                    "event": "request", "request_id": request_id, "method": scope.get("method"),
                    "path": path, "status": state["status"],
                    "duration_ms": round(1000 * (time.perf_counter() - start), 3)}))

    async def _read_body(self, receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (whatever Content-Length said)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected: let the app see an empty body
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> dict:
        return {"error": "request body too large", "detail": [{
            "type": "too_large", "loc": ["body"],
            "msg": f"the request body may be at most {self.max_body_bytes} bytes"}]}

    def _unauthorized(self, scope) -> tuple[int, dict] | None:
        if self.token is None or scope.get("path") not in self.protected:
            return None
        given = _header(scope, b"authorization")
        if given is None:
            msg = "this server needs the header 'Authorization: Bearer <token>'"
        elif hmac.compare_digest(given.encode("latin-1"), self.token):
            return None
        else:
            msg = "the bearer token in 'Authorization' is not this server's"
        return 401, {"error": "unauthorized", "detail": [{
            "type": "unauthorized", "loc": ["header", "authorization"], "msg": msg}]}

    def _reject(self, scope) -> tuple[int, dict] | None:
        if scope.get("method") != "POST":
            return None
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body_bytes
            except ValueError:
                return 400, {"error": "bad Content-Length", "detail": [{
                    "type": "invalid", "loc": ["header", "content-length"],
                    "msg": "Content-Length must be an integer"}]}
            if too_large:
                return 413, self._too_large()
        content_type = (_header(scope, b"content-type") or "application/json").split(";")[0]
        if content_type.strip().lower() != "application/json":
            return 415, {"error": "unsupported media type", "detail": [{
                "type": "content_type", "loc": ["header", "content-type"],
                "msg": f"the body must be application/json, got {content_type!r}"}]}
        return None


class CancellingTimeoutMiddleware(_bentoml_traffic.TimeoutMiddleware):
    """BentoML's ``traffic.timeout`` middleware, with its timer cancelled when the answer is sent.

    BentoML 1.4's ``TimeoutMiddleware`` schedules ``loop.call_later(timeout, ...)`` for every
    request and never cancels it, so each request's future, context and tracing span stay
    alive for the whole timeout (60 s here). Under 1,500 requests/s that is ~90,000 requests'
    objects: the cyclic collector's full passes over them grew to 60+ ms and stalled every
    in-flight request (the p99 of /forecast). Same behaviour otherwise: 504 when no answer has
    started within ``timeout`` seconds (the 504 comes from outside ``RequestGuard``, so it has
    no ``x-request-id``), and an app that fails before answering is not waited on for the
    timeout. ``install()`` puts it in BentoML's place.
    """

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        def answered(*_) -> None:
            if not waiter.done():
                waiter.set_result(None)

        async def _send(message) -> None:
            answered()
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send))
        # an app that fails (or returns) before sending anything: stop waiting, raise below
        fut.add_done_callback(answered)
        try:
            await waiter
        except asyncio.TimeoutError:
            if fut.cancel():
                await JSONResponse({"error": f"Not able to process the request in "
                                    f"{self.timeout} seconds"}, status_code=504)(scope, receive, send)
                return
        finally:
            timer.cancel()
        await fut

    @classmethod
    def install(cls) -> None:
        """Make BentoML's app factory build this class (it imports the name when it builds the
        middleware stack, in each worker, after the service module is imported)."""
        _bentoml_traffic.TimeoutMiddleware = cls


def install_client_errors() -> None:
    """Answer a request that breaks its schema with the service's own 4xx (``client_errors``).

    BentoML 1.4's ``api_endpoint_wrapper`` logs every pydantic ``ValidationError`` (malformed
    JSON, a string for a number...) at ERROR with a 20-line traceback, and answers with
    pydantic's class names and links. A client's mistake is not the server's error: it is
    answered here, before the wrapper sees it, and logged as ``RequestGuard``'s one line.
    """
    original = _ServiceAppFactory.api_endpoint
    if getattr(original, "client_errors", False):
        return

    async def api_endpoint(self, name, request):
        try:
            return await original(self, name, request)
        except ValidationError as exc:
            if exc.title != self.service.apis[name].input_spec.__name__:
                raise  # an answer failing its own schema is the server's error
            status, body = client_errors(exc)
        except BentoMLException as exc:
            status = int(exc.error_code)
            if status >= 500:
                raise
            body = {"error": str(exc), "detail": [{"loc": ["body"], "msg": str(exc),
                                                   "type": "bad_request"}]}
        return JSONResponse(body, status_code=status)

    api_endpoint.client_errors = True
    _ServiceAppFactory.api_endpoint = api_endpoint


UNMATCHED_ROUTE = "unmatched"


class RouteMetricsMiddleware(_bentoml_instruments.RunnerTrafficMetricsMiddleware):
    """BentoML's request metrics, labelled by route template instead of the raw path.

    BentoML 1.4 labels ``bentoml_service_request_*`` with ``endpoint=scope["path"]``: every
    distinct path a client (or a scanner) sends becomes a new time series, so ``/metrics`` and
    the server's memory grow without bound. Here the label is the template of the route that
    answers (``/forecast``, ``/static_content``), and every path no route knows shares
    ``unmatched``. ``install()`` puts it in BentoML's place.
    """

    def __init__(self, app, **kwargs):
        super().__init__(self._inner, **kwargs)
        self._app = app

    async def _inner(self, scope, receive, send):
        # BentoML's code saw the labelled copy; the app gets the request as it came
        await self._app(scope["forecaster.scope"], receive, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            return await self._app(scope, receive, send)
        labelled = {**scope, "path": self.route(scope), "forecaster.scope": scope}
        await super().__call__(labelled, receive, send)

    @staticmethod
    def route(scope) -> str:
        """The template of the route of the app (``scope["app"]``, set by Starlette) that
        matches the request (whatever its method), else ``UNMATCHED_ROUTE``."""
        for route in getattr(scope.get("app"), "routes", ()):
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return getattr(route, "path", UNMATCHED_ROUTE)
        return UNMATCHED_ROUTE

    @classmethod
    def install(cls) -> None:
        """Make BentoML's app factory build this class (it imports the name when it builds the
        middleware stack)."""
        _bentoml_instruments.RunnerTrafficMetricsMiddleware = cls
