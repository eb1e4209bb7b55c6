"""``pipelines/evaluate.py`` end to end: a model trained in a tmp store, backtested, logged."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecaster.evaluation.baselines import statsforecast_available
from forecaster.evaluation.runner import evaluate
from tests.conftest import compose_cfg, run_cli, store_uri


def compose_evaluate(tmp_path, overrides):
    return compose_cfg(tmp_path / "eval", overrides, config_name="evaluate")


def test_backtest_of_the_test_windows_reproduces_the_training_run(tmp_path, small_csv, trained):
    # test_size 24, horizon 6, stride 1: the test windows are the last 19 origins, step 1
    cfg = compose_evaluate(tmp_path, [
        "data=csv", f"data.path={small_csv}", f"logger.tracking_uri={store_uri(tmp_path)}",
        f"model_uri=runs:/{trained[1].run_id}/model", "n_windows=19", "step=1",
        "baselines=[naive,seasonal_naive,naive2]", "logger.plot_series=2"])
    result = evaluate(cfg)
    table = result.table
    assert list(table.index) == ["model", "naive", "seasonal_naive", "naive2"]
    assert table.loc["model", "windows"] == 2 * 19
    for key in ("mae", "rmse", "smape", "mase", "pinball", "coverage_0.1_0.9"):
        assert table.loc["model", key] == pytest.approx(trained[1].metrics[f"test/{key}"], rel=1e-5), key
    assert table.loc["seasonal_naive", "mase"] == pytest.approx(
        trained[1].metrics["test_seasonal_naive/mase"], rel=1e-6)

    client = MlflowClient(store_uri(tmp_path))
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["forecaster.task"] == "evaluate"
    assert run.data.tags["forecaster.model_uri"] == f"runs:/{trained[1].run_id}/model"
    metrics = run.data.metrics
    assert metrics["backtest/mase"] == pytest.approx(table.loc["model", "mase"])
    assert "backtest_naive2/smape" in metrics and "backtest/windows_per_s" in metrics
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"backtest_metrics.csv", "backtest_per_series.csv", "backtest_forecasts.png",
            "backtest_forecasts.parquet", "config.yaml"} <= names
    long = pd.read_parquet(client.download_artifacts(result.run_id, "backtest_forecasts.parquet",
                                                     str(tmp_path)))
    assert list(long.columns[:5]) == ["unique_id", "ds", "cutoff", "y", "y_hat"]
    assert {"naive", "seasonal_naive", "naive2"} <= set(long.columns) and len(long) == 2 * 19 * 6
    assert long.groupby("unique_id")["cutoff"].nunique().eq(19).all()
    per_series = pd.read_csv(client.download_artifacts(result.run_id, "backtest_per_series.csv",
                                                       str(tmp_path)))
    assert len(per_series) == 4 * 2 and set(per_series["unique_id"]) == {"s0", "s1"}


def test_cli_evaluates_the_registered_champion(tmp_path, small_csv, trained):
    stat = statsforecast_available()  # then AutoETS on 2 of the 6 windows, beside the others
    baselines = "[naive,seasonal_naive,auto_ets]" if stat else "[naive,seasonal_naive]"
    proc = run_cli(["data=csv", f"data.path={small_csv}", "n_windows=3", f"baselines={baselines}",
                    "statistical.max_windows=2", f"hydra.run.dir={tmp_path / 'cli'}"],
                   cwd=tmp_path, env={"MLFLOW_TRACKING_URI": store_uri(tmp_path)},
                   module="pipelines.evaluate", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backtest of models:/forecaster-rnn@champion" in proc.stdout
    if stat:
        assert "auto_ets_subset" in proc.stdout and "model_subset" in proc.stdout
    runs = MlflowClient(store_uri(tmp_path)).search_runs(
        [MlflowClient(store_uri(tmp_path)).get_experiment_by_name("forecaster").experiment_id],
        "tags.`forecaster.task` = 'evaluate'")
    assert len(runs) == 1 and runs[0].data.metrics["backtest/windows"] == 6



def test_protocol_test_metrics_of_a_training_run(tmp_path):
    """What a training run on a benchmark source can log: M4 OWA against Naive2 on the test part."""
    from forecaster.evaluation.protocols import split_metrics
    from forecaster.models import Forecaster
    from forecaster.nn import RNNForecastNet
    from forecaster.training import build_data
    from tests.evaluation.test_protocols import _require

    _require("M4-Hourly-train.csv", "M4-Hourly-test.csv")
    cfg = compose_cfg(tmp_path, ["experiment=m4_hourly"])
    _, data, _ = build_data(cfg)
    assert len(data.test) == 414 and (data.test.t == data.panel.lengths - 48).all()
    net_config = dict(n_features=data.spec.n_features, horizon=48, hidden_size=4)
    forecaster = Forecaster(RNNForecastNet(**net_config), net_config, data.spec, data.scaler, [], 24)
    out = split_metrics("m4_hourly", forecaster, data)
    assert round(out["test_naive2/smape"], 3) == 18.383 and round(out["test_naive2/mase"], 3) == 2.395
    assert out["test_naive2/owa"] == 1.0 and 0 < out["test/owa"] < 100
    assert {"test/smape", "test/mase", "test_seasonal_naive/owa"} <= set(out)
    val = split_metrics("m4_hourly", forecaster, data, split="val")  # what choices use
    assert len(data.val) == 414 and 0 < val["val/owa"] < 100 and val["val_naive2/owa"] == 1.0
    assert split_metrics("csv", forecaster, data) == {}
