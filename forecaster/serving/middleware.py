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
DEFAULT_MAX_IN_FLIGHT = 256  # forecast requests per worker answered or queued at once
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_RESPAWN_CHECK_S = 0.5  # how often the arbiter looks for dead workers


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_json(send, status: int, body: dict, request_id: str) -> None:
    payload = json.dumps(body).encode()
    extra = ([(b"www-authenticate", b"Bearer")] if status == 401 else
             [(b"retry-after", b"1")] if status == 503 else [])
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()), (b"connection", b"close"), *extra]})
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
                                               "/metrics"),
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 bounded: tuple[str, ...] = ("/forecast", "/forecast_batch")):
        self.app, self.max_body_bytes = app, int(max_body_bytes)
        self.skip_log_paths, self.get_as_post = set(skip_log_paths), set(get_as_post)
        self.token = None if token is None else f"Bearer {token}".encode()
        self.protected = set(protected)
        self.max_in_flight, self.bounded, self.in_flight = int(max_in_flight), set(bounded), 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        state = {"status": 500}

        as_get = scope.get("path") in self.get_as_post

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                if as_get and message["status"] == 405:  # it answers GET as well as POST
                    headers = [h for h in headers if h[0].lower() != b"allow"]
                    headers.append((b"allow", b"GET, POST"))
                message = {**message, "headers": headers}
            await send(message)

        if scope.get("method") == "GET" and scope.get("path") in self.get_as_post:
            scope = {**scope, "method": "POST"}  # BentoML routes its APIs for POST only
        counted = scope.get("path") in self.bounded
        try:
            rejection = (self._unauthorized(scope) or self._reject(scope)
                         or (self._overloaded() if counted else None))
            if rejection:
                counted = False
                await _send_json(send, rejection[0], rejection[1], request_id)
                state["status"] = rejection[0]
                return
            if counted:
                self.in_flight += 1
            if scope.get("method") == "POST":
                body = await self._read_body(receive)
                if body is None:
                    state["status"] = 413
                    await _send_json(send, 413, self._too_large(), request_id)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapper)
        finally:
            if counted:
                self.in_flight -= 1
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

    def _overloaded(self) -> tuple[int, dict] | None:
        """503 when this worker already has ``max_in_flight`` forecast requests: a fast answer
        with ``Retry-After`` rather than an unbounded queue."""
        if self.in_flight < self.max_in_flight:
            return None
        return 503, {"error": "server busy", "detail": [{
            "type": "overloaded", "loc": [],
            "msg": f"this worker is answering its limit of {self.max_in_flight} forecast "
                   "requests (FORECASTER_MAX_CONCURRENCY); retry after 1 s"}]}

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


def install_prompt_respawn(check_s: float = DEFAULT_RESPAWN_CHECK_S) -> None:
    """Replace a dead worker within ``check_s`` seconds, not up to 10.

    BentoML 1.4's arbiter (circus) notices a dead worker only on its periodic check, which
    BentoML sets to every 10 s: after a ``kill -9`` or an out-of-memory kill, 0-10 s passed
    before a new worker even started. The arbiter is created through the module global
    ``Arbiter`` of ``bentoml._internal.utils.circus`` (looked up at call time), so a subclass
    there sets the period. This runs in the ``bentoml serve`` process, which imports the
    service before it creates the arbiter.
    """
    from bentoml._internal.utils import circus as _circus

    original = _circus.Arbiter
    if getattr(original, "prompt_respawn", False):
        return

    class PromptArbiter(original):
        prompt_respawn = True

        def __init__(self, *args, **kwargs):
            kwargs["check_delay"] = check_s
            super().__init__(*args, **kwargs)

    _circus.Arbiter = PromptArbiter


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


class HeaderLimits:
    """Limits uvicorn's httptools protocol lacks, patched into it: a request's headers must
    arrive within ``timeout_s`` of the connection (or of the request's first byte) and total at
    most ``max_bytes``. A connection that never finishes its headers is answered 408 and
    closed; oversize headers are answered 431 and closed. (h11, uvicorn's other protocol,
    bounds header size itself; this service runs httptools.)"""

    timeout_s, max_bytes = DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_HEADER_BYTES

    @classmethod
    def install(cls, timeout_s: float, max_bytes: int) -> None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as P

        cls.timeout_s, cls.max_bytes = float(timeout_s), int(max_bytes)
        if getattr(P, "_forecaster_limits", False):
            return
        made, begin, header, complete, lost = (P.connection_made, P.on_message_begin,
                                               P.on_header, P.on_headers_complete,
                                               P.connection_lost)
        body, done = P.on_body, P.on_message_complete

        def arm(self) -> None:
            disarm(self)
            self._fc_header_bytes = 0
            self._fc_timer = self.loop.call_later(cls.timeout_s, cls._refuse, self, 408,
                                                  "request headers did not arrive within "
                                                  f"{cls.timeout_s:g} s")

        def disarm(self) -> None:
            timer = getattr(self, "_fc_timer", None)
            if timer is not None:
                timer.cancel()
                self._fc_timer = None

        def connection_made(self, transport):
            made(self, transport)
            arm(self)

        def on_message_begin(self):
            begin(self)
            if getattr(self, "_fc_timer", None) is None:
                arm(self)

        def on_header(self, name, value):
            self._fc_header_bytes = getattr(self, "_fc_header_bytes", 0) + len(name) + len(value)
            if self._fc_header_bytes > cls.max_bytes:
                cls._refuse(self, 431, f"request headers may total at most {cls.max_bytes} "
                                       "bytes (FORECASTER_MAX_HEADER_BYTES)")
                return
            header(self, name, value)

        def refused(self) -> bool:  # answered by _refuse: the rest of the request is ignored
            return getattr(self, "_fc_refused", False)

        def on_headers_complete(self):
            disarm(self)
            if not refused(self):
                complete(self)

        def on_body(self, data):
            if not refused(self):
                body(self, data)

        def on_message_complete(self):
            if not refused(self):
                done(self)

        def connection_lost(self, exc):
            disarm(self)
            lost(self, exc)

        P.connection_made, P.on_message_begin, P.on_header = (connection_made, on_message_begin,
                                                              on_header)
        P.on_headers_complete, P.connection_lost = on_headers_complete, connection_lost
        P.on_body, P.on_message_complete = on_body, on_message_complete
        P._forecaster_limits = True

    @staticmethod
    def _refuse(protocol, status: int, msg: str) -> None:
        """Answer ``status`` with a JSON error and close the connection."""
        if protocol.transport.is_closing():
            return
        protocol._fc_refused = True
        reason = {408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
        body = json.dumps({"error": reason.lower(), "detail": [
            {"type": "limit", "loc": ["headers"], "msg": msg}]}).encode()
        protocol.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        protocol.transport.close()
        log.info(json.dumps({"event": "refused", "status": status, "reason": msg}))

