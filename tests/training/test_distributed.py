"""Beyond one process: Lightning DDP on CPU (gloo), and a real remote `mlflow server`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, free_port, run_cli, store_uri


def test_ddp_two_cpu_processes_log_one_run(tmp_path, small_csv):
    proc = run_cli(["trainer=ddp", "trainer.devices=2", *SMALL, f"data.path={small_csv}",
                    "trainer.max_epochs=1", f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert len(runs) == 1  # only rank zero tracks
    assert runs[0].info.status == "FINISHED" and "test/mase" in runs[0].data.metrics


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "mlflow server exited at start"
            assert time.monotonic() < deadline, "mlflow server did not become healthy in 90 s"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow  # the same logging into sqlite stores: every training test
def test_remote_tracking_server(tmp_path, small_csv, mlflow_server):
    workdir = tmp_path / "client"
    workdir.mkdir()
    proc = run_cli([*SMALL, f"data.path={small_csv}", "trainer.max_epochs=1",
                    "registry.gate.beat_baseline=null", f"hydra.run.dir={workdir / 'run'}"],
                   cwd=workdir, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (workdir / "mlflow.db").exists()  # nothing went to the local default store
    client = MlflowClient(mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert run.info.status == "FINISHED" and "test/mase" in run.data.metrics
    assert client.get_model_version_by_alias("forecaster-rnn", "champion").run_id == run.info.run_id
    stored = Path(tmp_path / "server-artifacts")
    assert any(p.name == "weights.safetensors" for p in stored.rglob("*"))
