"""Every config composes; bad keys and values fail before training, naming the key."""

from __future__ import annotations

import importlib.util

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_cfg

GROUP_OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONF.iterdir()) if group.is_dir() and group.name != "hydra"
    for option in sorted(group.glob("*.yaml"))
]


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_config_composes(tmp_path, group, option):
    if option == "submitit_slurm" and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        pytest.skip("hydra-submitit-launcher is not installed (pip install hydra-submitit-launcher)")
    overrides = [f"{group}={option}"]
    if option == "csv":
        overrides.append("data.path=x.csv")
    cfg = compose_cfg(tmp_path, overrides)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["input_size"] is None or resolved["input_size"] > 0  # None: from the data
    assert resolved["data"]["horizon"] == resolved["horizon"]


def test_top_level_values_reach_data_and_model(tmp_path):
    cfg = compose_cfg(tmp_path, ["horizon=24", "input_size=48"])
    assert cfg.data.horizon == 24 and cfg.data.input_size == 48


def test_misspelt_key_is_named(tmp_path):
    with pytest.raises(ConfigCompositionException, match="hiden_size"):
        compose_cfg(tmp_path, ["model.hiden_size=128"])


def test_unknown_group_option_is_named(tmp_path):
    with pytest.raises(ConfigCompositionException, match="adamw"):
        compose_cfg(tmp_path, ["optim=adamw"])


@pytest.mark.parametrize("override,named", [
    ("model.loss=huber", "model.loss='huber'"),
    ("model.hidden_size=0", "model.hidden_size=0"),
    ("horizon=-3", "horizon=-3"),
    ("data.scaler=robust", "data.scaler='robust'"),
    ("model.quantiles=[0.1,1.5]", "model.quantiles"),
    ("model.activation=gelu", "model.activation='gelu'"),
    ("data.fill=zero", "data.fill='zero'"),
    ("model.intervals=[80]", "model.intervals=[80]"),
    ("model.loss_scale=range", "model.loss_scale='range'"),
    ("model.ensemble.select=best", "model.ensemble.select='best'"),
    ("model.ensemble.seeds=0", "model.ensemble.seeds=0"),
])
def test_invalid_values_fail_before_training_naming_the_key(tmp_path, override, named):
    from forecaster.training import ConfigError, train

    cfg = compose_cfg(tmp_path, [override])
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert named in str(err.value) and "must be" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing was trained or written


def test_console_script_composes_from_any_folder(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "forecaster-train"
    if not script.exists():
        pytest.skip("the project is not installed as a package in this environment")
    proc = subprocess.run([str(script), "model.hidden_size=12", "--cfg", "job"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "hidden_size: 12" in proc.stdout
