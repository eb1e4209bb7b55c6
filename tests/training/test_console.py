"""What a person sees in the terminal: the progress bar only at a terminal, no known noise, and
the closing summary."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from forecaster.console import summary
from tests.conftest import SMALL, store_uri, subprocess_env


def _train_on_a_terminal(tmp_path, small_csv, env: dict[str, str]) -> str:
    """A one-epoch CLI run whose stdout and stderr are a pseudo-terminal; what it printed."""
    master, slave = pty.openpty()
    full_env = subprocess_env(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", *SMALL, f"data.path={small_csv}",
         "trainer.max_epochs=1", "registry.enabled=false",
         f"logger.tracking_uri={store_uri(tmp_path)}", f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path, env=full_env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("ci,bar", [("", True), ("true", False)])
def test_progress_bar_only_at_a_terminal_outside_ci(tmp_path, small_csv, ci, bar):
    out = _train_on_a_terminal(tmp_path, small_csv, {"CI": ci})  # CI itself runs with CI=true
    assert ("Epoch 0" in out) is bar, out[-3000:]
    assert "litlogger" not in out and "LeafSpec" not in out  # known noise is silenced
    assert "Downloading artifacts" not in out
    assert out.count("GPU available") == 1  # Lightning's lines print once
    assert "seasonal naive" in out and "registry: registry off" in out


def test_summary_has_metrics_baselines_coverage_decision_and_next_commands(tmp_path, trained):  # noqa: F811
    _, result = trained
    text = summary(result.metrics, result.run_id, result.decision, store_uri(tmp_path))
    lines = text.splitlines()
    assert lines[0].split() == ["mae", "rmse", "smape", "mase"]
    assert [line.split()[0] for line in lines[1:4]] == ["model", "naive", "seasonal"]
    assert f"{result.metrics['test_seasonal_naive/mase']:.4f}" in lines[3]
    assert "interval 0.1-0.9: coverage" in text and "(nominal 0.800)" in text
    assert f"run:      {result.run_id}" in text
    assert "registry: forecaster-rnn v1 -> champion" in text
    assert f"mlflow ui --backend-store-uri {store_uri(tmp_path)}" in text
    assert "FORECASTER_MODEL_URI=models:/forecaster-rnn@champion bentoml serve" in text
    assert "-d @examples/forecast.json" in text
