"""Batch forecasts of a large panel: series/s and peak memory of ``pipelines.predict``.

    python bench/predict_scale.py --model MODEL                 # 100,000 series x 500 points
    python bench/predict_scale.py --model MODEL --large         # 1,000,000 series
    python bench/predict_scale.py --model MODEL --series 10000 100000 --engines local reference

MODEL is what ``pipelines.predict model_uri=`` takes (an exported or MLflow model folder, or a
registry URI with MLFLOW_TRACKING_URI set). For each panel size it writes the panel once
(Parquet, 10 files, grouped by series; weekly dates, the default CO2 model's frequency) and runs,
each in its own process, one after the other:

    reference  pandas reads the whole panel, one ``mlflow.pyfunc`` ``predict`` call
    local      python -m pipelines.predict engine=local
    spark      python -m pipelines.predict engine=spark spark.master=local[2]
    grouped    the same with spark.grouped=true (each file holds whole series: no shuffle)

Wall time counts the whole process (start, imports, model load, read, forecast, write); peak
memory is the largest resident set of the process and all its children together (Spark: the
JVM and its Python workers), sampled every 0.1 s. Targets (issue 15): local >= 0.8x the
reference's series/s, its memory flat as the panel grows (10x series, < 1.5x memory); Spark
local[2] >= 0.5x local.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 500

REFERENCE = r"""
import sys, mlflow, pandas as pd
from pathlib import Path
model_uri, panel = sys.argv[1], sys.argv[2]
if Path(model_uri).is_dir() and not (Path(model_uri) / "MLmodel").is_file():
    from forecaster.models import Forecaster
    predict = Forecaster.load(model_uri).predict  # what the pyfunc model calls
else:
    model = mlflow.pyfunc.load_model(model_uri)
    predict = model.predict
out = predict(pd.read_parquet(panel))
print(len(out))
"""


def write_panel(folder: Path, n_series: int, files: int = 10, seed: int = 0) -> Path:
    """``n_series`` weekly series of LENGTH points (a yearly cycle, a trend, noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2000-01-01", periods=LENGTH, freq="7D").to_numpy()
    t = np.arange(LENGTH)
    per_file = -(-n_series // files)
    for f in range(files):
        lo, hi = f * per_file, min((f + 1) * per_file, n_series)
        if lo >= hi:
            break
        n = hi - lo
        level = rng.uniform(50, 500, size=(n, 1))
        y = level * (1 + 0.1 * np.sin(2 * np.pi * t / 52) + 0.001 * t) \
            + rng.normal(0, 2, size=(n, LENGTH))
        ids = np.repeat(np.char.add("s", np.char.zfill(np.arange(lo, hi).astype(str), 8)), LENGTH)
        pd.DataFrame({"unique_id": ids, "ds": np.tile(ds, n), "y": y.reshape(-1)}).to_parquet(
            folder / f"part-{f:03d}.parquet", index=False)
    return folder


def measure(cmd: list[str], cwd: Path) -> dict:
    """Wall time and peak resident memory (the process and its children) of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    out = proc.stdout.read()
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{out[-3000:]}")
    return {"seconds": time.perf_counter() - start, "peak_mb": peak / 2**20,
            "tail": out.strip().splitlines()[-1]}


def run(model: str, n_series: int, engines: list[str], work: Path) -> list[dict]:
    panel = write_panel(work / f"panel-{n_series}", n_series)
    rows = []
    for engine in engines:
        out = work / f"out-{engine}-{n_series}"
        if engine == "reference":
            cmd = [sys.executable, "-c", REFERENCE, model, str(panel)]
        else:
            cmd = [sys.executable, "-m", "pipelines.predict", f"model_uri={model}",
                   f"input={panel}", f"output={out}", "progress=false", "overwrite=true",
                   f"hydra.run.dir={work / 'hydra'}",
                   *(["engine=local"] if engine == "local" else
                     ["engine=spark", "spark.master='local[2]'",
                      f"spark.grouped={engine == 'grouped'}"])]
        m = measure(cmd, ROOT)
        rows.append({"engine": engine, "series": n_series, **m,
                     "series_per_s": n_series / m["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--series", type=int, nargs="+", default=[100_000])
    parser.add_argument("--large", action="store_true", help="1,000,000 series")
    parser.add_argument("--engines", nargs="+", default=["reference", "local", "spark", "grouped"],
                        choices=["reference", "local", "spark", "grouped"])
    parser.add_argument("--work", type=Path, default=None, help="where panels go (default: tmp)")
    args = parser.parse_args(argv)
    sizes = [1_000_000] if args.large else args.series
    with tempfile.TemporaryDirectory(prefix="predict-scale-") as tmp:
        work = args.work or Path(tmp)
        rows = [r for n in sizes for r in run(args.model, n, args.engines, work)]
    print("\n| engine | series | seconds | series/s | peak memory |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['series']:,} | {r['seconds']:.1f} | "
              f"{r['series_per_s']:,.0f} | {r['peak_mb']:,.0f} MB |")


if __name__ == "__main__":
    main()
