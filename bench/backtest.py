"""Backtest speed: origins per second of the batched backtest against a per-origin loop.

The batched path (``forecaster.evaluation.backtest``) builds one panel and forecasts every
(series, origin) window in a few large forward passes; the reference calls
``Forecaster.predict`` once per origin on the history cut there (every series of that origin in
one call), the way a backtest is usually written around a predict API. Both give the same
numbers (tests/evaluation/test_backtest.py); this measures how long each takes.

    python bench/backtest.py [--series 200 --length 1000 --windows 48 --step 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from forecaster.data import FeatureSpec, build_datasets
from forecaster.evaluation import backtest, per_origin_forecasts
from forecaster.models import Forecaster
from forecaster.nn import RNNForecastNet


def make_forecaster(df: pd.DataFrame, input_size: int, horizon: int, hidden: int) -> Forecaster:
    spec = FeatureSpec(input_size=input_size, horizon=horizon)
    data = build_datasets(df, spec, val_size=0, test_size=horizon)
    torch.manual_seed(0)
    net_config = dict(n_features=data.spec.n_features, horizon=horizon, hidden_size=hidden,
                      n_outputs=3)
    return Forecaster(RNNForecastNet(**net_config), net_config, data.spec, data.scaler,
                      [0.1, 0.5, 0.9], season_length=24)


def make_frame(n_series: int, length: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    y = 10 + np.sin(2 * np.pi * t / 24)[None, :] + rng.normal(size=(n_series, length)).cumsum(1) * 0.1
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], length),
                         "ds": np.tile(pd.date_range("2024-01-01", periods=length, freq="h"), n_series),
                         "y": y.ravel()})


def run(series: int = 200, length: int = 1000, windows: int = 48, step: int = 12,
        input_size: int = 96, horizon: int = 24, hidden: int = 64) -> dict:
    """Seconds and origins/s of both paths (best of 2 for the batched one), and their max gap."""
    df = make_frame(series, length)
    forecaster = make_forecaster(df, input_size, horizon, hidden)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        bt = backtest(forecaster, df, n_windows=windows, step=step)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    loop = per_origin_forecasts(forecaster, df, n_windows=windows, step=step)
    loop_s = time.perf_counter() - start
    n = len(bt.windows)
    return {"windows": n, "batched_s": min(times), "loop_s": loop_s,
            "batched_per_s": n / min(times), "loop_per_s": n / loop_s,
            "max_abs_diff": float(np.abs(bt.forecasts.values - loop).max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--series", type=int, default=200)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--windows", type=int, default=48)
    p.add_argument("--step", type=int, default=12)
    a = p.parse_args()
    r = run(a.series, a.length, a.windows, a.step)
    print(f"{a.series} series x {a.windows} origins = {r['windows']} windows, input 96, horizon 24, "
          f"threads {torch.get_num_threads()}")
    print(f"{'path':<22}{'seconds':>10}{'origins/s':>12}")
    print(f"{'batched backtest':<22}{r['batched_s']:>10.2f}{r['batched_per_s']:>12.0f}")
    print(f"{'predict per origin':<22}{r['loop_s']:>10.2f}{r['loop_per_s']:>12.0f}")
    print(f"speed-up {r['loop_s'] / r['batched_s']:.1f}x, max |difference| {r['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
