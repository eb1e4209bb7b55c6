"""``train(cfg)``: one run from a composed config to a tested, logged and registered model.

The Hydra entry point (``pipelines/train.py``) is a thin wrapper around this function, so tests
call it with configs composed by ``hydra.compose``.

    data  -> windows, scalers fitted on training rows
    fit   -> Lightning, early stopping on val/loss, checkpoints (best + last)
    test  -> the best checkpoint on the test windows, beside naive and seasonal naive
    log   -> MLflow: params, curves, metrics, plots, tables, the pyfunc model
    gate  -> register; alias champion only when the gate is passed, else challenger
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.entities import RunStatus
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

import forecaster as forecaster_package
from forecaster import console, reporting, runtime
from forecaster.data import Datasets, FeatureSpec, validate_frame, window_loader
from forecaster.data.frames import sort_frame
from forecaster.data.seasons import infer_season_length, infer_seasons
from forecaster.datamodule import DataModule
from forecaster.errors import ConfigError, build  # noqa: F401  (ConfigError: tests, callers)
from forecaster.evaluation import protocols, report, scoring
from forecaster.evaluation.backtest import forecast_windows_of, windows_compatibility
from forecaster.models import ForecastLoss, ForecastModule, Forecaster, conformal
from forecaster.models.config import ModelConfig
from forecaster.models.ensemble import (
    Design,
    default_input_size,
    default_val_size,
    member_configs,
    select,
)
from forecaster.nn import EnsembleNet, build_net, window_scale
from forecaster.tracking import artifacts, pyfunc, registry, store
from forecaster.tracking.loading import load_forecaster

log = logging.getLogger(__name__)
CKPT_TAG, PARENT_ENV = "forecaster.ckpt_dir", "FORECASTER_PARENT_RUN_ID"


@dataclass
class TrainResult:
    metrics: dict[str, float]
    run_id: str | None
    forecaster: Forecaster
    decision: registry.Decision | None


def _is_rank_zero() -> bool:
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _resume_target(client: MlflowClient, experiment_id: str) -> tuple[str, str] | None:
    """The latest unfinished run of the experiment that left a ``last.ckpt``: (run id, ckpt).

    Raises:
        store.RunInUseError: that run's process is still alive (two writers would interleave
            its checkpoints and metrics).
    """
    runs = client.search_runs([experiment_id], "attributes.status != 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=50)
    for run in runs:
        ckpt_dir = run.data.tags.get(CKPT_TAG)
        if ckpt_dir and (Path(ckpt_dir) / "last.ckpt").is_file():
            holder = run.info.status == "RUNNING" and store.live_holder(run.data.tags)
            if holder:
                raise store.RunInUseError(
                    f"resume=true: run {run.info.run_id} is still being trained by {holder}; "
                    "wait for it to finish or stop that process, then resume")
            return run.info.run_id, str(Path(ckpt_dir) / "last.ckpt")
    return None


def check_config(cfg: DictConfig) -> tuple[DataModule, ModelConfig]:
    """The run's data module and model config, built from ``cfg`` (each checks its own keys):
    a bad value fails here, naming the key, the value and what is needed, before any data is
    read or any training starts."""
    return build(cfg.data), build(cfg.model)


def design(dm: DataModule, model: ModelConfig, df: pd.DataFrame) -> Design:
    """The seasons, input length and validation size of a run: from the config where it sets
    them, else from the frequency and the bulk of the panel (``forecaster.models.ensemble``):
    the length that 90 % of the series reach, so a few short series (new products, new
    stores) do not cut everyone's window; the series shorter than the windows that result
    are left out of training (``DataModule.setup``)."""
    H = dm.horizon
    _, _, offsets, freq = sort_frame(df, futr_exog=dm.futr_exog, static_cols=dm.static_cols)
    bulk = int(np.quantile(np.diff(offsets), BULK_QUANTILE, method="lower"))
    history = bulk - dm.test_size  # rows before the test split
    seasons = list(model.seasons) if model.seasons is not None else infer_seasons(freq, history)
    season_length = int(dm.season_length or (seasons[0] if seasons else infer_season_length(freq)))
    if season_length > 1 and season_length not in seasons:
        seasons = [season_length, *seasons]
    val = dm.val_size
    sizes = list(model.ensemble.input_sizes or [])
    if sizes:
        L = max(sizes)
    elif dm.input_size:
        L = dm.input_size
    else:  # leave one validation horizon and one training window
        L = default_input_size(seasons, H, history - int(val or H) - H)
    if L < season_length and not dm.season_length and model.seasons is None:
        # the bulk of the panel is shorter than two windows of a season: no seasonal base
        log.warning("the series are too short for a season of %d steps in a window of %d; "
                    "the run forecasts without it (set input_size or data.season_length to "
                    "insist)", season_length, L)
        seasons = [m for m in seasons if 2 * m <= L]
        season_length = seasons[0] if seasons else 1
    if val is None:
        val = default_val_size(H, history - L - 2 * H)
    return Design(tuple(seasons), season_length, L, int(val))


BULK_QUANTILE = 0.1  # the windows fit every series but the shortest tenth


def build_data(cfg: DictConfig, dm: DataModule | None = None
               ) -> tuple[pd.DataFrame, Datasets, Design]:
    """Load the configured source, decide the sizes, and cut it into train / val / test windows
    (with ``dm``, that data module: it keeps what it found in the shards for its loaders)."""
    built, model = check_config(cfg)
    dm = dm or built
    df = dm.load(cfg.paths.get("data_dir"))
    plan = design(dm, model, df)
    return df, dm.setup(df, plan.input_size, plan.val_size), plan


def build_module(cfg: DictConfig, spec: FeatureSpec, plan: Design) -> tuple[ForecastModule, dict]:
    """The LightningModule and the config of its network: one member, or the ensemble of
    ``model.ensemble.seeds`` members per input length and ``model.linear`` variant; the
    optimiser and scheduler from their ``_target_`` (``_partial_``: given the parameters)."""
    m: ModelConfig = build(cfg.model)
    loss = ForecastLoss(m.loss, m.quantiles)
    seasonal = plan.season_length > 1
    base = dict(n_features=spec.n_features, horizon=spec.horizon, hidden_size=m.hidden_size,
                num_layers=m.num_layers, dropout=float(m.dropout), activation=m.activation,
                n_futr=spec.n_futr, n_static=spec.n_static, n_outputs=loss.n_outputs,
                season_length=plan.season_length, base=m.resolved_base(seasonal),
                level=m.resolved_level(seasonal), log=bool(m.log))
    members, scales = [], []
    for kind in m.loss_scales:  # a set of members per loss scale
        these = member_configs(
            base, input_sizes=list(m.ensemble.input_sizes or [plan.input_size]),
            linear=m.variants, seeds=m.ensemble.seeds,
            lags=list(plan.seasons) if m.lags else [], rnn_steps=m.rnn_steps,
            segment=m.resolved_segment(plan.season_length), shorter_only=m.segment == "auto")
        members += these
        scales += [kind] * len(these)
    net_config = {"members": members}
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = ForecastModule(build_net(net_config), loss, instantiate(cfg.optim), scheduler,
                            loss_scale=scales)
    return module, net_config


def finish_model(cfg: DictConfig, module: ForecastModule, net_config: dict, data: Datasets,
                 plan: Design) -> tuple[Forecaster, pd.DataFrame]:
    """The served model from the trained members, chosen on validation windows only: the
    members the median keeps (``model.ensemble.select``) and split-conformal intervals
    (``model.intervals``). Returns it with one row per member (its settings, validation and
    test scaled MAE, and whether it was kept)."""
    squared = module.loss.name == "mse"
    net = module.net.cpu().eval()
    trained = len(net.members)
    if cfg.model.ensemble.select == "greedy" and module.loss.n_outputs == 1:  # and the base alone
        net = _with_base_candidate(net, net_config["members"][0])
    members = net.configs
    val, test = data.val, data.test
    val_fc, val_scale = member_forecasts(net, val, module.loss, module.loss_scale)
    test_fc, test_scale = member_forecasts(net, test, module.loss, module.loss_scale)
    val_y, test_y = _actual(val), _actual(test)  # [N, H] each, gathered once
    if cfg.model.ensemble.select == "greedy" and len(val):
        chosen, _ = select(val_fc, val_y, val_scale, squared=squared)
    else:
        chosen = list(range(trained))
    rows = []
    for k, kw in enumerate(members):
        kind = ("base alone" if k >= trained else "linear only" if not kw.get("rnn", True)
                else "rnn + linear" if kw["linear"] else "rnn")
        rows.append({"member": k, "kind": kind, "input_size": kw["input_size"],
                     "loss_scale": module.member_scales[k] if k < trained else "",
                     "lags": str(kw["lags"]), "segment": kw.get("segment", 0), "base": kw["base"],
                     "val_error": _scaled_error(val_fc[k], val_y, val_scale, squared),
                     "test_error": _scaled_error(test_fc[k], test_y, test_scale, squared),
                     "selected": k in chosen})
    chosen = sorted(chosen)
    kept = EnsembleNet([members[k] for k in chosen])
    for new, old in enumerate(chosen):
        kept.members[new].load_state_dict(net.members[old].state_dict())
    config = {"members": [members[k] for k in chosen],
              "kinds": [rows[k]["kind"] for k in chosen]}  # what each kept member is
    levels = [float(a) for a in (cfg.model.intervals or [])]
    net_q = module.loss.levels
    calibration = None
    if levels and len(val):
        plain = Forecaster(kept, config, data.spec, data.scaler, net_q, plan.season_length,
                           plan.seasons, nonnegative=cfg.model.nonnegative)
        fc = scoring.forecast_windows(plain, val)
        s = np.concatenate([window_scale(b["x"][..., 0])[:, 0].numpy()
                            for b in window_loader(val, batch_size=2048, shuffle=False)])
        s = s * data.panel.scale[fc.series]  # the batch's units -> the actual values' units
        radius = conformal.calibrate(fc.values[:, :, plain.point_index], fc.actual, s, levels)
        calibration = {"levels": levels, "radius": radius}
    forecaster = Forecaster(kept, config, data.spec, data.scaler, net_q, plan.season_length,
                            plan.seasons, calibration, nonnegative=cfg.model.nonnegative)
    return forecaster, pd.DataFrame(rows).set_index("member")


def _with_base_candidate(net: EnsembleNet, like: dict) -> EnsembleNet:
    """The trained members plus one that forecasts the base alone (seasonal naive, or the last
    value): a network of the same window with a zero head and no linear path, so validation
    can prefer the base, or pull the median towards it, where the corrections do not help."""
    base = {**like, "linear": False, "lags": [], "rnn_steps": 1, "hidden_size": 1, "num_layers": 1,
            "rnn": True, "segment": 0}
    out = EnsembleNet([*net.configs, base])
    out.load_state_dict(net.state_dict(), strict=False)
    with torch.no_grad():
        out.members[-1].head.weight.zero_()
        out.members[-1].head.bias.zero_()
    return out.eval()


@torch.inference_mode()
def member_forecasts(net: EnsembleNet, windows, loss: ForecastLoss,
                     scale_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Every member's point forecast ``[K, N, H]`` of the windows (in the batch's units) and
    the windows' scales ``[N]`` (the training loss's)."""
    if not len(windows):
        return np.zeros((len(net.members), 0, net.horizon)), np.zeros(0)
    out, scale = [], []
    for batch in window_loader(windows, batch_size=2048, shuffle=False):
        out.append(loss.point(net.forward_members(batch["x"], batch["futr"], batch["static"])
                              .flatten(0, 1)).view(len(net.members), -1, net.horizon).numpy())
        scale.append(window_scale(batch["x"][..., 0], scale_kind)[:, 0].numpy())
    return np.concatenate(out, 1), np.concatenate(scale)


def describe_members(members: pd.DataFrame) -> str:
    """``"3 of 5 candidates: rnn + linear, input 104 x2; rnn, input 104 x1"``: what validation
    kept of the trained members and the base alone."""
    kept = members[members["selected"]]
    groups = kept.groupby(["kind", "input_size"], sort=False).size()
    parts = [f"{kind}, input {L} x{n}" for (kind, L), n in groups.items()]
    return f"{len(kept)} of {len(members)} candidates: " + "; ".join(parts)


def _actual(windows) -> np.ndarray:
    """The (batch-unit) targets ``[N, H]`` of a window set."""
    if not len(windows):
        return np.zeros((0, windows.spec.horizon), dtype=np.float32)
    return np.concatenate([b["y"].numpy() for b in window_loader(windows, 2048, shuffle=False)])


def _scaled_error(forecast: np.ndarray, actual: np.ndarray, scale: np.ndarray, squared: bool) -> float:
    """The training loss's error (MAE, or MSE for ``squared``) in units of the window scale."""
    if not len(actual):
        return float("nan")
    err = np.abs(forecast - actual) / scale[:, None]
    return float((err ** 2 if squared else err).mean())


def _start_run(cfg: DictConfig, client: MlflowClient, uri: str) -> tuple[mlflow.ActiveRun, str | None]:
    """Open this run's MLflow run (or reopen the one ``resume=true`` continues); returns it and
    the checkpoint to continue from."""
    experiment_id = store.prepare_store(uri, cfg.logger.experiment_name)
    for run_id in store.mark_dead_runs_killed(client, experiment_id):
        log.warning("run %s was left RUNNING by a process that died; marked KILLED", run_id)
    resume = _resume_target(client, experiment_id) if cfg.get("resume") else None
    if cfg.get("resume") and resume is None:
        log.warning("resume=true but no unfinished run with a last.ckpt was found; starting fresh")
    if resume:
        log.info("resuming run %s from %s", *resume)
        run = mlflow.start_run(run_id=resume[0])
        for key, value in store.process_tags().items():  # this process holds the run now
            client.set_tag(run.info.run_id, key, value)
        return run, resume[1]
    tags = {**store.process_tags(), "forecaster.git_commit": _git_commit(),
            "forecaster.command": " ".join(sys.argv), "forecaster.versions": _versions()}
    if os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    run = mlflow.start_run(experiment_id=experiment_id, run_name=_run_name(cfg), tags=tags)
    mlflow.log_params(artifacts.flatten(OmegaConf.to_container(cfg, resolve=True)))
    return run, cfg.get("ckpt_path")


def _run_name(cfg: DictConfig) -> str:
    """``logger.run_name``, else the command-line overrides: MLflow's generated names repeat
    under a fixed seed, since they come from Python's seeded ``random``."""
    if cfg.logger.get("run_name"):
        return cfg.logger.run_name
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    shown = [o for o in overrides if not o.startswith(("hydra.", "logger.tracking_uri"))]
    return (" ".join(shown) or "defaults")[:250] + time.strftime(" @%Y-%m-%d %H:%M:%S")


def _versions() -> str:
    return (f"python {sys.version.split()[0]}, torch {torch.__version__}, lightning {L.__version__}, "
            f"mlflow {mlflow.__version__}, pandas {pd.__version__}")


def _checkpoint_callback(callbacks) -> L.pytorch.callbacks.ModelCheckpoint | None:
    return next((c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)), None)


def run_threads(cfg: DictConfig, batch_size: int, members: int) -> runtime.ThreadChoice:
    """This run's torch threads: ``trainer.threads``, else the CPUs available, shared with the
    sweep's parallel jobs and DDP ranks, and no more than one step's work keeps busy
    (``forecaster.runtime``)."""
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    launcher = hydra_cfg.launcher if hydra_cfg and str(hydra_cfg.mode) == "RunMode.MULTIRUN" else None
    return runtime.choose_threads(cfg.trainer.get("threads"), setting_name="trainer.threads",
                                  jobs=runtime.parallel_jobs(cfg.trainer, launcher),
                                  work=batch_size * int(cfg.model.hidden_size) * members)


def build_trainer(trainer_cfg: DictConfig, **kwargs) -> L.Trainer:
    """Lightning's Trainer from ``cfg.trainer`` (less ``threads``, which is ours)."""
    node = OmegaConf.to_container(trainer_cfg, resolve=True)
    node.pop("threads", None)
    return instantiate(node, **kwargs)


def train(cfg: DictConfig) -> TrainResult:
    """Fit, test against baselines, log to MLflow and register; returns the flat metrics."""
    console.prepare(cfg)  # progress bar only for a person at a terminal; known noise off
    dm, _ = check_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    df, data, plan = build_data(cfg, dm)
    if data.left_out:
        log.warning("%d of %d series are shorter than one window of each split (input_size "
                    "%d + horizon %d + val_size %d + test_size %d) and were left out of "
                    "training and test: %s", len(data.left_out),
                    len(data.left_out) + len(data.panel.ids), plan.input_size, dm.horizon,
                    plan.val_size, dm.test_size, ", ".join(data.left_out[:5])
                    + (", ..." if len(data.left_out) > 5 else ""))
    spec = data.spec
    season_length = plan.season_length
    module, net_config = build_module(cfg, spec, plan)
    threads = runtime.apply(run_threads(cfg, dm.batch_size, len(net_config["members"])))
    train_loader, val_loader = dm.train_loader(data, int(cfg.seed)), dm.val_loader(data)

    rank_zero = _is_rank_zero()  # under DDP only rank zero tracks, tests and registers
    uri = store.resolve_tracking_uri(cfg.logger.get("tracking_uri"))
    client = store.open_client(uri)  # creates a new store safely under concurrent starts
    run, ckpt_path = _start_run(cfg, client, uri) if rank_zero else (None, cfg.get("ckpt_path"))
    callbacks_cfg = cfg.callbacks
    if ckpt_path:  # a resumed run keeps writing checkpoints where it left them
        callbacks_cfg = OmegaConf.merge(callbacks_cfg, {"model_checkpoint": {
            "dirpath": str(Path(ckpt_path).parent)}})
    callbacks = [instantiate(c) for c in callbacks_cfg.values()] if callbacks_cfg else []
    ckpt_cb = _checkpoint_callback(callbacks)
    logger = MLFlowLogger(experiment_name=cfg.logger.experiment_name, tracking_uri=uri,
                          run_id=run.info.run_id) if run else False
    trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=logger)
    if run:
        client.set_tag(run.info.run_id, "forecaster.threads", threads.describe())
    if run and ckpt_cb is not None and ckpt_cb.dirpath:
        client.set_tag(run.info.run_id, CKPT_TAG, str(Path(ckpt_cb.dirpath).resolve()))
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
        if not rank_zero:
            return TrainResult({}, None, None, None)
        if ckpt_cb is not None and ckpt_cb.best_model_path:
            state = torch.load(ckpt_cb.best_model_path, map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
        forecaster, members = finish_model(cfg, module, net_config, data, plan)
        test_fc = scoring.forecast_windows(forecaster, data.test)
        table = scoring.score(forecaster, data.panel, test_fc, season_length).methods()
        flat = {f"test/{k}": v for k, v in table["model"].items()}
        for name in ("naive", "seasonal_naive"):
            flat.update({f"test_{name}/{k}": v for k, v in table[name].items()})
        flat.update(protocols.split_metrics(cfg.data.source, forecaster, data, test_fc))  # M4, ETTh1
        flat.update(protocols.split_metrics(cfg.data.source, forecaster, data, split="val"))
        flat["trainer/epochs"] = float(trainer.current_epoch)
        flat["trainer/global_step"] = float(trainer.global_step)
        flat["data/filled_values"] = float(sum(data.fill_report.values()))
        flat["data/series_left_out"] = float(len(data.left_out))
        flat["model/members"] = float(members["selected"].sum())
        flat["model/members_trained"] = float((members["kind"] != "base alone").sum())
        flat["model/input_size"] = float(plan.input_size)
        flat["data/val_size"] = float(plan.val_size)
        flat["data/batch_size"] = float(dm.batch_size)
        flat["runtime/threads"] = float(threads.threads)
        mlflow.log_metrics(artifacts.finite(flat))
        mlflow.set_tags({"model.seasons": str(list(plan.seasons)),
                         "model.selected": describe_members(members)})
        plots = report.holdout_plot_items(forecaster, data.panel, test_fc, season_length,
                                          int(cfg.logger.plot_series))
        decision = _log_artifacts_and_model(cfg, client, run, forecaster, df, data, table, plots,
                                            _input_example(df, data, forecaster, cfg.data.fill),
                                            members)
        reporting.describe_run(cfg, client, run.info.run_id, df, data, table, decision)
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))
        # what a sweeper minimises; already logged per epoch by the module
        flat["val/loss_best"] = module.val_loss_best
        return TrainResult(flat, run.info.run_id, forecaster, decision)
    except BaseException:
        if run:
            mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise


def _log_artifacts_and_model(cfg, client, run, forecaster: Forecaster, df, data, table, plots,
                             example: pd.DataFrame, members: pd.DataFrame):
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        members.to_csv(tmp / "ensemble_members.csv")
        artifacts.metrics_table(table).to_csv(tmp / "test_metrics.csv")
        pd.Series(data.fill_report, name="filled_values", dtype="int64").rename_axis(
            "unique_id").to_csv(tmp / "data_fill_report.csv")
        if data.left_out:  # too short for the windows: not trained, not scored
            pd.Series(data.left_out, name="unique_id").to_csv(tmp / "series_left_out.csv",
                                                              index=False)
        curves = {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)]
                  for k in ("train/loss", "val/loss")}
        artifacts.plot_curves(tmp / "loss_curves.png", curves)
        report.plot_methods(tmp / "forecasts.png", plots)
        for f in tmp.iterdir():
            mlflow.log_artifact(str(f))

        model_dir = forecaster.save(tmp / "forecaster")
        output = forecaster.predict(example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc.__file__,
            artifacts={pyfunc.ARTIFACT_KEY: str(model_dir)},
            signature=infer_signature(example, output, params={"horizon": forecaster.horizon}),
            input_example=example,
            code_paths=[str(Path(forecaster_package.__file__).parent)],  # the code ships with it
            pip_requirements=pyfunc.requirements(),
        )
    if not cfg.registry.enabled:
        return None
    gate = registry.Gate(**OmegaConf.to_container(cfg.registry.gate, resolve=True),
                         register_if=cfg.registry.get("register_if", "beats_baseline"))
    baselines = {k: v for k, v in table.items() if k != "model"}
    with store.registry_lock(client.tracking_uri):  # one run at a time meets the champion
        incumbent = (_score_incumbent(client, cfg, forecaster, df, data, gate.metric)
                     if gate.beat_champion and gate.register_if != "never" else None)
        decision = registry.register(client, info.model_uri, cfg.registry.model_name,
                                     table["model"], baselines, gate, incumbent)
    mlflow.set_tags({"registry.alias": decision.alias or "none",
                     "registry.version": decision.version or "none",
                     "registry.reasons": "; ".join(decision.reasons)})
    mlflow.log_text(decision.to_json(), "registry_decision.json")
    if decision.registered:
        log.info("registered %s v%s as %s: %s", decision.name, decision.version, decision.alias,
                 "; ".join(decision.reasons))
    else:
        log.warning("%s", "; ".join(decision.reasons))
    return decision


def _score_incumbent(client: MlflowClient, cfg: DictConfig, forecaster: Forecaster,
                     df: pd.DataFrame, data: Datasets, metric: str) -> registry.Incumbent | None:
    """The current champion of ``registry.model_name`` scored on this run's test windows with
    this run's scorer (None when there is no champion). A champion that cannot forecast them
    (another frequency, horizon, longer input, covariates) comes back with its ``refusal``."""
    name = cfg.registry.model_name
    version = registry.current_champion(client, name)
    if version is None:
        return None
    champion, _ = load_forecaster(f"models:/{name}/{version}", client.tracking_uri)
    windows = data.test
    refusal = windows_compatibility(champion, forecaster, df, windows.t)
    if refusal is not None:
        return registry.Incumbent(version, None, refusal)
    fc = forecast_windows_of(champion, df, data.panel.ids, windows.series, windows.t,
                             cfg.data.fill)
    fc = scoring.WindowForecasts(fc.values, fc.actual, windows.series, windows.t)  # our indices
    scores = scoring.score(champion, data.panel, fc, forecaster.season_length, baselines=())
    return registry.Incumbent(version, scores.methods()["model"][metric])


def _input_example(df: pd.DataFrame, data: Datasets, forecaster: Forecaster,
                   fill: str | None) -> pd.DataFrame:
    """What a user sends: the last ``input_size`` rows of the first series, plus, for models
    with known-future covariates, ``horizon`` future rows (``y`` missing) carrying them."""
    spec = forecaster.spec
    uid = data.panel.ids[0]
    one, _, _ = validate_frame(df[df["unique_id"].astype(str) == uid], min_length=1, fill=fill,
                               futr_exog=spec.futr_exog, static_cols=spec.static_cols)
    n_future = spec.horizon if spec.futr_exog else 0
    example = one.tail(spec.input_size + n_future).reset_index(drop=True)
    example = example[["unique_id", "ds", "y", *spec.futr_exog, *spec.static_cols]].copy()
    example["y"] = example["y"].astype(np.float64)
    if n_future:
        example.loc[len(example) - n_future:, "y"] = np.nan
    return example
