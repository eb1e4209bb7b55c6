"""Every speed benchmark in one command, as one table of ratios against references measured in
the same run (interleaved or back to back, so machine noise hits both sides alike).

    python bench/run_all.py                 # all, with the serving load test
    python bench/run_all.py --skip-serve    # without the HTTP load test (no servers started)
    python bench/run_all.py --quick         # smaller sizes (a smoke run, about a minute)

| row | ours | reference |
|---|---|---|
| RNN training step | ``dynamic_rnn(BasicRNNCell)`` fwd+bwd+Adam | ``torch.nn.RNN``, same weights (bench/rnn_speed.py) |
| window building | ``build_datasets`` of a random-walk panel | target 2 s; peak memory against the frame's (bench/windows.py) |
| backtest | batched origins/s | ``Forecaster.predict`` once per origin (bench/backtest.py) |
| M4 Hourly training | Lightning fit samples/s, ``experiment=m4_hourly`` | a plain torch loop over the same batches and net |
| serving | BentoML /forecast req/s and p99, /forecast_batch series/s, 1 and 2 workers | a bare FastAPI + uvicorn app on the same model; the p99 and series/s targets (bench/serve_load.py) |
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import backtest as backtest_bench  # noqa: E402  (bench/backtest.py)
import rnn_speed  # noqa: E402
import windows  # noqa: E402

ROWS: list[tuple[str, str, float, str, float, str]] = []  # measure, ours, unit, reference, ...
SKIPPED: list[tuple[str, str]] = []  # rows left out, and why


def row(measure: str, ours: float, ref: float, unit: str, reference: str, better: str) -> None:
    """``better``: "lower" (times) or "higher" (rates); the ratio is always ours / reference."""
    ROWS.append((measure, ours, ref, unit, reference, better))
    print(f"  {measure}: {ours:.4g} vs {ref:.4g} {unit} ({reference})", flush=True)


def bench_rnn(quick: bool) -> None:
    med = rnn_speed.run(batch=256, steps=48, features=1, hidden=64, horizon=48,
                        repeats=10 if quick else 30)
    row("RNN train step B256 T48 D64", med["ours", "train"] * 1e3, med["nn.RNN", "train"] * 1e3,
        "ms", "torch.nn.RNN", "lower")
    row("RNN forward batch 1", med["ours", "fwd1"] * 1e3, med["nn.RNN", "fwd1"] * 1e3, "ms",
        "torch.nn.RNN", "lower")


def bench_windows(quick: bool) -> None:
    from forecaster.data import FeatureSpec, build_datasets

    n_series = 1_000 if quick else 10_000
    df = windows.make_frame(n_series, 1_000)
    frame_mib = df.memory_usage(deep=True).sum() / 2**20
    spec = FeatureSpec(input_size=48, horizon=24)
    _, seconds, peak = windows.measure(lambda: build_datasets(df, spec, val_size=24, test_size=24))
    target = 2.0 * n_series / 10_000
    row(f"window build {n_series}x1000", seconds, target, "s", "target (2 s per 10 M rows)", "lower")
    row("window build peak memory", peak / 2**20, 3 * frame_mib, "MiB", "target 3x the frame", "lower")
    del df
    gc.collect()


def bench_backtest(quick: bool) -> None:
    r = backtest_bench.run(series=50 if quick else 200, windows=12 if quick else 48)
    row(f"backtest {r['windows']} origins", r["batched_per_s"], r["loop_per_s"], "origins/s",
        "predict() per origin", "higher")


def bench_training(quick: bool, model_dir: Path) -> None:
    """Samples/s of a short Lightning fit of the M4 Hourly experiment, and of a plain loop."""
    import lightning as L
    from hydra import compose, initialize_config_dir

    from forecaster.data import window_loader
    from forecaster.models import Forecaster
    from forecaster.training import build_data, build_module

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=m4_hourly"])
    _, data, plan = build_data(cfg)
    steps, bs = (20 if quick else 100), int(cfg.data.batch_size)
    loader = window_loader(data.train, batch_size=bs, shuffle=True, seed=0, drop_last=True)
    module, net_config = build_module(cfg, data.spec, plan)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=1.0, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(module, loader)
    lightning_s = time.perf_counter() - start
    Forecaster(module.net, net_config, data.spec, data.scaler, [], 24, plan.seasons).save(model_dir)

    plain, _ = build_module(cfg, data.spec, plan)
    opt = torch.optim.Adam(plain.net.parameters(), lr=float(cfg.optim.lr))
    batches = iter(loader)
    start = time.perf_counter()
    for _ in range(steps):
        b = next(batches)
        opt.zero_grad(set_to_none=True)
        loss, _ = plain.compute_loss(b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.net.parameters(), 1.0)
        opt.step()
    plain_s = time.perf_counter() - start
    row(f"M4 Hourly training ({steps} steps, B{bs})", steps * bs / lightning_s,
        steps * bs / plain_s, "samples/s", "plain torch loop", "higher")


def bench_serve(quick: bool, model_dir: Path) -> None:
    script = BENCH / "serve_load.py"
    if not script.is_file():
        print("  serve_load.py not present: skipped")
        return
    clients = ["1", "8"] if quick else ["1", "8", "32"]
    out = model_dir.parent / "serve_load.json"
    proc = subprocess.run([sys.executable, str(script), "--model-dir", str(model_dir),
                           "--duration", "2" if quick else "5", "--clients", *clients,
                           "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"  serve_load.py failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
        return
    results = json.loads(out.read_text())
    bare = {r["clients"]: r for r in results if r["server"] == "bare"}
    for r in results:
        name, c = r["server"], r["clients"]
        if name == "bare":
            continue
        if r["endpoint"] == "/forecast" and c in bare:
            row(f"serving /forecast, {name}, {c} clients", r["rps"], bare[c]["rps"], "req/s",
                "bare FastAPI app (target >= 0.7x at 32)", "higher")
            if c == max(bare):
                row(f"serving /forecast p99, {name}, {c} clients", r["p99_ms"], 50.0, "ms",
                    "the target (set for 32 clients)", "lower")
        elif "series_per_s" in r:
            row(f"serving /forecast_batch, {name}, {c} clients", r["series_per_s"], 50_000,
                "series/s", "the target", "higher")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--skip-serve", action="store_true", help="leave out the HTTP load test")
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--only", nargs="+", choices=["rnn", "windows", "backtest", "training", "serve"])
    a = p.parse_args()
    chosen = a.only or ["rnn", "windows", "backtest", "training"] + ([] if a.skip_serve else ["serve"])
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        if "serve" in chosen and "training" not in chosen:
            chosen.insert(0, "training")  # the served model is the one this run trains
        for name in chosen:
            print(f"{name} ...", flush=True)
            if name == "serve" and not (model_dir / "config.json").is_file():
                SKIPPED.append((name, "no model: the training row did not run"))
                print(f"  skipped: {SKIPPED[-1][1]}")
                continue
            fn = globals()[f"bench_{name}"]
            try:
                fn(a.quick, model_dir) if name in ("training", "serve") else fn(a.quick)
            except FileNotFoundError as err:  # a benchmark file absent, and no network
                SKIPPED.append((name, f"data absent: {err}"))
                print(f"  skipped: {SKIPPED[-1][1]}")
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads"
          + (", quick sizes" if a.quick else ""))
    print(f"{'measure':<48}{'ours':>12}{'reference':>12}  {'unit':<10}{'ratio':>7}  reference")
    for measure, ours, ref, unit, reference, better in ROWS:
        tag = "(lower is better)" if better == "lower" else "(higher is better)"
        print(f"{measure:<48}{ours:>12.4g}{ref:>12.4g}  {unit:<10}{ours / ref:>7.2f}  {reference} {tag}")
    for name, why in SKIPPED:
        print(f"{name + ' (skipped)':<48}{'-':>12}{'-':>12}  {why}")


if __name__ == "__main__":
    main()
