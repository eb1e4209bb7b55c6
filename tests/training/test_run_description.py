"""A training run and an evaluation run as a person reads them in the MLflow UI: the data
input, descriptions, comparison metrics, plots, and the links between runs and versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from forecaster.evaluation.report import spread_series
from forecaster.evaluation.runner import evaluate
from tests.conftest import compose_cfg, store_uri


def test_training_input_descriptions_and_comparison(tmp_path, small_csv, trained):  # noqa: F811
    _, result = trained
    client = MlflowClient(store_uri(tmp_path))
    run = client.get_run(result.run_id)
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "small.csv" and used.dataset.digest
    assert json.loads(used.dataset.source)["uri"] == str(small_csv.resolve())
    assert json.loads(used.dataset.profile)["num_rows"] == 480
    tags = {t.key: t.value for t in used.tags}
    assert tags["mlflow.data.context"] == "training"
    assert (tags["rows"], tags["series"], tags["frequency"]) == ("480", "2", "h")

    note = run.data.tags[MLFLOW_RUN_NOTE]
    assert "BasicRNNCell" in note and "trained on **small.csv** (2 series, 480 rows" in note
    assert f"test MASE **{result.metrics['test/mase']:.3f}** vs seasonal naive" in note
    assert "Registered as [forecaster-rnn v1](#/models/forecaster-rnn/versions/1): **champion**" in note
    experiment = client.get_experiment(run.info.experiment_id)
    assert "pipelines.train" in experiment.tags[MLFLOW_RUN_NOTE]
    assert "champion" in client.get_registered_model("forecaster-rnn").description
    version = client.get_model_version("forecaster-rnn", "1").description
    assert version.startswith(f"champion, test MASE {result.metrics['test/mase']:.3f} vs seasonal")
    assert f"#/experiments/{run.info.experiment_id}/runs/{result.run_id}" in version

    metrics = run.data.metrics
    for method, prefix in (("model", "test"), ("naive", "test_naive"),
                           ("seasonal_naive", "test_seasonal_naive")):
        for metric in ("mae", "rmse", "smape", "mase"):
            assert metrics[f"test_compare/{metric}/{method}"] == pytest.approx(
                metrics[f"{prefix}/{metric}"])
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"test_comparison.json", "forecasts.png", "loss_curves.png"} <= names
    table = json.loads(Path(client.download_artifacts(result.run_id, "test_comparison.json",
                                                      str(tmp_path))).read_text())
    assert table["columns"][:2] == ["method", "mae"] and "mase_vs_seasonal_naive" in table["columns"]
    assert [row[0] for row in table["data"]] == ["model", "naive", "seasonal_naive"]


def test_evaluation_run_is_named_after_the_version_and_linked_both_ways(tmp_path, small_csv,
                                                                         trained):  # noqa: F811
    cfg = compose_cfg(tmp_path / "eval", [
        "data=csv", f"data.path={small_csv}", f"logger.tracking_uri={store_uri(tmp_path)}",
        "model_uri=models:/forecaster-rnn@champion", "n_windows=2",
        "baselines=[naive,seasonal_naive]"], config_name="evaluate")
    result = evaluate(cfg)
    client = MlflowClient(store_uri(tmp_path))
    run = client.get_run(result.run_id)
    assert run.info.run_name == "evaluate forecaster-rnn v1 on csv"
    assert run.data.tags["forecaster.model_version"] == "1"
    assert run.data.tags["forecaster.model_name"] == "forecaster-rnn"
    assert "Backtest of [forecaster-rnn v1](#/models/forecaster-rnn/versions/1)" in \
        run.data.tags[MLFLOW_RUN_NOTE]
    version = client.get_model_version("forecaster-rnn", "1").description
    link = f"[evaluate forecaster-rnn v1 on csv](#/experiments/{run.info.experiment_id}/runs/{run.info.run_id})"
    assert link in version and "4 windows" in version
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "small.csv"
    assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "evaluation"


def test_plotted_series_are_best_median_and_worst():
    series = np.array([0, 0, 1, 1, 2, 3, 4])
    mase = np.array([0.5, 0.7, 2.0, 2.2, 0.1, 1.0, 9.0])  # means: 0.6, 2.1, 0.1, 1.0, 9.0
    assert spread_series(mase, series, 3) == [("best", 2), ("median", 3), ("worst", 4)]
    assert spread_series(mase, series, 1) == [("best", 2)]
    assert spread_series(mase[:2], series[:2], 3) == [("", 0)]
