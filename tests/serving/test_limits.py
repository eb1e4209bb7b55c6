"""Limits with clear answers, on a real server: a concurrency bound (503 + Retry-After), header
size and header read time (431, 408, the connection closed), a per-series length stated in
the schema, and error bodies that never echo more than an excerpt of the input."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.serving.conftest import Server
from tests.serving.test_service import history


@pytest.fixture(scope="module")
def limited(store, tmp_path_factory):
    env = {k: v for k, v in store.items() if k != "tmp"}
    srv = Server({**env, "FORECASTER_MAX_CONCURRENCY": "1", "FORECASTER_MAX_SERIES_LENGTH": "500",
                  "FORECASTER_HEADER_TIMEOUT_S": "1"}, tmp_path_factory.mktemp("limited"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _raw(srv, data: bytes, wait_s: float = 15) -> tuple[bytes, float]:
    """Send ``data`` on a raw connection; what the server answers before it closes, and when."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=wait_s) as s:
        try:
            s.sendall(data)
        except OSError:  # the server closed while we were still sending
            pass
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks), time.monotonic() - start


def test_a_connection_that_never_finishes_its_headers_is_closed(limited):
    answer, seconds = _raw(limited, b"POST /forecast HTTP/1.1\r\nHost: x\r\nContent-Ty")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"within 1 s" in answer and seconds < 10


def test_oversize_headers_are_refused(limited):
    big = b"X-Padding: " + b"a" * (1024 * 1024) + b"\r\n"
    answer, _ = _raw(limited, b"GET /livez HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"FORECASTER_MAX_HEADER_BYTES" in answer
    assert httpx.get(limited.url + "/readyz", timeout=10).status_code == 200  # still serving


def test_the_concurrency_bound_answers_503_with_retry_after(limited, meta):
    """With FORECASTER_MAX_CONCURRENCY=1, a request whose body is still arriving holds the one
    slot: the next one gets a fast 503 with Retry-After; once the first is done, requests pass."""
    values, _ = history(meta)
    body = json.dumps({"values": values}).encode()
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as slow:
        slow.sendall(b"POST /forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
        deadline = time.monotonic() + 30
        while True:  # until the server has counted the slow request (it reads its headers)
            r = httpx.post(limited.url + "/forecast", json={"values": values}, timeout=30)
            if r.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        (error,) = r.json()["detail"]
        assert error["type"] == "overloaded" and "FORECASTER_MAX_CONCURRENCY" in error["msg"]
        slow.sendall(body[10:])
        answer = slow.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]  # the one in flight is answered
    assert httpx.post(limited.url + "/forecast", json={"values": values},
                      timeout=30).status_code == 200  # and the next one, now the slot is free


def test_a_series_longer_than_the_limit_is_a_422_and_the_schema_says_so(limited, meta):
    spec = httpx.get(limited.url + "/docs.json", timeout=10).json()
    values_schema = spec["paths"]["/forecast"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["values"]
    assert values_schema["maxItems"] == 500
    r = httpx.post(limited.url + "/forecast", json={"values": [1.0] * 501}, timeout=30)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["values"] and error["type"] == "too_long" and "500" in error["msg"]


def test_error_bodies_echo_only_an_excerpt(limited, meta):
    values, _ = history(meta)
    names = {f"unknown_{k}": [0.0] for k in range(200_000)}
    names["k" * 100_000] = [0.0]
    r = httpx.post(limited.url + "/forecast", json={"values": values, "covariates": names},
                   timeout=60)
    assert r.status_code == 422
    assert len(r.content) < 4096, len(r.content)
    (error,) = r.json()["detail"]
    assert error["loc"] == ["covariates"] and "and 199996 more" in error["msg"]
