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
    ("model.segment=-2", "model.segment=-2"),
    ("model.segment=day", "model.segment='day'"),
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


EXPERIMENTS = [None, *sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))]


def _objects(cfg):
    """Every object the config builds: data module, model, optimiser (given parameters),
    scheduler (given the optimiser), callbacks and trainer."""
    import torch
    from hydra.utils import instantiate

    from forecaster.errors import build

    dm, model = build(cfg.data), build(cfg.model)
    optimizer = instantiate(cfg.optim)([torch.nn.Parameter(torch.zeros(1))])
    scheduler = instantiate(cfg.scheduler)(optimizer) if cfg.scheduler else None
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    return dm, model, optimizer, scheduler, callbacks


@pytest.mark.parametrize("group,option", [(g, o) for g, o in GROUP_OPTIONS
                                          if g in ("data", "model", "optim", "scheduler",
                                                   "callbacks")])
def test_every_group_option_instantiates(tmp_path, group, option):
    from forecaster.datamodule import DataModule
    from forecaster.models.config import ModelConfig

    overrides = [f"{group}={option}"] + (["data.path=x.csv"] if option == "csv" else [])
    dm, model, optimizer, scheduler, callbacks = _objects(compose_cfg(tmp_path, overrides))
    assert isinstance(dm, DataModule) and isinstance(model, ModelConfig)
    assert optimizer.param_groups and len(callbacks) == 2


def test_a_misspelt_target_is_named(tmp_path):
    from hydra.errors import InstantiationException

    from forecaster.training import train

    cfg = compose_cfg(tmp_path, ["model._target_=forecaster.models.config.ModelConfg"])
    with pytest.raises(InstantiationException, match="ModelConfg"):
        train(cfg)


def test_a_custom_loader_is_built_from_its_target(tmp_path, small_csv):
    from forecaster.errors import build

    cfg = compose_cfg(tmp_path, ["data=csv", "data.path=unused.csv", "+data.loader._target_="
                                 "pandas.read_csv", f"+data.loader.filepath_or_buffer={small_csv}"])
    dm = build(cfg.data)
    assert dm.uri == "python:pandas.read_csv"
    assert len(dm.load()) == 480 and {"unique_id", "ds", "y"} <= set(dm.load().columns)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_builds_and_fits_one_batch(tmp_path, experiment):
    """The composed run, shrunk to one training and one validation batch: its data, model,
    optimiser, scheduler and trainer are built from the config as ``train`` builds them."""
    import lightning as L
    from hydra.utils import instantiate

    from forecaster.datasets import benchmark_file
    from forecaster.training import build_data, build_module, build_trainer

    overrides = [] if experiment is None else [f"experiment={experiment}"]
    cfg = compose_cfg(tmp_path, [*overrides, "model.ensemble.seeds=1", "model.hidden_size=4"])
    if cfg.data.source in ("m4_hourly", "etth1"):
        needed = "M4-Hourly-train.csv" if cfg.data.source == "m4_hourly" else "ETTh1.csv"
        try:
            benchmark_file(needed, cfg.paths.data_dir)
        except FileNotFoundError:
            pytest.skip(f"{needed} is not in {cfg.paths.data_dir} (see ../shared/data/README.md)")
    _objects(cfg)
    dm = instantiate(cfg.data)
    _, data, plan = build_data(cfg, dm)
    module, _ = build_module(cfg, data.spec, plan)
    trainer = build_trainer(cfg.trainer, max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                          logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, callbacks=[])
    trainer.fit(module, dm.train_loader(data, 0), dm.val_loader(data))
    assert trainer.global_step == 1 and isinstance(trainer, L.Trainer)


def test_auto_batch_size_keeps_an_epoch_near_128_steps():
    """data.batch_size=auto: a single series keeps 64; a large panel's epoch is not 650 steps."""
    from forecaster.datamodule import auto_batch_size

    assert auto_batch_size(1_900) == 64  # the CO2 run
    assert auto_batch_size(8_192) == 64 and auto_batch_size(8_193) == 128
    assert auto_batch_size(42_000) == 512  # 1,400 short monthly series
    assert auto_batch_size(10**8) == 512
