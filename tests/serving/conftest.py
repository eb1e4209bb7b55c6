"""A small model trained and registered in a temporary store, and a real `bentoml serve` on it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from forecaster.data import FeatureSpec, SeriesScaler
from forecaster.models import Forecaster
from forecaster.nn import RNNForecastNet
from forecaster.serving.source import export
from forecaster.tracking.loading import ModelInfo
from tests.conftest import MODEL_URI, ROOT, free_port, subprocess_env  # noqa: F401 (re-exported)


def toy_forecaster(spec: FeatureSpec, known: list[str]) -> Forecaster:
    """An untrained 3-quantile ``Forecaster`` for ``spec``, its scaler fitted on random
    series ``known`` (with random covariates when the spec has any)."""
    torch.manual_seed(0)
    config = {"n_features": spec.n_features, "horizon": spec.horizon, "hidden_size": 8,
              "n_futr": spec.n_futr, "n_outputs": 3}
    net = RNNForecastNet(**config)
    rng = np.random.default_rng(1)
    n = 30 * len(known)
    exog = rng.normal(size=(n, len(spec.futr_exog)))
    scaler = SeriesScaler(spec.scaler).fit(rng.normal(5, 2, n), np.arange(len(known) + 1) * 30,
                                           np.full(len(known), 30), known, exog, spec.futr_exog)
    return Forecaster(net, config, spec, scaler, quantiles=(0.1, 0.5, 0.9))


class Server:
    """`bentoml serve` (or any command) in its own process group, on 127.0.0.1:port."""

    def __init__(self, env: dict, cwd: Path, cmd: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        # BentoML empties $BENTOML_HOME/prometheus_multiproc_dir when a server starts: servers
        # sharing it lose each other's /metrics. Each gets its own, unless it serves a Bento.
        home = {"BENTOML_HOME": str(cwd / f"bentoml-{self.port}")}
        full_env = subprocess_env({**home, **env})
        cmd = cmd or [sys.executable, "-m", "bentoml", "serve", "--working-dir", str(ROOT)]
        self.proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(self.port)],
                                     cwd=cwd, env=full_env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


@contextlib.contextmanager
def folder_server(tmp: Path, forecaster: Forecaster, info: ModelInfo | None = None,
                  example=None, env: dict | None = None):
    """A ready server on ``forecaster`` exported to ``tmp/model`` (no tracking store)."""
    export(forecaster, info or ModelInfo(uri="test"), tmp / "model", example)
    srv = Server({"FORECASTER_MODEL_DIR": str(tmp / "model"),
                  "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'none.db'}", **(env or {})}, tmp)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(store, tmp_path_factory):
    env = {k: v for k, v in store.items() if k != "tmp"}
    srv = Server({**env, "FORECASTER_MAX_BATCH_SERIES": "50",
                  "FORECASTER_MAX_BODY_BYTES": str(1024 * 1024)},
                 tmp_path_factory.mktemp("server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def meta(client) -> dict:
    r = client.post("/metadata")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def exported(store, tmp_path_factory):
    """The champion written to a folder by `python -m pipelines.serve --export`."""
    folder = tmp_path_factory.mktemp("exported") / "model"
    env = {k: v for k, v in store.items() if k != "tmp"}
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--export", str(folder)],
        cwd=ROOT, env=subprocess_env(env), capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder
