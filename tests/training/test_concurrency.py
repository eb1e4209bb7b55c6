"""Trainings started together on one brand-new sqlite store, and resume against a live run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, store_uri, subprocess_env


def _start(tmp_path: Path, name: str, args: list[str]) -> subprocess.Popen:
    """``python -m pipelines.train`` in the background, its output in ``tmp_path/name.log``."""
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "pipelines.train", *args,
                             f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path, env=subprocess_env(),
                            stdout=log, stderr=subprocess.STDOUT)


def _trainings_together(tmp_path: Path, small_csv: Path, n: int) -> None:
    procs = [_start(tmp_path, f"job{k}", [*SMALL, f"data.path={small_csv}", "trainer.max_epochs=1",
                                          "registry.enabled=false", f"seed={k}",
                                          f"logger.tracking_uri={store_uri(tmp_path)}"])
             for k in range(n)]
    codes = [p.wait(timeout=540) for p in procs]
    logs = {k: (tmp_path / f"job{k}.log").read_text()[-2000:] for k, c in enumerate(codes) if c}
    assert not logs, logs
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert len(runs) == n and all(r.info.status == "FINISHED" for r in runs)


def test_three_trainings_start_together_on_a_new_store(tmp_path, small_csv):
    _trainings_together(tmp_path, small_csv, 3)


@pytest.mark.slow
def test_eight_trainings_start_together_on_a_new_store(tmp_path, small_csv):
    _trainings_together(tmp_path, small_csv, 8)


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path, small_csv):
    uri = store_uri(tmp_path)
    args = [*SMALL, f"data.path={small_csv}", "trainer.max_epochs=500",
            "callbacks.early_stopping.patience=1000", f"logger.tracking_uri={uri}"]
    first = _start(tmp_path, "first", args)
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 180
        while not last.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # polling for the first checkpoint, bounded by the deadline
        assert first.poll() is None and last.exists(), (tmp_path / "first.log").read_text()[-2000:]
        second = subprocess.run([sys.executable, "-m", "pipelines.train", *args, "resume=true",
                                 f"hydra.run.dir={tmp_path / 'second'}"], cwd=tmp_path, env=subprocess_env(),
                                capture_output=True, text=True, timeout=180)
        assert first.poll() is None, "the first training should still be running"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"still being trained by process {first.pid} on " in second.stderr
    assert "Traceback" not in second.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert "forecaster.killed_reason" not in run.data.tags  # the live run was left alone
    assert run.data.tags["forecaster.pid"] == str(first.pid)


LOG_INPUT = r"""
import sys, time
import mlflow
from forecaster.tracking.describe import log_data_input
from forecaster.tracking.store import prepare_store
from tests.conftest import small_frame
uri, start = sys.argv[1], float(sys.argv[2])
experiment = prepare_store(uri, "forecaster")
frame = small_frame()
with mlflow.start_run(experiment_id=experiment):
    while time.time() < start:
        time.sleep(0.001)  # every process logs at the same instant
    log_data_input(frame, "/data/small.csv", "small", "h", 2, "training")
"""


def test_runs_logging_the_same_data_at_once_all_link_it(tmp_path):
    """MLflow looks a dataset up, then inserts it: without the retry, 3 or 4 of 8 runs failed
    here on the datasets table's unique key (as one of the eight trainings above did in CI)."""
    start = time.time() + 20  # after every process has imported MLflow
    procs = [subprocess.Popen([sys.executable, "-c", LOG_INPUT, store_uri(tmp_path), str(start)],
                              cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[-1500:] for o in outputs if o]
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert len(runs) == 8 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)
