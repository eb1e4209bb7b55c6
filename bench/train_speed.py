"""What a training run costs, alone and beside other work, in one command.

    python bench/train_speed.py --quick            # the default CO2 run only (~4 minutes)
    python bench/train_speed.py                    # + a short monthly and a daily panel
    python bench/train_speed.py --panels monthly --stats-python /path/to/venv/bin/python

Each panel is trained by the default command (``python -m pipelines.train`` with only the data
and horizon overrides, registry off, a temporary store), each run in its own process: the
default CO2 run four times,

    default alone | one thread alone (OMP_NUM_THREADS=1) | default beside N busy |
    one thread beside N busy | before beside N busy (torch's default: a thread per core,
    libgomp's default spin; what a run did before the thread rule)

and the larger panels alone, twice (default, one thread), beside AutoETS (``--beside-all``: all
four there too; beside the busy processes one such run takes about ten minutes).

"Busy" is N processes spinning in a Python loop for the whole run (``--busy``, default 4, on
a machine of 2 cores: the 2.5x oversubscription of a CI runner or a laptop at work). A row
reports wall and CPU seconds (the child's user + system time), epochs, test MASE and the
ratios the targets are stated in (issue 26):

    beside / 1-thread beside   the default's wall time against one thread's, both beside load
    CPU beside / CPU alone     CPU the default burns beside load against alone
    vs AutoETS                 the default's wall time alone against statsforecast's AutoETS
                               fitted and forecast on the same panel (all cores, n_jobs=-1)

The panels other than CO2 are synthetic, seeded and checksummed (the sha256 of their CSV is
printed): ``monthly`` 1,400 series of 80 to 140 values (trend, a 12-month season, noise),
horizon 18; ``daily`` 110 series of two years (a weekly and a yearly season), horizon 56.
AutoETS runs in ``--stats-python`` (an interpreter with ``statsforecast``, which pins
pandas < 3: e.g. a venv made with ``pip install statsforecast``), or is skipped and said so.

``--loop`` also measures the training loop's efficiency: Lightning's fit against a plain torch
loop (zero_grad, loss, backward, clip, step) over the same batches of the CO2 run, in one
process (target >= 0.9); ``--panels none --loop`` measures only that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"


def synthetic_panel(kind: str, seed: int = 0) -> pd.DataFrame:
    """A seeded long frame (unique_id, ds, y) like the held-out panels of issue 26."""
    rng = np.random.default_rng(seed)
    if kind == "monthly":
        n, lengths, freq, seasons = 1400, (80, 141), "MS", (12,)
    elif kind == "daily":
        n, lengths, freq, seasons = 110, (730, 731), "D", (7, 365)
    else:
        raise ValueError(kind)
    frames = []
    for i in range(n):
        T = int(rng.integers(*lengths))
        t = np.arange(T)
        y = 100 * rng.uniform(0.5, 2) * (1 + rng.normal(0, 0.003) * t)
        for m in seasons:
            y = y * (1 + rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * (t / m + rng.uniform())))
        y = y * (1 + rng.normal(0, 0.05, T))
        ds = pd.date_range("2015-01-01", periods=T, freq=freq)
        frames.append(pd.DataFrame({"unique_id": f"S{i:04d}", "ds": ds, "y": y.round(3)}))
    return pd.concat(frames, ignore_index=True)


def panels(names: list[str], tmp: Path) -> list[tuple[str, list[str], Path | None, int, int]]:
    """(name, overrides, csv, horizon, season) for each panel named."""
    rows = [("co2 weekly (the default run)", [], None, 52, 52)] if "co2" in names else []
    for kind, h, m in (("monthly", 18, 12), ("daily", 56, 7)):
        if kind not in names:
            continue
        path = tmp / f"{kind}.csv"
        synthetic_panel(kind).to_csv(path, index=False)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        n = pd.read_csv(path, usecols=["unique_id"])["unique_id"].nunique()
        rows.append((f"{kind}, {n} synthetic series (sha256 {digest})",
                     ["data=csv", f"data.path={path}", f"horizon={h}", f"data.test_size={h}"],
                     path, h, m))
    return rows


def train_once(overrides: list[str], env: dict, tmp: Path) -> dict:
    """One default run in its own process: wall and CPU seconds, and what it logged."""
    store = tmp / f"mlflow-{time.monotonic_ns()}.db"
    cmd = [sys.executable, "-m", "pipelines.train", *overrides, "registry.enabled=false",
           f"logger.tracking_uri=sqlite:///{store}", f"hydra.run.dir={tmp / 'runs' / store.stem}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    metrics = _logged(store)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, **metrics}


def _logged(store: Path) -> dict:
    import sqlite3

    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT key, value FROM latest_metrics").fetchall()
        tag = db.execute("SELECT value FROM tags WHERE key = 'forecaster.threads'").fetchone()
    m = dict(rows)
    return {"epochs": m.get("trainer/epochs", float("nan")), "mase": m.get("test/mase"),
            "threads": tag[0] if tag else ""}


def busy(n: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(s=seconds)]) for _ in range(n)]


def auto_ets(python: str, csv: Path | None, horizon: int, season: int, tmp: Path) -> dict | str:
    """AutoETS fitted on each series' history less the horizon and forecast, in ``python``."""
    if csv is None:
        csv = tmp / "co2.csv"
        sys.path.insert(0, str(ROOT))
        from forecaster.datasets import load_co2

        load_co2().to_csv(csv, index=False)
    code = f"""
import time, json, resource
t0 = time.perf_counter()
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoETS
df = pd.read_csv({str(csv)!r}, parse_dates=["ds"])
df["y"] = df.groupby("unique_id")["y"].transform(lambda s: s.interpolate().bfill())
train = df.groupby("unique_id").head(-{horizon})  # each series less its last horizon
freq = pd.infer_freq(df[df.unique_id == df.unique_id.iloc[0]].ds) or "D"
sf = StatsForecast(models=[AutoETS(season_length={season})], freq=freq, n_jobs=-1)
sf.forecast(df=train, h={horizon})
u = resource.getrusage(resource.RUSAGE_SELF); c = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({{"wall": time.perf_counter() - t0,
                   "cpu": u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime}}))
"""
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not run ({err})"
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"not run ({last[:120]})"
    return json.loads(out.stdout.strip().splitlines()[-1])


def loop_efficiency(tmp: Path) -> tuple[float, float]:
    """Seconds per training step of Lightning's fit and of a plain loop, same batches."""
    import lightning as L
    import torch
    from hydra import compose, initialize_config_dir

    sys.path.insert(0, str(ROOT))
    from forecaster.errors import build
    from forecaster.training import build_data, build_module

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        # no LR scheduler: the plateau one reads val/loss, and both loops skip validation
        cfg = compose("train", overrides=[f"paths.output_dir={tmp / 'loop'}", "scheduler=none"])
    torch.set_num_threads(1)
    dm = build(cfg.data)
    _, data, plan = build_data(cfg, dm)
    batches = dm.train_loader(data, 0)  # the run's own loader, for both loops
    epochs = 3

    def fresh():
        L.seed_everything(0)
        return build_module(cfg, data.spec, plan)[0]

    module = fresh()
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=1.0,
                        limit_val_batches=0, deterministic=True)
    start = time.perf_counter()
    trainer.fit(module, batches)
    lightning_s = (time.perf_counter() - start) / (epochs * len(batches))

    module = fresh()
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in batches:
            opt.zero_grad()
            loss, _ = module.compute_loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
    plain_s = (time.perf_counter() - start) / (epochs * len(batches))
    return lightning_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CO2 run only")
    parser.add_argument("--panels", default="co2,monthly,daily",
                        help="which panels, comma-separated (co2, monthly, daily)")
    parser.add_argument("--beside-all", action="store_true",
                        help="the runs beside busy processes on every panel, not only CO2")
    parser.add_argument("--busy", type=int, default=4, help="busy processes beside the run")
    parser.add_argument("--stats-python", default=sys.executable,
                        help="an interpreter with statsforecast for AutoETS")
    parser.add_argument("--loop", action="store_true", help="also the training-loop efficiency")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTER_", "MLFLOW_"))}
    env.update(CI="true", PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    one = {**env, "OMP_NUM_THREADS": "1"}
    # what a run did before the thread rule: torch's default (a thread per core), libgomp's spin
    before = {**env, "OMP_NUM_THREADS": str(len(os.sched_getaffinity(0))),
              "GOMP_SPINCOUNT": "300000"}
    print(f"{os.cpu_count()} CPUs, {args.busy} busy processes beside the loaded runs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = ["co2"] if args.quick else args.panels.split(",")
        for name, overrides, csv, h, m in panels(names, tmp):
            print(f"\n== {name}: python -m pipelines.train {' '.join(overrides)}", flush=True)
            runs = {}
            loaded = args.busy and (csv is None or args.beside_all)
            for label, e, load in (("default alone", env, 0), ("1 thread alone", one, 0),
                                   *((("default beside", env, args.busy),
                                      ("1 thread beside", one, args.busy),
                                      ("before beside", before, args.busy)) if loaded else ())):
                hogs = busy(load, 3600) if load else []
                try:
                    time.sleep(0.5 if load else 0)
                    r = runs[label] = train_once(overrides, e, tmp)
                finally:
                    for p in hogs:
                        p.kill()
                        p.wait()
                print(f"  {label:<16} wall {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  epochs "
                      f"{r['epochs']:4.0f}  test MASE {r['mase']:.4f}  threads {r['threads']}",
                      flush=True)
            ets = auto_ets(args.stats_python, csv, h, m, tmp)
            a, one_a = runs["default alone"], runs["1 thread alone"]
            if loaded:
                b, one_b = runs["default beside"], runs["1 thread beside"]
                print(f"  beside / 1-thread beside: {b['wall'] / one_b['wall']:.2f} (before: "
                      f"{runs['before beside']['wall'] / one_b['wall']:.2f})   CPU beside / CPU "
                      f"alone: {b['cpu'] / a['cpu']:.2f} (1 thread: "
                      f"{one_b['cpu'] / one_a['cpu']:.2f})", end="")
            print(f"   alone / 1-thread alone: {a['wall'] / one_a['wall']:.2f}")
            if isinstance(ets, dict):
                print(f"  AutoETS (statsforecast, n_jobs=-1, same panel): wall {ets['wall']:.1f} s,"
                      f" cpu {ets['cpu']:.1f} s; default alone / AutoETS: "
                      f"{a['wall'] / ets['wall']:.2f}", flush=True)
            else:
                print(f"  AutoETS: {ets}", flush=True)
        if args.loop:
            lightning_s, plain_s = loop_efficiency(tmp)
            print(f"\n== training loop (CO2 batches, 1 thread): Lightning {lightning_s * 1e3:.1f} "
                  f"ms/step, plain torch {plain_s * 1e3:.1f} ms/step, efficiency "
                  f"{plain_s / lightning_s:.2f}", flush=True)


if __name__ == "__main__":
    main()
