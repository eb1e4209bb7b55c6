"""End-to-end training runs against a real MLflow sqlite store in a temp folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecaster.training import train
from tests.conftest import (
    SMALL,
    assert_champion_is_the_best,
    compose_cfg,
    run_cli,
    small_frame,
    store_uri,
    subprocess_env,
)


def test_run_logs_params_metrics_artifacts_and_registers(tmp_path, trained):
    cfg, result = trained
    client = MlflowClient(store_uri(tmp_path))
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    # the run's files live beside its store, not in ./mlruns of the working folder
    assert run.info.artifact_uri.startswith((tmp_path / "mlruns").as_uri())
    params = run.data.params
    assert params["model.hidden_size"] == "8" and params["horizon"] == "6"
    assert params["optim._target_"] == "torch.optim.Adam"
    assert run.info.run_name.startswith("data=csv input_size=24")  # the overrides, not a random name
    metrics = run.data.metrics
    for key in ("test/mae", "test/rmse", "test/smape", "test/mase", "test/pinball",
                "test/coverage_0.1_0.9", "test/coverage_0.025_0.975", "test_naive/mase",
                "test_seasonal_naive/mase", "model/members", "model/input_size",
                "train/loss", "val/loss", "val/loss_best"):
        assert key in metrics, key
    assert len(client.get_metric_history(result.run_id, "val/loss")) == 2  # one per epoch
    assert metrics["data/batch_size"] == 32  # SMALL sets it; auto is decided from the windows
    # the torch threads the rule chose (forecaster/runtime.py), and why
    assert run.data.tags["forecaster.threads"].startswith(f"{int(metrics['runtime/threads'])} (")
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "test_metrics.csv", "forecasts.png", "loss_curves.png",
            "registry_decision.json", "data_fill_report.csv", "ensemble_members.csv"} <= names
    members = pd.read_csv(client.download_artifacts(result.run_id, "ensemble_members.csv", str(tmp_path)))
    # with / without the linear path (SMALL: one seed each), and the base alone as a candidate
    assert list(members["kind"]) == ["rnn + linear", "rnn", "base alone"]
    assert members["selected"].sum() == metrics["model/members"] >= 1
    assert metrics["model/members_trained"] == 2
    assert run.data.tags["model.selected"].startswith(f"{int(metrics['model/members'])} of 3 candidates")
    table = pd.read_csv(client.download_artifacts(result.run_id, "test_metrics.csv", str(tmp_path)))
    assert list(table["method"]) == ["model", "naive", "seasonal_naive"]
    # registered, and with no champion before and no baseline gate, it becomes champion
    mv = client.get_model_version_by_alias("forecaster-rnn", "champion")
    assert mv.run_id == result.run_id
    assert run.data.tags["registry.alias"] == "champion"
    model_files = {a.path for a in client.list_artifacts(result.run_id, "model/artifacts/forecaster")}
    assert model_files == {f"model/artifacts/forecaster/{f}"
                           for f in ("weights.safetensors", "config.json", "scalers.json")}
    assert not [a for a in client.list_artifacts(result.run_id, "model") if a.path.endswith(".pkl")]


@pytest.mark.slow  # the champion comparison: test_registry_gate (on the challenger's windows)
def test_gate_gives_challenger_when_champion_is_better(tmp_path, small_csv, trained):
    _, first = trained
    # a second run that cannot beat the first (one epoch, tiny net) on an impossible gate
    cfg = compose_cfg(tmp_path, [*SMALL, f"data.path={small_csv}",
                                 f"logger.tracking_uri={store_uri(tmp_path)}",
                                 "trainer.max_epochs=1", "model.hidden_size=1",
                                 "optim.lr=1e-6", "registry.gate.beat_baseline=null"])
    second = train(cfg)
    assert second.decision.alias == "challenger"
    assert any("champion v1" in r for r in second.decision.reasons)
    client = MlflowClient(store_uri(tmp_path))
    assert client.get_model_version_by_alias("forecaster-rnn", "champion").run_id == first.run_id
    decision = json.loads(Path(client.download_artifacts(second.run_id, "registry_decision.json",
                                                         str(tmp_path))).read_text())
    assert decision["alias"] == "challenger"


def test_seasons_and_sizes_come_from_the_data(tmp_path, small_csv):
    """data=csv with no sizes: hourly -> season 24 (a week needs three weeks of history),
    input two seasons, validation three horizons."""
    from forecaster.training import check_config, design

    cfg = compose_cfg(tmp_path, ["data=csv", f"data.path={small_csv}", "horizon=6",
                                 "data.test_size=24"])
    plan = design(*check_config(cfg), pd.read_csv(small_csv))
    assert (plan.seasons, plan.season_length, plan.input_size, plan.val_size) == ((24,), 24, 48, 18)
    long = small_frame(n_series=1, length=24 * 7 * 4)
    plan = design(*check_config(cfg), long)
    assert plan.seasons == (24, 168) and plan.input_size == 336


def test_same_seed_same_metrics(tmp_path, small_csv):
    results = []
    for k in range(2):
        cfg = compose_cfg(tmp_path / str(k), [*SMALL, f"data.path={small_csv}",
                                              f"logger.tracking_uri={store_uri(tmp_path / str(k))}"])
        results.append(train(cfg).metrics)
    assert results[0] == results[1]


def test_pyfunc_predicts_in_a_fresh_process(tmp_path, trained):
    _, result = trained
    history = small_frame().groupby("unique_id").tail(30)
    history.to_csv(tmp_path / "history.csv", index=False)
    script = f"""
import mlflow, pandas as pd
mlflow.set_tracking_uri("{store_uri(tmp_path)}")
model = mlflow.pyfunc.load_model("models:/forecaster-rnn@champion")
df = pd.read_csv("{tmp_path / 'history.csv'}", parse_dates=["ds"])
out = model.predict(df)
out.to_csv("{tmp_path / 'out.csv'}", index=False)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pd.read_csv(tmp_path / "out.csv", parse_dates=["ds"])
    assert list(out.columns) == ["unique_id", "ds", "y_hat", "y_q2.5", "y_q10", "y_q50", "y_q90",
                                 "y_q97.5"]
    assert (out["y_hat"] == out["y_q50"]).all()  # the point forecast is the median
    assert len(out) == 2 * 6
    last = history.groupby("unique_id")["ds"].max()
    first_fc = out.groupby("unique_id")["ds"].min()
    assert ((first_fc - last) == pd.Timedelta("1h")).all()
    q = out[["y_q2.5", "y_q10", "y_q50", "y_q90", "y_q97.5"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    # the same numbers as the in-process Forecaster
    expected = result.forecaster.predict(history)
    pd.testing.assert_frame_equal(out[["y_hat"]], expected[["y_hat"]], atol=1e-5, check_dtype=False)


def test_cli_sweep_has_parent_and_children(tmp_path, small_csv):
    proc = run_cli(["-m", *SMALL, f"data.path={small_csv}", "trainer.max_epochs=1",
                    "model.hidden_size=4,8", f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.sweep.dir={tmp_path / 'multirun'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(store_uri(tmp_path))
    exp = client.get_experiment_by_name("forecaster")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("forecaster.sweep") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    best = min(children, key=lambda r: r.data.metrics["val/loss_best"])
    assert parent.data.tags["sweep.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best/val/loss_best"] == best.data.metrics["val/loss_best"]
    assert parent.info.status == "FINISHED"


@pytest.mark.slow  # the same store-creation race is covered by test_concurrency's three starts
def test_parallel_sweep_on_a_fresh_store(tmp_path, small_csv):
    """8 parallel jobs on a brand-new sqlite store: the store survives, 8 children finish and
    register, and the best of them is champion."""
    proc = run_cli(["-m", "launcher=joblib", "hydra.launcher.n_jobs=8", *SMALL,
                    f"data.path={small_csv}", "trainer.max_epochs=1",
                    "registry.gate.beat_baseline=null",
                    "seed=1,2,3,4,5,6,7,8", f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.sweep.dir={tmp_path / 'multirun'}"], cwd=tmp_path, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(store_uri(tmp_path))
    exp = client.get_experiment_by_name("forecaster")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    assert_champion_is_the_best(client, "forecaster-rnn", 8)


@pytest.mark.slow  # resume's run lookup: test_concurrency::test_resume_refuses_a_run_whose_process_is_alive
def test_killed_run_is_marked_and_resumed(tmp_path, small_csv):
    uri = store_uri(tmp_path)
    args = [*SMALL, f"data.path={small_csv}", "trainer.max_epochs=200",
            "callbacks.early_stopping.patience=1000", f"logger.tracking_uri={uri}",
            f"hydra.run.dir={tmp_path / 'run1'}"]
    env = subprocess_env()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.train", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "run1" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    try:
        saved = []  # modification times of last.ckpt seen: kill after a few epochs' saves
        while time.monotonic() < deadline and proc.poll() is None and len(saved) < 3:
            if last.exists() and last.stat().st_size > 0 and last.stat().st_mtime_ns not in saved:
                saved.append(last.stat().st_mtime_ns)
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    import torch
    ckpt = torch.load(last, weights_only=True, map_location="cpu")
    step_at_kill, epoch_at_kill = ckpt["global_step"], ckpt["epoch"]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("forecaster")
    (killed_run,) = client.search_runs([exp.experiment_id])
    assert killed_run.info.status == "RUNNING"

    resumed = run_cli([*args[:-1], f"hydra.run.dir={tmp_path / 'run2'}", "resume=true",
                       f"trainer.max_epochs={epoch_at_kill + 3}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = client.get_run(killed_run.info.run_id)
    assert run.data.tags.get("forecaster.killed_reason"), "the dead run was not marked KILLED"
    assert run.info.status == "FINISHED"
    assert run.data.metrics["trainer/global_step"] > step_at_kill
    assert len(client.search_runs([exp.experiment_id])) == 1  # continued, not a new run


def _default_run_on(tmp_path, df: pd.DataFrame, *overrides: str):
    """The default run (small and short) on ``df`` as a user's CSV, in a fresh process."""
    df.to_csv(tmp_path / "panel.csv", index=False)
    proc = run_cli(["data=csv", f"data.path={tmp_path / 'panel.csv'}", "horizon=6", *overrides,
                    "model.hidden_size=8", "trainer.max_epochs=1", "model.ensemble.seeds=1",
                    f"logger.tracking_uri={store_uri(tmp_path)}", "registry.enabled=false"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_panel_with_a_short_series_trains_on_the_rest_and_says_so(tmp_path):
    """A new product with 50 hourly points among 11 series of 240: the window comes from the
    bulk of the panel (not cut to the newest series), the short one is left out of training
    and test, counted in the summary and the run, and named in series_left_out.csv."""
    df = small_frame(n_series=12)
    df = df[(df["unique_id"] != "s2") | (df.groupby("unique_id").cumcount() < 50)]
    proc = _default_run_on(tmp_path, df, "data.test_size=24")
    assert "left out: 1 series too short" in proc.stdout
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert run.data.metrics["data/series_left_out"] == 1
    assert run.data.metrics["model/input_size"] == 48  # two days: from the bulk (240), not 50
    left = pd.read_csv(client.download_artifacts(run.info.run_id, "series_left_out.csv",
                                                 str(tmp_path)))
    assert left["unique_id"].tolist() == ["s2"]


def test_series_too_short_for_a_season_train_without_it(tmp_path):
    """Every series shorter than a season's window (hourly, 40 points, horizon 6): the run
    drops the season it cannot fit instead of crashing on a window shorter than it."""
    proc = _default_run_on(tmp_path, small_frame(n_series=2, length=40), "data.test_size=6")
    assert "too short for a season of 24 steps" in proc.stdout + proc.stderr


def test_covariates_static_and_calendar_reach_the_model(tmp_path):
    """Known-future exogenous, static and calendar features: trained, logged, predicted."""
    df = small_frame(n_series=3)
    df["promo"] = (df["ds"].dt.hour % 6 == 0).astype(float)
    df["y"] += 2.0 * df["promo"]
    df["size"] = df["unique_id"].map({"s0": 1.0, "s1": 2.0, "s2": 3.0})
    df.to_csv(tmp_path / "cov.csv", index=False)
    cfg = compose_cfg(tmp_path, [*SMALL, f"data.path={tmp_path / 'cov.csv'}",
                                 "data.futr_exog=[promo]", "data.static_cols=[size]",
                                 "data.calendar=[hour,dayofweek]",
                                 "model.ensemble.select=all",  # not the base alone, which ignores them
                                 f"logger.tracking_uri={store_uri(tmp_path)}"])
    result = train(cfg)
    net = result.forecaster.net.members[0]
    assert (net.n_futr, net.n_static) == (3, 1)  # hour, dayofweek, promo; size
    # y + the three known-future features, at each of the segment's steps (a day of hours)
    assert (net.segment, net.cells[0].input_size) == (24, 4 * 24)
    history = df.groupby("unique_id").head(200)
    future = df.groupby("unique_id").nth(list(range(200, 206)))
    request = pd.concat([history, future.assign(y=float("nan"))]).reset_index(drop=True)
    import mlflow
    mlflow.set_tracking_uri(store_uri(tmp_path))
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    out = model.predict(request)
    assert len(out) == 3 * 6 and out["y_hat"].notna().all()
    pd.testing.assert_frame_equal(out, result.forecaster.predict(request))
    # the future covariates matter: other promo values give other forecasts
    flipped = request.assign(promo=1.0 - request["promo"])
    assert not np.allclose(result.forecaster.predict(flipped)["y_hat"], out["y_hat"])


def test_wide_csv_trains(tmp_path):
    wide = small_frame(n_series=2).pivot(index="ds", columns="unique_id", values="y").reset_index()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    cfg = compose_cfg(tmp_path, [*SMALL, f"data.path={tmp_path / 'wide.csv'}", "data.wide=true",
                                 "trainer.max_epochs=1", "registry.enabled=false",
                                 f"logger.tracking_uri={store_uri(tmp_path)}"])
    result = train(cfg)
    assert result.decision is None and result.metrics["test/mae"] > 0
    assert sorted(result.forecaster.scaler.ids) == ["s0", "s1"]


@pytest.mark.slow  # the parent/child sweep runs: test_cli_sweep_has_parent_and_children
def test_optuna_search_runs_trials_as_children(tmp_path, small_csv):
    proc = run_cli(["hparams_search=optuna", "hydra.sweeper.n_trials=2", *SMALL,
                    f"data.path={small_csv}", "trainer.max_epochs=1", "registry.enabled=false",
                    f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.sweep.dir={tmp_path / 'multirun'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "multirun" / "optimization_results.yaml").is_file()
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("forecaster.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert parent.data.tags["sweep.best_run_id"] in {c.info.run_id for c in children}
