"""Start-up cost of the inference path in fresh processes: what a serving worker or a pyfunc
user pays before the first forecast.

    python bench/load_time.py MODEL_DIR                 # this checkout
    python bench/load_time.py MODEL_DIR --code OTHER    # another checkout (e.g. an older commit)

MODEL_DIR is an MLflow model folder (``mlflow artifacts download -u models:/forecaster-rnn@champion``)
or a ``Forecaster`` folder. Each figure is the median of ``--repeat`` fresh processes:
``import`` of the pyfunc module and of the service module, and the load of the model plus one
forecast of its input example; and which heavy modules the process imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import forecaster.tracking.pyfunc
t1 = time.perf_counter()
import forecaster.serving.service
t2 = time.perf_counter()
from forecaster.models.predictor import Forecaster
folder = Path(sys.argv[1])
folder = folder / "artifacts" / "forecaster" if (folder / "MLmodel").is_file() else folder
model = Forecaster.load(folder)
example = folder.parent.parent / "input_example.json"
if example.is_file():
    import pandas as pd
    split = json.loads(example.read_text())
    model.predict(pd.DataFrame(split["data"], columns=split["columns"]))
t3 = time.perf_counter()
heavy = [m for m in ("lightning", "hydra", "matplotlib") if m in sys.modules]
print(json.dumps({"import_pyfunc_s": t1 - t0, "import_service_s": t2 - t1,
                  "load_and_forecast_s": t3 - t2, "total_s": t3 - t0, "heavy": heavy}))
"""


def measure(model: Path, code: Path, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", PROBE, str(model)], env=env, cwd=code,
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = [k for k in runs[0] if k.endswith("_s")]
    return {**{k: statistics.median(r[k] for r in runs) for k in keys}, "heavy": runs[0]["heavy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    result = measure(a.model.resolve(), a.code.resolve(), a.repeat)
    print(f"checkout {a.code.resolve()} (median of {a.repeat} fresh processes)")
    for k, v in result.items():
        print(f"  {k:<22}{v:.2f}" if isinstance(v, float) else f"  {k:<22}{v}")


if __name__ == "__main__":
    main()
