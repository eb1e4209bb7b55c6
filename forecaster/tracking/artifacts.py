"""Files a person opens in the MLflow UI: flattened params, loss curves and metric tables."""

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


def plot_curves(path: Path, curves: Mapping[str, list[tuple[int, float]]]) -> Path:
    """Loss curves: ``{"train/loss": [(step, value), ...], "val/loss": [...]}``.

    Lightning logs both once per epoch at the optimiser step the epoch ended on, which is what
    the x axis shows; the scaled loss is the training objective on the scaler's units.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", ms=3, label=name)
    ax.set_xlabel("optimiser step (batches seen); one point per epoch")
    ax.set_ylabel("loss on scaled targets (log scale)")
    ax.set_title("training and validation loss per epoch")
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
