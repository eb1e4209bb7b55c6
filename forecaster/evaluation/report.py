"""What a backtest leaves behind: a printed table, and an MLflow run with metrics, the per-series
CSV and plots of a few series with every method."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecaster.tracking import artifacts  # noqa: E402


def format_table(table: pd.DataFrame, title: str = "") -> str:
    """The aggregate table as fixed-width text, one row per method."""
    cols = [c for c in table.columns if c != "windows"]
    head = f"{'method':<24}" + "".join(f"{c:>14}" for c in cols) + f"{'windows':>9}"
    lines = [title, head] if title else [head]
    for name, row in table.iterrows():
        cells = "".join(f"{row[c]:>14.4f}" for c in cols)
        n = row.get("windows", np.nan)
        lines.append(f"{name:<24}{cells}{'' if pd.isna(n) else f'{int(n):>9d}'}")
    return "\n".join(lines)


def flat_metrics(table: pd.DataFrame, stage: str = "backtest") -> dict[str, float]:
    """``backtest/mase`` for the model, ``backtest_<method>/mase`` for the others."""
    out = {}
    for name, row in table.iterrows():
        prefix = stage if name == "model" else f"{stage}_{name}"
        out.update({f"{prefix}/{k}": float(v) for k, v in row.items()})
    return artifacts.finite(out)


def plot_methods(path: Path, items: list[dict]) -> Path:
    """One panel per series: history, actuals and each method's forecast of its last window.

    Each item holds ``id``, ``history_ds``, ``history``, ``ds``, ``actual``, ``forecasts``
    (method -> ``[H]``) and optionally ``lo``/``hi`` (the model's interval).
    """
    fig, axes = plt.subplots(len(items), 1, figsize=(10, 3.2 * len(items)), squeeze=False)
    for ax, s in zip(axes[:, 0], items):
        ax.plot(s["history_ds"], s["history"], color="0.5", lw=1, label="history")
        ax.plot(s["ds"], s["actual"], color="black", lw=1.5, label="actual")
        for name, f in s["forecasts"].items():
            ax.plot(s["ds"], f, lw=1.8 if name == "model" else 1.0,
                    ls="-" if name == "model" else "--", label=name)
        if "lo" in s:
            ax.fill_between(s["ds"], s["lo"], s["hi"], color="tab:blue", alpha=0.15,
                            label="model interval")
        ax.set_title(f"series {s['id']}")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def log_run(table: pd.DataFrame, per_series: pd.DataFrame, items: list[dict],
            config_yaml: str) -> None:
    """Log into the active MLflow run: metrics, ``backtest_metrics.csv``,
    ``backtest_per_series.csv``, ``backtest_forecasts.png`` and ``config.yaml``."""
    mlflow.log_metrics(flat_metrics(table))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yaml").write_text(config_yaml)
        table.to_csv(tmp / "backtest_metrics.csv")
        per_series.to_csv(tmp / "backtest_per_series.csv", index=False)
        if items:
            plot_methods(tmp / "backtest_forecasts.png", items)
        for f in sorted(tmp.iterdir()):
            mlflow.log_artifact(str(f))
