"""Shared fixtures: composed configs with tmp stores, a small CSV, subprocess helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hypothesis import HealthCheck, settings
from omegaconf import open_dict

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Property tests draw the same examples on every run and machine, so a failure reproduces and
# a pass means the same thing everywhere; HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("fixed", derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", database=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

# The tests and the processes they start see only the settings they make: a user's own
# FORECASTER_* (a token, a worker count, a model), MLFLOW_* (a store, an experiment name) or
# HYDRA_FULL_ERROR would change what they check. FORECASTER_TEST_STORE is the tests' own.
for _name in [n for n in os.environ if n.startswith(("FORECASTER_", "MLFLOW_"))
              or n == "HYDRA_FULL_ERROR"]:
    if _name != "FORECASTER_TEST_STORE":
        del os.environ[_name]
# the servers the tests start listen on 127.0.0.1: never reached through a proxy
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))


def small_frame(n_series: int = 2, length: int = 240, seed: int = 0) -> pd.DataFrame:
    """Hourly series with a daily cycle and noise: long format."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        t = np.arange(length)
        y = 10 + k + 3 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=length)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range(
            "2024-01-01", periods=length, freq="h"), "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def small_csv(tmp_path) -> Path:
    path = tmp_path / "small.csv"
    small_frame().to_csv(path, index=False)
    return path


SMALL = [
    "data=csv", "input_size=24", "horizon=6", "data.val_size=24", "data.test_size=24",
    "data.batch_size=32", "model.hidden_size=8", "trainer.max_epochs=2",
    "model.ensemble.seeds=1",  # 2 members (with and without the linear path): half the time
]


def compose_cfg(tmp_path: Path, overrides: list[str], config_name: str = "train"):
    """The real config, composed as the CLI would, with output and store under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "out")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def store_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(env: dict | None = None) -> dict[str, str]:
    """The environment of a fresh process a test starts: this one's, unbuffered, with the
    repository first on ``PYTHONPATH`` (this checkout's code, whatever is installed), plus
    ``env``."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return full_env


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300,
            module: str = "pipelines.train") -> subprocess.CompletedProcess:
    """``python -m pipelines.train ARGS`` in a fresh process, bounded in time."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=subprocess_env(env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def trained(tmp_path, small_csv):
    """``(cfg, TrainResult)`` of a small run on ``small_csv``, registered in a tmp store."""
    from forecaster.training import train

    cfg = compose_cfg(tmp_path, [*SMALL, f"data.path={small_csv}",
                                 f"logger.tracking_uri={store_uri(tmp_path)}",
                                 "registry.gate.beat_baseline=null"])
    return cfg, train(cfg)


MODEL_URI = "models:/forecaster-rnn@champion"


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> dict:
    """Train and register a small champion; returns the env that points the service at it."""
    if os.environ.get("FORECASTER_TEST_STORE"):  # reuse a store that already has a champion
        return {"MLFLOW_TRACKING_URI": os.environ["FORECASTER_TEST_STORE"],
                "FORECASTER_MODEL_URI": MODEL_URI, "tmp": ""}
    tmp = tmp_path_factory.mktemp("serving-store")
    csv = tmp / "small.csv"
    small_frame().to_csv(csv, index=False)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
    result = run_cli([*SMALL, f"data.path={csv}",
                      "registry.gate.beat_baseline=null", "registry.gate.beat_champion=false"],
                     cwd=tmp, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {**env, "FORECASTER_MODEL_URI": MODEL_URI, "tmp": str(tmp)}


def assert_champion_is_the_best(client: MlflowClient, name: str, n: int) -> None:
    """``n`` versions, and ``champion`` on the one whose run has the lowest test MASE: the
    runs met the champion one at a time (all scored on the same test windows)."""
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in versions) == list(range(1, n + 1))
    mase = {v.version: client.get_run(v.run_id).data.metrics["test/mase"] for v in versions}
    champion = client.get_model_version_by_alias(name, "champion").version
    assert mase[champion] == pytest.approx(min(mase.values()), rel=1e-5), (champion, mase)
