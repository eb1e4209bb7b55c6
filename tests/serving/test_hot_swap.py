"""The service follows its alias: when ``champion`` moves, the new version is loaded, checked
on its input example and swapped in; a broken version is refused and the old one serves on."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import mlflow
import pytest
import safetensors.torch
from mlflow.tracking import MlflowClient

from forecaster.serving import source
from forecaster.tracking import pyfunc
from tests.serving.conftest import MODEL_URI, Server
from tests.serving.test_service import history

NAME = "forecaster-rnn"


@pytest.fixture
def registry(store, tmp_path, monkeypatch):
    """A copy of the session store (its champion v1), to move the alias in."""
    db = tmp_path / "mlflow.db"
    # sqlite's backup: the store is in write-ahead-log mode, its latest commits may be in -wal
    with closing(sqlite3.connect(store["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))) as src, \
            closing(sqlite3.connect(db)) as dst:
        src.backup(dst)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FORECASTER_MODEL_URI", MODEL_URI)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def _same_model_again(client: MlflowClient) -> str:
    """A new version of version 1's model (a good one)."""
    run_id = client.get_model_version(NAME, "1").run_id
    return str(mlflow.register_model(f"runs:/{run_id}/model", NAME).version)


def _broken_version(client: MlflowClient, tmp_path: Path) -> str:
    """A new version whose weights give NaN (it loads; its forecasts are not finite)."""
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion",
                                                      dst_path=str(tmp_path / "v"))) / "artifacts"
    weights_file = folder / "forecaster" / "weights.safetensors"
    weights = safetensors.torch.load_file(weights_file)
    for name, value in weights.items():
        if name.endswith("head.bias"):
            value[0] = float("nan")
    safetensors.torch.save_file(weights, weights_file)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=pyfunc.__file__,
                                       artifacts={pyfunc.ARTIFACT_KEY: str(folder / "forecaster")})
    return str(mlflow.register_model(info.model_uri, NAME).version)


def test_the_follower_swaps_in_a_new_version_and_refuses_a_broken_one(registry, tmp_path, caplog):
    swapped = []
    follower = source.AliasFollower("1", swapped.append, every_s=3600)
    assert follower.check() is None and not swapped  # the alias has not moved

    good = _same_model_again(registry)
    registry.set_registered_model_alias(NAME, "champion", good)
    assert follower.check() == good
    assert [m.info.version for m in swapped] == [good] and follower.version == good

    broken = _broken_version(registry, tmp_path)
    registry.set_registered_model_alias(NAME, "champion", broken)
    with caplog.at_level(logging.WARNING):
        assert follower.check() is None
        assert follower.check() is None  # refused once, not reloaded at every poll
    refusals = [r for r in caplog.records if "is refused" in r.getMessage()]
    assert len(refusals) == 1 and f"version {broken}" in refusals[0].getMessage()
    assert "not finite" in refusals[0].getMessage()
    assert len(swapped) == 1 and follower.version == good


@pytest.mark.slow  # a server under load while the alias moves (~40 s); the follower: above
def test_a_load_loop_sees_no_error_while_the_alias_moves_twice(registry, store, tmp_path, meta):
    env = {"MLFLOW_TRACKING_URI": registry.tracking_uri, "FORECASTER_MODEL_URI": MODEL_URI,
           "FORECASTER_POLL_SECONDS": "0.5"}
    srv = Server(env, tmp_path)
    values, _ = history(meta)
    statuses, versions, stop = [], [], threading.Event()

    def loop():
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/forecast", json={"values": values})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.append(r.json()["model"]["version"])

    try:
        srv.wait_ready()
        clients = [threading.Thread(target=loop) for _ in range(4)]
        for t in clients:
            t.start()
        broken = _broken_version(registry, tmp_path)
        registry.set_registered_model_alias(NAME, "champion", broken)
        deadline = time.monotonic() + 30
        while "is refused" not in srv.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        good = _same_model_again(registry)
        registry.set_registered_model_alias(NAME, "champion", good)
        deadline = time.monotonic() + 30
        while good not in versions[-5:] and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in clients:
            t.join(30)
        meta_now = httpx.get(srv.url + "/metadata", timeout=10).json()
    finally:
        stop.set()
        srv.stop()
    print(f"requests {len(statuses)}, non-200 {sum(s != 200 for s in statuses)}, versions seen "
          f"{sorted(set(versions))}")
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
    assert versions[0] == "1" and versions[-1] == good and broken not in versions
    assert meta_now["version"] == good
