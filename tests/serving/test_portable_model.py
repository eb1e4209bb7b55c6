"""The logged model loads anywhere: it ships the project's code, lists only real requirements,
and loading it (pyfunc or the service) never imports Lightning, Hydra or matplotlib."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import free_port, small_frame, subprocess_env
from tests.serving.conftest import MODEL_URI

HEAVY = ("lightning", "pytorch_lightning", "hydra", "omegaconf", "matplotlib",
         "forecaster.training", "forecaster.models.module")


@pytest.fixture(scope="module")
def model_dir(store, tmp_path_factory) -> Path:
    """The registered champion's MLflow model folder, downloaded."""
    mlflow.set_tracking_uri(store["MLFLOW_TRACKING_URI"])
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=MODEL_URI, dst_path=str(tmp_path_factory.mktemp("model"))))


def test_the_logged_model_ships_its_code_and_real_requirements(model_dir):
    requirements = (model_dir / "requirements.txt").read_text().split()
    names = {r.split(">=")[0].split("==")[0] for r in requirements if not r.startswith("-")}
    assert {"torch", "numpy", "pandas", "safetensors", "mlflow"} <= names
    assert "forecaster" not in names  # on PyPI that is an unrelated package
    assert (model_dir / "code" / "forecaster" / "models" / "predictor.py").is_file()
    weights = list(model_dir.rglob("weights.*"))
    assert [w.name for w in weights] == ["weights.safetensors"]
    assert not list(model_dir.rglob("*.pkl"))


def test_loading_for_serving_or_pyfunc_imports_neither_lightning_nor_hydra(store, model_dir,
                                                                            tmp_path):
    small_frame().groupby("unique_id").tail(30).to_parquet(tmp_path / "history.parquet")
    script = f"""
import sys, mlflow, pandas as pd
import forecaster.serving.service, forecaster.serving.source
model = mlflow.pyfunc.load_model({str(model_dir)!r})
out = model.predict(pd.read_parquet({str(tmp_path / "history.parquet")!r}))
assert len(out) and out["y_hat"].notna().all()
print("heavy:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
"""
    env = subprocess_env({k: v for k, v in store.items() if k != "tmp"})
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "heavy:", proc.stdout


def _fresh_venv(tmp_path: Path) -> Path:
    """A virtual environment without the project: this interpreter's third-party packages on
    its path (offline: nothing is downloaded), the editable install of ``forecaster`` not
    (a ``.pth`` entry adds the folder; the folder's own ``.pth`` files are not processed)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout
    Path(site.strip(), "packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    uvicorn = venv / "bin" / "uvicorn"  # the console script `mlflow models serve` runs
    uvicorn.write_text(f"#!{python}\nimport sys\nfrom uvicorn.main import main\nsys.exit(main())\n")
    uvicorn.chmod(0o755)
    return python


@pytest.mark.slow  # a venv and two fresh loads (~1 min); the fast tests above cover the folder
def test_in_a_fresh_venv_without_the_project_the_model_loads_predicts_and_serves(
        store, model_dir, tmp_path):
    python = _fresh_venv(tmp_path)
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}
    probe = subprocess.run([str(python), "-c", "import forecaster"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "No module named 'forecaster'" in probe.stderr

    history = small_frame().groupby("unique_id").tail(30).reset_index(drop=True)
    history.to_parquet(tmp_path / "history.parquet")
    script = f"""
import time; start = time.perf_counter()
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model({str(model_dir)!r})
loaded = time.perf_counter() - start
out = model.predict(pd.read_parquet({str(tmp_path / 'history.parquet')!r}))
out.to_parquet({str(tmp_path / 'out.parquet')!r})
print(f"load_s={{loaded:.2f}}")
"""
    proc = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout.strip())  # the fresh-venv load time, for the closing note
    fresh = pd.read_parquet(tmp_path / "out.parquet")

    # the service's path in this environment: Forecaster.load of the same files
    from forecaster.models.predictor import Forecaster
    here = Forecaster.load(model_dir / "artifacts" / "forecaster").predict(history)
    np.testing.assert_array_equal(fresh["y_hat"].to_numpy(np.float32),
                                  here["y_hat"].to_numpy(np.float32))

    port = free_port()
    server = subprocess.Popen(
        [str(python), "-m", "mlflow", "models", "serve", "-m", str(model_dir),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = {"dataframe_split": json.loads(history.astype({"ds": str}).to_json(
            orient="split", index=False)), "params": {"horizon": 3}}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text[-2000:]
        rows = pd.DataFrame(r.json()["predictions"])
        assert len(rows) == 2 * 3 and np.isfinite(rows["y_hat"]).all()
        served = rows.groupby("unique_id").head(3)["y_hat"].to_numpy(np.float32)
        np.testing.assert_array_equal(served, here.groupby("unique_id").head(3)["y_hat"]
                                      .to_numpy(np.float32))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
