"""``bench/run_all.py`` on a clone without the benchmark data: it says which rows it skipped,
and why, and still prints its table."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_run_all_skips_rows_whose_data_is_absent(tmp_path):
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update({"FORECASTER_DATA_DIR": str(tmp_path / "no-data"), "HOME": str(tmp_path),
                "PYTHONPATH": path,
                # the download fails at once, as offline, on a machine that can reach GitHub too
                "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"})
    proc = subprocess.run([sys.executable, "bench/run_all.py", "--quick", "--only", "training",
                           "serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout[proc.stdout.index("measure"):]
    assert "training (skipped)" in table and "M4-Hourly-train.csv is not in data_dir" in table
    assert "serve (skipped)" in table and "the training row did not run" in table
