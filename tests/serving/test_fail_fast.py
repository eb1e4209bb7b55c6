"""A broken model never serves: the server exits at start-up with status 1 and one message
naming the file or URI and the cause, before any worker starts (no restart loop); a
healthy server is ready only once its model forecast its own example."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import safetensors.torch

from forecaster.serving import model, source
from tests.serving.conftest import Server


def _nan_weights(folder):
    weights = safetensors.torch.load_file(folder / "weights.safetensors")
    for name, value in weights.items():  # every member's head
        if name.endswith("head.bias"):
            value[0] = float("nan")
    safetensors.torch.save_file(weights, folder / "weights.safetensors")


def _shape(folder):
    config = json.loads((folder / "config.json").read_text())
    for member in config["net"]["members"]:
        member["hidden_size"] += 1
    (folder / "config.json").write_text(json.dumps(config))


def _truncate(folder):
    raw = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(raw[: len(raw) // 3])


BREAKAGES = {
    "truncated-weights": (_truncate, "weights.safetensors is not a readable safetensors file"),
    "empty-weights": (lambda f: (f / "weights.safetensors").write_bytes(b""),
                      "weights.safetensors is not a readable safetensors file"),
    "missing-weights": (lambda f: (f / "weights.safetensors").unlink(),
                        "weights.safetensors is missing"),
    "garbage-config": (lambda f: (f / "config.json").write_text("\x00garbage"),
                       "config.json cannot be read as JSON"),
    "garbage-scalers": (lambda f: (f / "scalers.json").write_text('{"kind": 3}'),
                        "scalers.json does not describe the scalers"),
    "shape-mismatch": (_shape, "do not fit the network"),
    "nan-weights": (_nan_weights, "forecast of its own input example is not finite"),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_a_broken_folder_is_refused_naming_the_file(exported, tmp_path, monkeypatch, case):
    """What the deployment hook runs (``source.prepare``), on real files."""
    broken = tmp_path / "model"
    shutil.copytree(exported, broken)
    breakage, message = BREAKAGES[case]
    breakage(broken)
    monkeypatch.setenv("FORECASTER_MODEL_DIR", str(broken))
    with pytest.raises(model.ModelLoadError) as err:
        source.prepare()
    assert message in str(err.value) and str(broken) in str(err.value), str(err.value)


@pytest.mark.parametrize("uri,message", [
    ("runs:/0123456789abcdef0123456789abcdef/model", "could not download"),
    ("models:/forecaster-rnn@nobody", "no model is registered as models:/forecaster-rnn@nobody"),
])
def test_a_missing_run_or_alias_is_refused_naming_the_uri(store, monkeypatch, uri, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["MLFLOW_TRACKING_URI"])
    monkeypatch.setenv("FORECASTER_MODEL_URI", uri)
    with pytest.raises(model.ModelLoadError, match=message):
        source.prepare()


def test_a_missing_sqlite_store_is_an_error_not_a_new_store(tmp_path, monkeypatch):
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    with pytest.raises(model.ModelLoadError, match="does not exist"):
        source.prepare()
    assert not missing.exists()  # nothing was created


def _exits_at_start(env: dict, tmp_path, cmd=None) -> str:
    srv = Server(env, tmp_path, cmd)
    try:
        assert srv.proc.wait(120) == 1, srv.output()[-3000:]
    finally:
        srv.stop()
    out = srv.output()
    assert "Traceback" not in out, out[-3000:]
    assert out.count("forecaster:") >= 1
    return out


@pytest.mark.parametrize("case", ["nan-weights", "truncated-weights"])
def test_the_server_exits_at_start_up_on_a_broken_model(exported, tmp_path, case):
    """A real ``bentoml serve``: exit status 1 with the message, and no worker was started
    (so none restarts in a loop)."""
    broken = tmp_path / "model"
    shutil.copytree(exported, broken)
    breakage, message = BREAKAGES[case]
    breakage(broken)
    out = _exits_at_start({"FORECASTER_MODEL_DIR": str(broken),
                           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}, tmp_path)
    assert message in out, out[-3000:]


def test_serve_wrapper_exits_on_a_missing_store(tmp_path):
    out = _exits_at_start({"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'typo.db'}"}, tmp_path,
                          [sys.executable, "-m", "pipelines.serve"])
    assert "does not exist" in out and "python -m pipelines.train" in out
    assert not (tmp_path / "typo.db").exists()


def test_a_bad_thread_setting_ends_the_server_before_any_worker(exported, tmp_path):
    """FORECASTER_TORCH_THREADS is checked once, in the deployment hook: exit 1 and one line
    naming it, not workers failing and respawning."""
    out = _exits_at_start({"FORECASTER_MODEL_DIR": str(exported), "FORECASTER_TORCH_THREADS": "abc",
                           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}, tmp_path)
    assert "FORECASTER_TORCH_THREADS='abc' is invalid" in out, out[-3000:]
