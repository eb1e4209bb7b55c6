"""``evaluate(cfg)``: backtest a logged, registered or exported model on a configured dataset,
beside the baselines on the same windows, print the table and log it to MLflow.

``pipelines/evaluate.py`` is a thin Hydra wrapper; tests call this with composed configs.

    load   -> the model (``models:/name@alias``, ``runs:/ID/model`` or an exported folder)
    data   -> the configured source, validated as training did
    windows-> ``n_windows`` origins ``step`` apart at the end of every series, one batched pass
    score  -> per series and aggregated; protocol scores (M4 OWA, ETTh1 scaled MSE/MAE)
    log    -> MLflow run in the configured experiment, tagged with the model it evaluated
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus
from omegaconf import DictConfig, OmegaConf

from forecaster.errors import build
from forecaster.evaluation import protocols, scoring
from forecaster.evaluation.backtest import Backtest, backtest
from forecaster.evaluation.baselines import STATISTICAL, baseline_forecasts
from forecaster.evaluation.report import format_table, log_run, method_plot_items, quantile_band
from forecaster.models.predictor import Forecaster
from forecaster.tracking import artifacts, describe, store
from forecaster.tracking.loading import load_forecaster

log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    table: pd.DataFrame  # one row per method: aggregate metrics (+ protocol columns)
    per_series: pd.DataFrame  # one row per (method, unique_id)
    backtest: Backtest
    forecasts: dict[str, np.ndarray]  # method -> point forecasts [N, H]
    frame: pd.DataFrame  # unique_id, ds, cutoff, y, y_hat, quantiles, one column per baseline
    run_id: str | None
    seconds: float  # wall time of the model's batched forecasts


def load_model(cfg: DictConfig) -> tuple[Forecaster, dict]:
    """The model of ``model_dir`` when set, else of ``model_uri``; and what to tag the run with."""
    if cfg.get("model_dir"):
        return Forecaster.load(cfg.model_dir), {"forecaster.model_dir": str(cfg.model_dir)}
    forecaster, info = load_forecaster(cfg.model_uri, cfg.logger.get("tracking_uri"))
    tags = {"forecaster.model_uri": cfg.model_uri}
    tags.update({f"forecaster.model_{k}": str(v) for k, v in
                 (("run_id", info.run_id), ("name", info.name), ("version", info.version)) if v})
    return forecaster, tags


def resolve_windows(cfg: DictConfig, protocol: protocols.Protocol, horizon: int) -> tuple[int, int]:
    """``(n_windows, step)``: as configured, else the protocol's (M4: the one test window;
    ETTh1: every test window, stride 1; otherwise 4 windows one horizon apart)."""
    n, step = protocol.windows(horizon)
    return int(cfg.n_windows or n), int(cfg.step or step)


def evaluate(cfg: DictConfig) -> EvaluationResult:
    """Backtest, score, print and log (see the module docstring)."""
    forecaster, tags = load_model(cfg)
    H, season = forecaster.horizon, int(cfg.get("season_length") or forecaster.season_length)
    d = cfg.data
    # the model's sizes (the evaluate config leaves horizon, and so a csv's test_size, null)
    dm = build(d, horizon=H, input_size=forecaster.input_size, test_size=d.test_size or H)
    df = dm.load(cfg.paths.get("data_dir"))
    protocol = protocols.for_source(d.source) if cfg.protocol == "auto" else protocols.get(cfg.protocol)
    n_windows, step = resolve_windows(cfg, protocol, H)

    start = time.perf_counter()
    bt = backtest(forecaster, df, n_windows=n_windows, step=step, fill=d.get("fill"),
                  batch_size=int(cfg.batch_size))
    seconds = time.perf_counter() - start
    log.info("%d windows (%d series x up to %d origins, step %d) forecast in %.2f s",
             len(bt.windows), len(np.unique(bt.windows.series)), n_windows, step, seconds)

    panel, w = bt.panel, bt.windows
    fc = bt.forecasts
    methods = list(dict.fromkeys([*cfg.baselines, *protocol.baselines]))
    y = panel.y.astype(np.float64)
    point_baselines = [m for m in methods if m not in STATISTICAL]
    scores = scoring.score(forecaster, panel, fc, season, point_baselines, protocol)
    table, per_series, forecasts, scale = (scores.table, scores.per_series, scores.forecasts,
                                           scores.scale)
    quantiles = (fc.values, forecaster.quantiles) if forecaster.quantiles else None

    stat = OmegaConf.to_container(cfg.statistical, resolve=True)
    stat_methods = [m for m in methods if m in STATISTICAL]
    sub = _subset(len(w), stat.pop("max_windows", None))
    stat_fc = baseline_forecasts(stat_methods, y, panel.offsets, w.series[sub], w.t[sub], H,
                                 season, **stat) if stat_methods else {}
    if stat_fc:  # scored beside every other method on the same (possibly fewer) windows
        suffix = "" if len(sub) == len(w) else "_subset"
        if suffix:
            log.info("statistical baselines on %d evenly spaced windows of %d", len(sub), len(w))
        both = {**{k: v[sub] for k, v in forecasts.items()}, **stat_fc}
        sub_q = (fc.values[sub], forecaster.quantiles) if quantiles else None
        t2, s2 = scoring.score_methods(fc.actual[sub], both, scale[sub], w.series[sub],
                                       panel.ids, sub_q)
        t2 = protocol.columns(t2, fc.actual[sub], both, panel)
        keep = list(stat_fc) if not suffix else list(both)
        t2, s2 = t2.loc[keep].rename(index=lambda k: k + suffix), s2[s2["method"].isin(keep)]
        s2 = s2.assign(method=s2["method"] + suffix)
        table, per_series = pd.concat([table, t2]), pd.concat([per_series, s2], ignore_index=True)
        if not suffix:  # plotted with the others
            forecasts.update(stat_fc)
    print(format_table(table, f"backtest of {tags.get('forecaster.model_uri') or cfg.model_dir} on "
                              f"{d.source}: {len(w)} windows, horizon {H}, season {season}"
                              + (f", protocol {protocol.name}" if protocol.summary else "")))

    frame = bt.to_frame(forecaster, {k: v for k, v in forecasts.items() if k != "model"})
    run_id = None
    if cfg.logger.get("enabled", True):
        uri = store.resolve_tracking_uri(cfg.logger.get("tracking_uri"))
        experiment_id = store.prepare_store(uri, cfg.logger.experiment_name)
        name, version = tags.get("forecaster.model_name"), tags.get("forecaster.model_version")
        run_name = cfg.logger.get("run_name") or (
            f"evaluate {name} v{version} on {d.source}" if version else None)
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                               tags={**tags, "forecaster.task": "evaluate"})
        run_id = run.info.run_id
        try:
            mlflow.log_params(artifacts.flatten(OmegaConf.to_container(cfg, resolve=True)))
            describe.log_data_input(df, dm.uri,
                                    describe.source_name(d.get("path"), d.source),
                                    forecaster.spec.freq, len(panel.ids), "evaluation")
            mlflow.log_metrics({"backtest/windows_per_s": len(w) / max(seconds, 1e-9)})
            items = _plot_items(bt, forecasts, scale, forecaster, int(cfg.logger.plot_series))
            log_run(table, per_series, items, OmegaConf.to_yaml(cfg, resolve=True), frame)
            describe.describe_evaluation(
                store.open_client(uri), run_id, name, version,
                f"{d.source}, {len(w)} windows, horizon {H}", table.to_dict(orient="index"))
            mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))
        except BaseException:
            mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            raise
    return EvaluationResult(table, per_series, bt, forecasts, frame, run_id, seconds)


def _subset(n: int, max_windows: int | None) -> np.ndarray:
    """Indices of at most ``max_windows`` of ``n`` windows, evenly spaced (all when ``None``)."""
    if not max_windows or max_windows >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, int(max_windows)).round().astype(np.int64))


def _plot_items(bt: Backtest, forecasts: dict[str, np.ndarray], scale: np.ndarray,
                forecaster: Forecaster, n: int) -> list[dict]:
    """The last window of ``n`` series (best, median, worst by MASE), with every method."""
    w, fc = bt.windows, bt.forecasts
    return method_plot_items(bt.panel, w.series, w.t, fc.actual, forecasts, scale,
                             forecaster.horizon, forecaster.input_size, n,
                             quantile_band(fc.values, forecaster.quantiles))
