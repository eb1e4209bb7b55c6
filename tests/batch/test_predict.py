"""``python -m pipelines.predict``: batch forecasts of a panel, chunk by chunk (``engine=local``)
and on Spark ``local[2]`` (``engine=spark``), equal to the pyfunc model's to the float32 bit;
invalid series go to ``errors`` with their rule and never fail the job."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from forecaster.batch import chunk_series
from forecaster.errors import UsageError
from tests.conftest import MODEL_URI, compose_cfg, run_cli, small_frame

BAD = {"short": "y", "gap": "ds", "nan_inside": "y", "all_nan": "y", "dup": "ds"}


def _panel(n_series: int = 30) -> tuple[pd.DataFrame, set[str]]:
    """Hourly series (``small_frame``) and five broken ones, grouped by series."""
    good = small_frame(n_series=n_series, length=96, seed=3)
    good["unique_id"] = good["unique_id"].map(lambda s: f"ok-{int(s[1:]):03d}")
    bad = []
    for name in BAD:
        s = small_frame(n_series=1, length=96, seed=4).assign(unique_id=name)
        if name == "short":
            s = s.iloc[:10]
        elif name == "gap":
            s = s.drop(index=50)
        elif name == "nan_inside":
            s.loc[40, "y"] = np.nan
        elif name == "all_nan":
            s["y"] = np.nan
        elif name == "dup":
            s = pd.concat([s.iloc[:60], s.iloc[59:]])
        bad.append(s)
    frame = pd.concat([good.iloc[:96 * 10], *bad, good.iloc[96 * 10:]], ignore_index=True)
    return frame, set(good["unique_id"])


@pytest.fixture
def in_store(store, monkeypatch) -> dict:
    """``store``, read by this process too (as ``pipelines.predict`` and the pyfunc loader read
    it: from ``MLFLOW_TRACKING_URI``), until the test ends."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["MLFLOW_TRACKING_URI"])
    mlflow.set_tracking_uri(store["MLFLOW_TRACKING_URI"])
    return store


def _reference(frame: pd.DataFrame, ok: set[str]) -> pd.DataFrame:
    model = mlflow.pyfunc.load_model(MODEL_URI)
    frame = frame[frame["unique_id"].isin(ok)].astype({"ds": "datetime64[ns]"})  # the signature's
    return _sorted(model.predict(frame))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def _predict(store: dict, tmp_path: Path, *args: str):
    env = {"MLFLOW_TRACKING_URI": store["MLFLOW_TRACKING_URI"]}
    return run_cli([f"model_uri={MODEL_URI}", f"hydra.run.dir={tmp_path / 'hydra'}",
                    "progress=false", *args], cwd=tmp_path, env=env, timeout=400,
                   module="pipelines.predict")


def _check_output(out: Path, reference: pd.DataFrame, stdout: str) -> None:
    got = _sorted(pd.read_parquet(out / "forecasts"))
    assert list(got.columns) == list(reference.columns)
    assert got["unique_id"].astype(str).tolist() == reference["unique_id"].astype(str).tolist()
    assert (got["ds"].to_numpy() == reference["ds"].to_numpy()).all()
    for column in reference.columns[2:]:  # y_hat and the intervals, to the float32 bit
        assert got[column].dtype == np.float32
        assert np.array_equal(got[column].to_numpy(), reference[column].to_numpy()), column
    errors = pd.read_parquet(out / "errors")
    assert dict(zip(errors["unique_id"].astype(str), errors["field"])) == BAD
    assert all(f"series {uid!r}" in rule for uid, rule in zip(errors["unique_id"], errors["rule"]))
    n_ok = reference["unique_id"].nunique()
    assert f"forecast {n_ok} series ({len(reference)} rows)" in stdout
    assert "5 series not forecast (ds: 2, y: 3)" in stdout


def test_local_engine_equals_the_pyfunc_model_and_sets_bad_series_aside(in_store, tmp_path):
    frame, ok = _panel()
    shards = tmp_path / "panel"
    shards.mkdir()
    # two CSV files, a series never split between them; a chunk of 4 series: many chunks
    frame.iloc[:96 * 12].to_csv(shards / "a.csv", index=False)
    frame.iloc[96 * 12:].to_csv(shards / "b.csv", index=False)
    proc = _predict(in_store, tmp_path, f"input={shards}", f"output={tmp_path / 'out'}",
                    "chunk_series=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_output(tmp_path / "out", _reference(pd.concat(
        [pd.read_csv(shards / "a.csv"), pd.read_csv(shards / "b.csv")]), ok), proc.stdout)


def _run_in_process(tmp_path: Path, *args: str) -> dict:
    from pipelines.predict import run

    return run(compose_cfg(tmp_path, [f"model_uri={MODEL_URI}", "progress=false", *args],
                           config_name="predict"))


def test_local_engine_reads_parquet_by_glob_with_a_shorter_horizon(in_store, tmp_path):
    frame, ok = _panel(12)
    frame.to_parquet(tmp_path / "panel-1.parquet", index=False)
    counts = _run_in_process(tmp_path, f"input={tmp_path}/panel-*.parquet", "horizon=3",
                             f"output={tmp_path / 'out'}")
    assert counts["series"] == len(ok) and counts["errors"] == len(BAD)
    got = pd.read_parquet(tmp_path / "out" / "forecasts")
    assert got.groupby("unique_id").size().eq(3).all() and got["unique_id"].nunique() == len(ok)


def test_input_not_grouped_by_series_is_refused_before_anything_is_written(in_store, tmp_path):
    frame, _ = _panel(4)
    frame.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    with pytest.raises(UsageError, match="are not together .* engine=spark"):
        _run_in_process(tmp_path, f"input={tmp_path / 'shuffled.csv'}",
                        f"output={tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()


def test_usage_errors_name_the_setting(in_store, tmp_path):
    (tmp_path / "x.csv").write_text("unique_id,ds,y\na,2024-01-01,1\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.parquet").write_text("")
    cases = {(f"input={tmp_path}/nowhere/*.csv", f"output={tmp_path / 'o'}"): "input=",
             (f"input={tmp_path / 'x.csv'}", f"output={tmp_path / 'o'}", "engine=dask"): "engine",
             (f"input={tmp_path / 'x.csv'}", f"output={tmp_path / 'o'}",
              "model_uri=missing-folder"): "model_uri=missing-folder",
             (f"input={tmp_path / 'x.csv'}", f"output={tmp_path / 'full'}"): "overwrite=true",
             (f"input={tmp_path / 'x.csv'}", f"output={tmp_path / 'o'}", "horizon=99"): "horizon"}
    for args, needle in cases.items():
        with pytest.raises(UsageError, match=needle):
            _run_in_process(tmp_path, *args)


@pytest.mark.parametrize("rows", [1, 7, 96, 500])
def test_chunks_hold_whole_series(rows):
    frame, _ = _panel(9)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    batches = table.to_batches(max_chunksize=rows)
    chunks = list(chunk_series(batches, 3))
    assert sum(len(c) for c in chunks) == len(frame)
    seen: set[str] = set()
    for c in chunks:
        ids = set(c["unique_id"])
        assert not ids & seen  # a series lies in one chunk only
        seen |= ids
    assert all(c["unique_id"].nunique() >= 3 for c in chunks[:-1])


@pytest.mark.slow  # ~40 s of Spark; the default run covers the same chunk code (engine=local)
@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None or not (
    shutil.which("java") or os.environ.get("JAVA_HOME")),
    reason="needs the spark extra (pip install -e '.[spark]') and a Java 17 runtime; CI has both")
def test_spark_engine_equals_the_pyfunc_model(in_store, tmp_path):
    frame, ok = _panel()
    frame = frame.sample(frac=1, random_state=1)  # Spark groups the rows itself
    frame.to_csv(tmp_path / "panel.csv", index=False)
    proc = _predict(in_store, tmp_path, f"input={tmp_path / 'panel.csv'}", "engine=spark",
                    "spark.master='local[2]'", f"output={tmp_path / 'out'}", "chunk_series=4")
    assert proc.returncode == 0, proc.stderr[-5000:]
    _check_output(tmp_path / "out", _reference(pd.read_csv(tmp_path / "panel.csv"), ok),
                  proc.stdout)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_series_forecast_does_not_depend_on_its_batch(threads):
    """One request, a chunk of a batch job, a whole panel: the same float32 numbers (small
    batches take another CPU kernel unless padded; see Forecaster.predict_batch)."""
    import torch

    from forecaster.data import FeatureSpec
    from tests.serving.conftest import toy_forecaster

    model = toy_forecaster(FeatureSpec(24, 6, freq="h"), known=["ok-000"])
    frame, ok = _panel(40)
    frame = frame[frame["unique_id"].isin(ok)]
    ids = sorted(ok)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole = _sorted(model.predict(frame))
        for size in (1, 2, 3, 5, 9, 17):
            parts = _sorted(pd.concat(
                [model.predict(frame[frame["unique_id"].isin(ids[i:i + size])])
                 for i in range(0, len(ids), size)]))
            assert np.array_equal(parts["y_hat"].to_numpy(), whole["y_hat"].to_numpy()), size
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None or not (
    shutil.which("java") or os.environ.get("JAVA_HOME")),
    reason="needs the spark extra (pip install -e '.[spark]') and a Java 17 runtime; CI has both")
def test_spark_grouped_files_skip_the_shuffle_and_equal_the_pyfunc_model(in_store, tmp_path):
    frame, ok = _panel()
    shards = tmp_path / "panel"
    shards.mkdir()
    ids = list(dict.fromkeys(frame["unique_id"]))
    for k in range(0, len(ids), 9):  # whole series per file, rows grouped by series
        frame[frame["unique_id"].isin(ids[k:k + 9])].to_parquet(shards / f"{k:03d}.parquet",
                                                                 index=False)
    proc = _predict(in_store, tmp_path, f"input={shards}", "engine=spark", "spark.grouped=true",
                    f"output={tmp_path / 'out'}", "chunk_series=4")
    assert proc.returncode == 0, proc.stderr[-5000:]
    _check_output(tmp_path / "out", _reference(frame, ok), proc.stdout)


def test_the_scale_benchmark_runs(tmp_path):
    """bench/predict_scale.py on a tiny panel (its figures are in docs/benchmarks.md)."""
    import subprocess
    import sys

    from forecaster.data import FeatureSpec
    from tests.conftest import ROOT, subprocess_env
    from tests.serving.conftest import toy_forecaster

    toy_forecaster(FeatureSpec(104, 52, freq="7D"), known=["x"]).save(tmp_path / "model")
    proc = subprocess.run([sys.executable, "bench/predict_scale.py", "--model",
                           str(tmp_path / "model"), "--series", "300", "--engines", "reference",
                           "local", "--work", str(tmp_path / "work")], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| local | 300 |" in proc.stdout and "| reference | 300 |" in proc.stdout
