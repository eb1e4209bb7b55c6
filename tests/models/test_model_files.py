"""A model folder: safetensors weights and JSON, no pickle; format-2 folders still load; a
broken folder is refused with the file and the cause named."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import safetensors.torch
import torch

from forecaster.data import FeatureSpec
from forecaster.models.predictor import Forecaster, ModelFileError
from tests.conftest import small_frame
from tests.serving.conftest import toy_forecaster


@pytest.fixture
def saved(tmp_path):
    model = toy_forecaster(FeatureSpec(8, 4, freq="h"), known=["s0", "s1"])
    return model, model.save(tmp_path / "model")


def _forecast(model: Forecaster):
    return model.predict(small_frame().groupby("unique_id").tail(24))


def test_round_trip_is_bit_identical_and_holds_no_pickle(saved):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "scalers.json",
                                                      "weights.safetensors"]
    raw = (path / "weights.safetensors").read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])  # safetensors: a JSON header
    assert set(header) - {"__metadata__"} == set(model.net.state_dict())
    loaded = Forecaster.load(path)
    a, b = _forecast(model), _forecast(loaded)
    np.testing.assert_array_equal(a["y_hat"].to_numpy(), b["y_hat"].to_numpy())
    assert json.loads((path / "config.json").read_text())["format_version"] == 3


def test_a_format_2_folder_with_weights_pt_still_loads(saved):
    model, path = saved
    torch.save(safetensors.torch.load_file(path / "weights.safetensors"), path / "weights.pt")
    (path / "weights.safetensors").unlink()
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "format_version": 2}))
    np.testing.assert_array_equal(_forecast(Forecaster.load(path))["y_hat"].to_numpy(),
                                  _forecast(model)["y_hat"].to_numpy())


def _truncate(path):
    raw = (path / "weights.safetensors").read_bytes()
    (path / "weights.safetensors").write_bytes(raw[: len(raw) // 2])


def _wrong_shape(path):
    config = json.loads((path / "config.json").read_text())
    config["net"]["hidden_size"] = config["net"]["hidden_size"] + 1
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("breakage,file,cause", [
    (lambda p: (p / "weights.safetensors").unlink(), "weights.safetensors", "is missing"),
    (lambda p: (p / "weights.safetensors").write_bytes(b""), "weights.safetensors",
     "not a readable safetensors file"),
    (_truncate, "weights.safetensors", "not a readable safetensors file"),
    (lambda p: (p / "config.json").write_text("{not json"), "config.json", "cannot be read as JSON"),
    (lambda p: (p / "config.json").unlink(), "config.json", "is missing"),
    (_wrong_shape, "weights.safetensors", "do not fit the network"),
    (lambda p: (p / "scalers.json").write_text("[1, 2]"), "scalers.json",
     "does not describe the scalers"),
    (lambda p: shutil.rmtree(p), "model", "not a model folder"),
], ids=["missing-weights", "empty-weights", "truncated-weights", "garbage-config",
        "missing-config", "shape-mismatch", "garbage-scalers", "missing-folder"])
def test_a_broken_folder_names_the_file_and_the_cause(saved, breakage, file, cause):
    _, path = saved
    breakage(path)
    with pytest.raises(ModelFileError) as err:
        Forecaster.load(path)
    assert file in str(err.value) and cause in str(err.value), str(err.value)
