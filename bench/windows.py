"""Benchmark: build the datasets of 10,000 series x 1,000 steps (10 M rows), then gather batches.

Prints a table of wall time (time.perf_counter) and peak traced memory (tracemalloc, which sees
numpy's allocations) as a ratio of the input frame's memory. Targets: build under 2 s and under
3x the frame's memory. Run: ``python bench/windows.py [--series 10000] [--steps 1000]``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd

from forecaster.data import FeatureSpec, build_datasets, window_loader


def make_frame(n_series: int, n_steps: int, seed: int = 0) -> pd.DataFrame:
    """Hourly random-walk panel in long format."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:05d}" for i in range(n_series)])
    ds = pd.date_range("2020-01-01", periods=n_steps, freq="h").to_numpy()
    return pd.DataFrame({
        "unique_id": np.repeat(ids, n_steps),
        "ds": np.tile(ds, n_series),
        "y": rng.normal(size=n_series * n_steps).cumsum(),
    })


def measure(fn):
    """(result, seconds, peak traced bytes) of ``fn()``; timed in a separate untraced call."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    del result
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000)
    args = parser.parse_args()
    df = make_frame(args.series, args.steps)
    frame_bytes = df.memory_usage(deep=True).sum()
    print(f"frame: {len(df):,} rows, {frame_bytes / 2**20:.0f} MiB\n")
    cases = {
        "target only": FeatureSpec(input_size=48, horizon=24),
        "+ hour, dayofweek": FeatureSpec(input_size=48, horizon=24, calendar=("hour", "dayofweek")),
    }
    print(f"{'case':<22}{'windows':>12}{'build s':>10}{'peak MiB':>10}{'x frame':>9}{'batch ms':>10}")
    for name, spec in cases.items():
        data, seconds, peak = measure(lambda: build_datasets(df, spec, val_size=24, test_size=24))
        loader = window_loader(data.train, batch_size=1024, shuffle=True, seed=0)
        batches = iter(loader)
        start = time.perf_counter()
        for _ in range(20):
            next(batches)
        batch_ms = (time.perf_counter() - start) / 20 * 1e3
        print(
            f"{name:<22}{len(data.train):>12,}{seconds:>10.2f}{peak / 2**20:>10.0f}"
            f"{peak / frame_bytes:>9.2f}{batch_ms:>10.2f}"
        )
        del data, loader, batches


if __name__ == "__main__":
    main()
