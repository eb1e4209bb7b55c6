"""Trainings started together on one brand-new sqlite store, and resume against a live run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, assert_champion_is_the_best, store_uri, subprocess_env


def _start(tmp_path: Path, name: str, args: list[str]) -> subprocess.Popen:
    """``python -m pipelines.train`` in the background, its output in ``tmp_path/name.log``."""
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "pipelines.train", *args,
                             f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path, env=subprocess_env(),
                            stdout=log, stderr=subprocess.STDOUT)


def _trainings_together(tmp_path: Path, small_csv: Path, n: int) -> None:
    """``n`` trainings of different seeds at once on a new store, each registering a version
    (the gate's baseline check off, so every run meets the champion)."""
    procs = [_start(tmp_path, f"job{k}", [*SMALL, f"data.path={small_csv}", "trainer.max_epochs=1",
                                          "registry.gate.beat_baseline=null", f"seed={k}",
                                          f"logger.tracking_uri={store_uri(tmp_path)}"])
             for k in range(n)]
    codes = [p.wait(timeout=540) for p in procs]
    logs = {k: (tmp_path / f"job{k}.log").read_text()[-2000:] for k, c in enumerate(codes) if c}
    assert not logs, logs
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert len(runs) == n and all(r.info.status == "FINISHED" for r in runs)
    assert_champion_is_the_best(client, "forecaster-rnn", n)


def test_three_trainings_start_together_on_a_new_store(tmp_path, small_csv):
    _trainings_together(tmp_path, small_csv, 3)


@pytest.mark.slow
def test_eight_trainings_start_together_on_a_new_store(tmp_path, small_csv):
    _trainings_together(tmp_path, small_csv, 8)


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path, small_csv):
    uri = store_uri(tmp_path)
    # the first still trains when the second has started, however slow the machine
    args = [*SMALL, f"data.path={small_csv}", "trainer.max_epochs=1000000",
            "callbacks.early_stopping.patience=1000000", f"logger.tracking_uri={uri}"]
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


def barrier(folder: str, n: str) -> None:
    """Wait (at most 240 s) until ``n`` processes have reached this line, then go on together."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 240
    while len(os.listdir(folder)) < int(n):
        assert time.monotonic() < deadline, f"only {len(os.listdir(folder))} of {n} arrived"
        time.sleep(0.005)  # the first to arrive wait for the others to import MLflow


def _at_once(tmp_path: Path, script: str, n: int = 8) -> None:
    """``n`` processes of ``script`` on one new store, released together by ``barrier``."""
    folder = tmp_path / "barrier"
    folder.mkdir()
    Path(f"{folder}-evaluated").mkdir()  # a second barrier, for scripts that need one
    argv = [sys.executable, "-c", script, store_uri(tmp_path), str(folder), str(n)]
    procs = [subprocess.Popen(argv, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[-1500:] for o in outputs if o]


LOG_INPUT = r"""
import sys
import mlflow
from forecaster.tracking.describe import log_data_input
from forecaster.tracking.store import prepare_store
from tests.conftest import small_frame
from tests.training.test_concurrency import barrier
uri = sys.argv[1]
experiment = prepare_store(uri, "forecaster")
frame = small_frame()
with mlflow.start_run(experiment_id=experiment):
    barrier(*sys.argv[2:])  # every process logs at the same instant
    log_data_input(frame, "/data/small.csv", "small", "h", 2, "training")
"""


def test_runs_logging_the_same_data_at_once_all_link_it(tmp_path):
    """MLflow looks a dataset up, then inserts it: without the retry, 3 or 4 of 8 runs failed
    here on the datasets table's unique key (as one of the eight trainings above did in CI)."""
    _at_once(tmp_path, LOG_INPUT)
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert len(runs) == 8 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)


FINISH = r"""
import random, sys
import mlflow
from forecaster.tracking import registry
from forecaster.tracking.describe import EXPERIMENT_NOTE, add_evaluation, set_note_once
from forecaster.tracking.store import open_client, prepare_store, registry_lock
from tests.training.test_concurrency import barrier
uri = sys.argv[1]
client = open_client(uri)
experiment = prepare_store(uri, "forecaster")
mase = random.Random().random()
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_metric("test/mase", mase)
    mlflow.log_text("stands in for a model", "model/MLmodel")
    barrier(*sys.argv[2:])  # every process finishes at the same instant
    set_note_once(client, experiment, EXPERIMENT_NOTE)
    # as training does: read the champion, compare, register, set the alias
    with registry_lock(uri):
        version = registry.current_champion(client, "m")
        incumbent = version and registry.Incumbent(version, client.get_run(
            client.get_model_version("m", version).run_id).data.metrics["test/mase"])
        registry.register(client, f"runs:/{run.info.run_id}/model", "m", {"mase": mase}, {},
                          registry.Gate(beat_baseline=None), incumbent or None)
barrier(sys.argv[2] + "-evaluated", sys.argv[3])  # and evaluate version 1 at the same instant
add_evaluation(client, "m", "1", f"evaluated by {run.info.run_id}")
"""


def test_runs_finishing_at_once_leave_the_best_champion_and_one_description(tmp_path):
    """Eight runs of a new store finish at the same instant.

    * Each compares itself with the champion, then registers: under ``registry_lock`` they
      take turns, so the best is champion. Without the lock all saw no champion, all took
      the alias, and the last writer kept it (3 runs in 3 here).
    * Each describes the experiment unless it has a description: MLflow inserts the tag
      after looking for it, so parallel sweep jobs broke the tags' unique key (CI, 2026-12-07).
    * Each then adds a line to version 1's description (as ``pipelines.evaluate`` does): a
      read, then a write, so without the lock lines were lost.
    """
    _at_once(tmp_path, FINISH)
    client = MlflowClient(store_uri(tmp_path))
    assert_champion_is_the_best(client, "m", 8)
    note = client.get_experiment_by_name("forecaster").tags["mlflow.note.content"]
    assert note.startswith("Runs of `python -m pipelines.train`")
    lines = client.get_model_version("m", "1").description.splitlines()
    assert len([line for line in lines if line.startswith("* evaluated by ")]) == 8, lines
