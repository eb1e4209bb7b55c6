"""The accuracy table in one command: the default model on real series beside the baselines
of the same run, then the public benchmarks (M4 Hourly, ETTh1) beside their references.

    python bench/accuracy.py --quick      # the packaged series only (about a minute on 2 cores)
    python bench/accuracy.py              # + M4 Hourly and ETTh1 at every horizon (about 2 hours)
    python bench/accuracy.py --only m4    # rows whose name contains "m4"
    python bench/accuracy.py --quick --set model.segment=season   # a variant, on every row

Every row is one ``pipelines.train`` run with the repository's configs (``conf/``) and only
the overrides shown, into a temporary MLflow store with the registry off. Everything the
model chooses (seasons, input length, members, intervals) is chosen on validation windows;
the test windows are only scored. Rows whose benchmark files are absent (``paths.data_dir``,
default ``../shared/data``) are skipped and said so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name, overrides: the packaged real series (statsmodels, pmdarima), horizon one season or day
PACKAGED = [
    ("co2 weekly (statsmodels)", ["data.source=co2"]),
    ("elnino monthly (statsmodels)", ["data.source=elnino", "horizon=12", "data.test_size=36"]),
    ("taylor half-hourly (pmdarima)", ["data.source=taylor", "horizon=48", "data.test_size=336"]),
    ("wineind monthly (pmdarima)", ["data.source=wineind", "horizon=12", "data.test_size=24"]),
    ("ausbeer quarterly (pmdarima)", ["data.source=ausbeer", "horizon=8", "data.test_size=16"]),
    ("airpassengers monthly (pmdarima)", ["data.source=airpassengers", "horizon=12",
                                          "data.test_size=24"]),
]
M4 = [("M4 Hourly", ["experiment=m4_hourly"])]
ETTH1 = [(f"ETTh1 OT h{h}", ["experiment=etth1", f"horizon={h}"])
         for h in (24, 48, 96, 168, 192, 336, 720)]
# Peers measured on the same protocol (../shared/data/README.md): M4 Hourly sMAPE / MASE / OWA,
# ETTh1 NLinear (neuralforecast, input 336) MSE / MAE.
M4_PEERS = {"ES-RNN (Smyl, M4 winner)": (9.328, 0.893, 0.440),
            "LightGBM lags 1..168 (mlforecast)": (9.463, 0.913, 0.448),
            "NHITS (neuralforecast)": (12.618, 1.257, 0.606),
            "MSTL 24+168 (statsforecast)": (13.763, 1.102, 0.605)}
NLINEAR = {96: (0.0539, 0.1785), 336: (0.0813, 0.2260), 720: (0.0795, 0.2248)}


def run(overrides: list[str], tmp: Path) -> dict[str, float]:
    """One training run with the real configs; its flat metrics."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from forecaster.training import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "registry.enabled=false",
                                          f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
                                          f"paths.output_dir={tmp / 'out'}"],
                      return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp / "out")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return train(cfg).metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the packaged series only")
    parser.add_argument("--only", default="", help="run the rows whose name contains this")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override added to every row (a variant to compare)")
    args = parser.parse_args()
    rows = PACKAGED + ([] if args.quick else M4 + ETTH1)
    rows = [(n, [*o, *args.set]) for n, o in rows if args.only.lower() in n.lower()]
    results: list[tuple[str, list[str], dict | str, float]] = []
    for name, overrides in rows:
        print(f"== {name}: python -m pipelines.train {' '.join(overrides)}", flush=True)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                metrics = run(overrides, Path(tmp))
            except (FileNotFoundError, ImportError) as err:
                metrics = f"skipped: {err}"
        results.append((name, overrides, metrics, time.perf_counter() - start))
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)
    print(report(results))


def report(results) -> str:
    out = []
    packaged = [r for r in results if not r[0].startswith(("M4", "ETTh1"))]
    if packaged:
        out += ["", "### Real series: the default model beside the baselines of the same run (test MASE)", "",
                "| series | overrides | ours | seasonal naive | naive | ours / seasonal naive "
                "| 80 % interval covers | 95 % covers | kept of trained + base | val/loss_best "
                "(the choice) | time |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, overrides, m, secs in packaged:
            if isinstance(m, str):
                out.append(f"| {name} | {m} ||||||||||")
                continue
            ratio = m["test/mase"] / m["test_seasonal_naive/mase"]
            out.append(
                f"| {name} | `{' '.join(overrides)}` | {m['test/mase']:.3f} | "
                f"{m['test_seasonal_naive/mase']:.3f} | {m['test_naive/mase']:.3f} | "
                f"**{ratio:.2f}** | {m.get('test/coverage_0.1_0.9', float('nan')):.2f} | "
                f"{m.get('test/coverage_0.025_0.975', float('nan')):.2f} | "
                f"{m['model/members']:.0f} of {m['model/members_trained']:.0f}+1 | "
                f"{m['val/loss_best']:.4f} | {secs:.0f} s |")
    for name, overrides, m, secs in results:
        if not name.startswith("M4"):
            continue
        out += ["", f"### {name} (`{' '.join(overrides)}`, {secs / 60:.1f} min)", "",
                "| method | sMAPE | MASE | OWA |", "|---|---|---|---|"]
        if isinstance(m, str):
            out.append(f"| {m} ||||")
            continue
        out.append(f"| **ours** | **{m['test/smape']:.3f}** | **{m['test/mase']:.3f}** | "
                   f"**{m['test/owa']:.3f}** |")
        out.append(f"| ours on validation (what was chosen on) | {m['val/smape']:.3f} | "
                   f"{m['val/mase']:.3f} | {m['val/owa']:.3f} |")
        for base in ("seasonal_naive", "naive2", "naive"):
            out.append(f"| {base} (same run) | {m.get(f'test_{base}/smape', float('nan')):.3f} | "
                       f"{m.get(f'test_{base}/mase', float('nan')):.3f} | {m[f'test_{base}/owa']:.3f} |")
        out += [f"| {peer} (reference) | {s:.3f} | {a:.3f} | {o:.3f} |" for peer, (s, a, o) in M4_PEERS.items()]
    etth1 = [r for r in results if r[0].startswith("ETTh1")]
    if etth1:
        out += ["", "### ETTh1 univariate OT (`experiment=etth1 horizon=H`), MSE / MAE on the "
                "standardised test windows", "",
                "| horizon | ours | repeat last (same run) | NLinear (reference) | ours / repeat last (MSE) "
                "| validation MSE (the choice) | time |",
                "|---|---|---|---|---|---|---|"]
        for name, overrides, m, secs in etth1:
            h = int(name.rsplit("h", 1)[1])
            if isinstance(m, str):
                out.append(f"| {h} | {m} ||||||")
                continue
            ref = NLINEAR.get(h)
            out.append(f"| {h} | **{m['test/mse_scaled']:.4f} / {m['test/mae_scaled']:.4f}** | "
                       f"{m['test_naive/mse_scaled']:.4f} / {m['test_naive/mae_scaled']:.4f} | "
                       f"{f'{ref[0]:.4f} / {ref[1]:.4f}' if ref else ''} | "
                       f"{m['test/mse_scaled'] / m['test_naive/mse_scaled']:.2f} | "
                       f"{m.get('val/mse_scaled', float('nan')):.4f} | {secs / 60:.1f} min |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
