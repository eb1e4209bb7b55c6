"""Files a person opens in the MLflow UI: flattened params, plots and metric tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MLFLOW_PARAM_MAX = 6000  # characters MLflow keeps of one param value


def flatten(config: Mapping, prefix: str = "") -> dict[str, str]:
    """``{"model": {"hidden_size": 64}}`` -> ``{"model.hidden_size": "64"}``; lists stay whole."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MLFLOW_PARAM_MAX]
    return flat


def metrics_table(metrics: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per method (the model first, then baselines), one column per metric."""
    table = pd.DataFrame.from_dict(metrics, orient="index")
    table.index.name = "method"
    return table


def plot_forecasts(path: Path, series: list[dict], quantile_labels: tuple[str, str] | None) -> Path:
    """One panel per series: history, actuals, forecast and (quantile models) the interval band.

    Each item of ``series`` holds ``id``, ``history_ds``, ``history``, ``ds``, ``actual``,
    ``forecast`` and, with intervals, ``lo`` and ``hi``.
    """
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 3.2 * len(series)), squeeze=False)
    for ax, s in zip(axes[:, 0], series):
        ax.plot(s["history_ds"], s["history"], color="0.4", lw=1, label="history")
        ax.plot(s["ds"], s["actual"], color="black", lw=1.5, label="actual")
        ax.plot(s["ds"], s["forecast"], color="tab:blue", lw=1.5, label="forecast")
        if quantile_labels and "lo" in s:
            ax.fill_between(s["ds"], s["lo"], s["hi"], color="tab:blue", alpha=0.2,
                            label=f"{quantile_labels[0]}-{quantile_labels[1]} interval")
        ax.set_title(f"series {s['id']}")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_curves(path: Path, curves: Mapping[str, list[tuple[int, float]]]) -> Path:
    """Loss curves: ``{"train/loss": [(epoch, value), ...], "val/loss": [...]}``."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (scaled)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def finite(values: Mapping[str, float]) -> dict[str, float]:
    """The entries MLflow can store as metrics (finite floats)."""
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}
