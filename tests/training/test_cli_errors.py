"""Bad input to ``python -m pipelines.train``: one message on stderr, exit status 2, no
traceback, before lightning or mlflow is imported (so within seconds: about 1 s on an idle
2-core machine); and a CSV with other column names trains through the mapping."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, run_cli, small_frame, store_uri

def _fails_fast(tmp_path, args: list[str], env: dict | None = None):
    proc = run_cli([*args, f"logger.tracking_uri={store_uri(tmp_path)}"], cwd=tmp_path, env=env,
                   timeout=60)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "mlflow.db").exists()  # the store was never opened
    return proc.stderr


@pytest.mark.parametrize("args", [["+model.hiden_size=32"], ["data=csv", "data.path=nowhere.csv"]])
def test_bad_input_is_refused_before_the_heavy_stack_is_imported(tmp_path, args):
    """What makes the answer fast, checked without a clock (machines are noisy): Python's
    own import log shows that neither lightning nor mlflow was imported."""
    proc = run_cli(args, cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"}, timeout=60)
    assert proc.returncode == 2
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and not {"lightning", "mlflow"} & imported


@pytest.mark.parametrize("args, env, named", [
    (["trainer.threads=abc"], None, "trainer.threads='abc' is invalid"),
    ([], {"FORECASTER_TORCH_THREADS": "0"}, "FORECASTER_TORCH_THREADS='0' is invalid"),
])
def test_a_bad_thread_setting_is_named(tmp_path, args, env, named):
    assert named in _fails_fast(tmp_path, args, env)


def test_misspelt_key_added_with_plus_is_refused(tmp_path):
    err = _fails_fast(tmp_path, ["+model.hiden_size=32"])
    assert "+model.hiden_size=32" in err and "did you mean model.hidden_size?" in err


def test_nested_unknown_key_added_with_plus_is_refused(tmp_path):
    err = _fails_fast(tmp_path, ["+data.foo.bar=1"])
    assert "has no key 'foo'" in err


def test_missing_data_file_is_named(tmp_path):
    err = _fails_fast(tmp_path, ["data=csv", "data.path=nowhere.csv"])
    assert "data.path=nowhere.csv: no such file" in err and str(tmp_path) in err


def test_csv_without_a_path_is_named(tmp_path):
    err = _fails_fast(tmp_path, ["data=csv"])
    assert "needs data.path=FILE" in err


def test_unreadable_data_file_is_named(tmp_path):
    path = tmp_path / "locked.csv"
    small_frame().to_csv(path, index=False)
    path.chmod(0)
    try:
        path.open("rb").close()
        pytest.skip("this user reads files without permission bits (root)")
    except PermissionError:
        pass
    err = _fails_fast(tmp_path, ["data=csv", f"data.path={path}"])
    assert "cannot be read" in err


@pytest.mark.parametrize("name,content", [("bytes.csv", b"\xff\xfe\x00garbage\x81"),
                                          ("table.parquet", b"not a parquet file")])
def test_undecodable_data_file_is_named(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    err = _fails_fast(tmp_path, ["data=csv", f"data.path={name}"])
    assert f"data.path={name} cannot be read" in err


@pytest.mark.parametrize("extra,named", [
    ([], "'ds' (time, data.time_col) and 'y' (target, data.target_col)"),
    (["data.time_col=date", "data.target_col=amount"], "'amount' (target, data.target_col)"),
    (["data.wide=true"], "'ds' (time, data.time_col)"),
])
def test_absent_columns_list_the_found_ones_and_the_options(tmp_path, extra, named):
    path = tmp_path / "sales.csv"
    small_frame().rename(columns={"unique_id": "store", "ds": "date", "y": "sales"}).to_csv(
        path, index=False)
    err = _fails_fast(tmp_path, ["data=csv", f"data.path={path}", *extra])
    assert named in err
    assert "Columns found: ['store', 'date', 'sales']" in err
    assert "data.time_col=COLUMN data.target_col=COLUMN data.id_col=COLUMN" in err


def test_full_error_shows_the_traceback(tmp_path):
    proc = run_cli(["+model.hiden_size=32", f"logger.tracking_uri={store_uri(tmp_path)}"],
                   cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"}, timeout=60)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "hiden_size" in proc.stderr


def test_plus_keys_of_a_constructor_are_let_through(tmp_path):
    proc = run_cli(["+trainer.limit_train_batches=2", "--cfg", "job"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "limit_train_batches: 2" in proc.stdout


def test_csv_with_other_column_names_trains_through_the_mapping(tmp_path):
    path = tmp_path / "sales.csv"
    small_frame().rename(columns={"unique_id": "store", "ds": "date", "y": "sales"}).to_csv(
        path, index=False)
    proc = run_cli([*SMALL, f"data.path={path}", "data.time_col=date", "data.target_col=sales",
                    "data.id_col=store", "trainer.max_epochs=1", "registry.enabled=false",
                    f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.run.dir={tmp_path / 'out'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["test/mae"] > 0
    assert "registry: registry off" in proc.stdout and run.info.run_id in proc.stdout
