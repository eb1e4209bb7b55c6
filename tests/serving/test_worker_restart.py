"""Recovery in seconds: a worker killed with SIGKILL under load is replaced and ready again in
seconds; with two workers the other one answers meanwhile, with one the requests that arrive in
the gap wait in the listening socket's queue and are answered once the new worker is up.

The figures (failed requests, time from the kill until the new worker is ready, the worker's
own start-up time from its log) are printed for docs/benchmarks.md; the bounds asserted here
only catch a hang or a restart loop, they are not timing targets.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter

import httpx
import psutil
import pytest

from tests.serving.conftest import Server
from tests.serving.test_service import history

GRACE_S = 2.0  # a request sent as the kill lands may still go to the dying worker (a loaded
#                machine may take a moment to close its connections)
READY = re.compile(r"worker ready (\d+\.\d+) s after its process started")


def _workers(srv: Server) -> list[int]:
    return [c.pid for c in psutil.Process(srv.proc.pid).children()]


def _started(srv: Server) -> list[float]:
    """Each worker's start-up time, from its 'worker ready' log line."""
    return [float(s) for s in READY.findall(srv.output())]


class Load:
    """``clients`` threads, each sending ``/forecast`` requests one after another."""

    def __init__(self, url: str, body: dict, clients: int = 4):
        self.url, self.body = url, body
        self.results: list[tuple[float, float, str]] = []  # (sent, answered, status or error)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        # longer than a worker restart on a loaded machine: a request waiting for it is answered
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    outcome = str(client.post("/forecast", json=self.body).status_code)
                except httpx.HTTPError as err:
                    outcome = type(err).__name__
                self.results.append((sent, time.monotonic(), outcome))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(150)


def _kill_one_and_wait(srv: Server, timeout: float = 120) -> tuple[float, float]:
    """SIGKILL one worker; wait until its replacement logged that it is ready. Returns the
    kill's time and the seconds until the replacement was ready."""
    before, logged = _workers(srv), len(_started(srv))
    killed_at = time.monotonic()
    os.kill(before[-1], signal.SIGKILL)
    while time.monotonic() - killed_at < timeout:
        if len(_started(srv)) > logged:
            return killed_at, time.monotonic() - killed_at
        time.sleep(0.02)  # polling the log, bounded by the timeout
    raise AssertionError(f"no new worker was ready {timeout}s after the kill:\n{srv.output()}")


@pytest.fixture
def body(meta) -> dict:
    values, timestamps = history(meta)
    return {"values": values, "last_timestamp": timestamps[-1]}


def _server(store, tmp_path, workers: int) -> Server:
    env = {k: v for k, v in store.items() if k != "tmp"}
    srv = Server({**env, "FORECASTER_WORKERS": str(workers)}, tmp_path)
    srv.wait_ready()
    deadline = time.monotonic() + 60
    while len(_started(srv)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)  # every worker up, bounded by the deadline
    assert len(_workers(srv)) == workers
    return srv


def test_kill_9_of_one_of_two_workers_under_load(store, tmp_path, body):
    srv = _server(store, tmp_path, 2)
    try:
        with Load(srv.url, body) as load:
            time.sleep(2)
            killed_at, ready_s = _kill_one_and_wait(srv)
            time.sleep(2)
        assert len(_workers(srv)) == 2
        outcomes = Counter(o for _, _, o in load.results)
        failed = [(sent, o) for sent, _, o in load.results if o != "200"]
        # only the requests on the killed worker's connections fail, one per client at most:
        # the one it was answering, or one sent on its connection as the signal landed
        assert len(failed) <= 4, outcomes
        assert all(sent < killed_at + GRACE_S for sent, _ in failed), (failed, killed_at)
        after = [o for sent, _, o in load.results if sent > killed_at + GRACE_S]
        assert after and set(after) == {"200"}, Counter(after)
        print(f"\n2 workers, kill -9 of one under load: {sum(outcomes.values())} requests, "
              f"{len(failed)} failed {dict(Counter(o for _, o in failed))}; both workers ready "
              f"{ready_s:.2f} s after the kill; the new worker was ready "
              f"{_started(srv)[-1]:.2f} s after its process started")
        assert ready_s < 90  # a hang or a restart loop, not a timing target
        assert srv.proc.poll() is None
    finally:
        srv.stop()


@pytest.mark.slow  # the default run restarts a worker of two (above)
def test_with_one_worker_requests_in_the_gap_wait_and_are_answered(store, tmp_path, body):
    srv = _server(store, tmp_path, 1)
    try:
        with Load(srv.url, body, clients=2) as load:
            time.sleep(1)
            killed_at, ready_s = _kill_one_and_wait(srv)
            time.sleep(2)
        in_gap = [(sent, done - sent, o) for sent, done, o in load.results
                  if killed_at < sent < killed_at + ready_s]
        answered = [wait for _, wait, o in in_gap if o == "200"]
        failed = [(sent, o) for sent, _, o in load.results if o != "200"]
        print(f"\n1 worker, kill -9 under load: ready again {ready_s:.2f} s after the kill; "
              f"{len(load.results)} requests, {len(failed)} failed "
              f"{dict(Counter(o for _, o in failed))}; {len(in_gap)} sent in the gap, "
              f"{len(answered)} answered 200 after at most {max(answered, default=0):.2f} s")
        assert answered, in_gap  # the requests that waited for the new worker were answered
        # only the requests on the killed worker's connections fail, one per client at most
        assert len(failed) <= 2 and all(sent < killed_at + GRACE_S for sent, _ in failed), failed
        assert ready_s < 90
    finally:
        srv.stop()
