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

from forecaster.evaluation import metrics as M  # noqa: E402
from forecaster.evaluation.baselines import naive_forecasts  # noqa: E402
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


def spread_series(window_mase: np.ndarray, series: np.ndarray, n: int) -> list[tuple[str, int]]:
    """``n`` series at evenly spaced ranks of their mean MASE, best first: for ``n=3`` the
    best, the median and the worst series, so the plots show the spread and not the first few.

    Args:
        window_mase: the model's MASE of each window ``[N]``.
        series: each window's series index ``[N]``.
        n: how many series.

    Returns:
        ``[(label, series index), ...]``; labels ``best``, ``median``, ``worst``, a rank, or
        ``""`` for a single series.
    """
    counts = np.bincount(series)
    seen = np.flatnonzero(counts)
    mean = np.bincount(series, weights=window_mase)[seen] / counts[seen]  # [S_seen]
    ranked = seen[np.argsort(mean, kind="stable")]
    ranks = np.unique(np.linspace(0, len(ranked) - 1, min(n, len(ranked))).round().astype(int))
    names = {0: "best", len(ranked) - 1: "worst", (len(ranked) - 1) // 2: "median"}
    return [(names.get(r, f"rank {r + 1} of {len(ranked)}") if len(ranked) > 1 else "", ranked[r])
            for r in ranks]


def quantile_band(values: np.ndarray, quantiles) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The outermost interval of quantile forecasts ``values`` ``[N, H, Q]``: ``(lo, hi, label)``,
    or None for a point model."""
    q = list(quantiles)
    if len(q) < 2:
        return None
    return values[:, :, 0], values[:, :, -1], f"q{q[0]:g}-q{q[-1]:g} interval"


def holdout_plot_items(forecaster, panel, fc, season_length: int, n: int) -> list[dict]:
    """The plot items of a training run's test windows ``fc`` (``WindowForecasts``): the model,
    its interval and seasonal naive, for the best, median and worst series (``n=3``)."""
    y = panel.y.astype(np.float64)
    scale = M.seasonal_scales(y, panel.offsets, fc.series, fc.t, season_length)
    snaive = naive_forecasts(y, panel.offsets, fc.series, fc.t, forecaster.horizon,
                               season_length)["seasonal_naive"]
    forecasts = {"model": fc.values[:, :, forecaster.point_index], "seasonal_naive": snaive}
    return method_plot_items(panel, fc.series, fc.t, fc.actual, forecasts, scale,
                             forecaster.horizon, forecaster.input_size, n,
                             quantile_band(fc.values, forecaster.quantiles))


def method_plot_items(panel, series: np.ndarray, t: np.ndarray, actual: np.ndarray,
                      forecasts: dict[str, np.ndarray], scale: np.ndarray, horizon: int,
                      input_size: int, n: int, band: tuple[np.ndarray, np.ndarray, str] | None = None
                      ) -> list[dict]:
    """The items :func:`plot_methods` draws: the last window of ``n`` series chosen by
    :func:`spread_series` on the model's MASE, each with every method's forecast.

    Args:
        panel: the ``Panel`` the windows ``(series, t)`` ``[N]`` index.
        actual: the windows' actual values ``[N, H]``.
        forecasts: method -> point forecasts ``[N, H]``; ``"model"`` is required.
        scale: each window's MASE scale ``[N]``.
        horizon: ``H``; input_size: the model's input steps (the history drawn is 4x the larger).
        n: how many series.
        band: the model's interval ``(lo [N, H], hi [N, H], label)``, or None.
    """
    errors = {k: M.window_errors(actual, f, scale)["mase"] for k, f in forecasts.items()}
    items = []
    for label, s in spread_series(errors["model"], series, n):
        i = np.flatnonzero(series == s)[-1]
        first = panel.offsets[s] + t[i]
        hist = slice(max(panel.offsets[s], first - 4 * max(input_size, horizon)), first)
        mase = ", ".join(f"{k} {errors[k][series == s].mean():.3f}" for k in forecasts)
        title = f"series {panel.ids[s]} (MASE {mase})"
        item = {"id": panel.ids[s], "title": f"{label}: {title}" if label else title,
                "history_ds": panel.ds[hist], "history": panel.y[hist],
                "ds": panel.ds[first:first + horizon], "actual": actual[i],
                "forecasts": {k: f[i] for k, f in forecasts.items()}}
        if band is not None:
            item["lo"], item["hi"], item["band"] = band[0][i], band[1][i], band[2]
        items.append(item)
    return items


def plot_methods(path: Path, items: list[dict]) -> Path:
    """One panel per series: history, actuals and each method's forecast of its last window.

    Each item holds ``id``, ``history_ds``, ``history``, ``ds``, ``actual``, ``forecasts``
    (method -> ``[H]``) and optionally ``title``, ``lo``/``hi`` (the model's interval) and
    ``band`` (its label).
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
                            label=s.get("band", "model interval"))
        ax.set_title(s.get("title", f"series {s['id']}"))
        ax.set_xlabel("ds")
        ax.set_ylabel("y")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def log_run(table: pd.DataFrame, per_series: pd.DataFrame, items: list[dict],
            config_yaml: str, frame: pd.DataFrame | None = None) -> None:
    """Log into the active MLflow run: metrics, ``backtest_metrics.csv``,
    ``backtest_per_series.csv``, ``backtest_forecasts.png``, ``config.yaml`` and the long
    forecast frame ``backtest_forecasts.parquet`` (``Backtest.to_frame``)."""
    mlflow.log_metrics(flat_metrics(table))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yaml").write_text(config_yaml)
        table.to_csv(tmp / "backtest_metrics.csv")
        per_series.to_csv(tmp / "backtest_per_series.csv", index=False)
        if frame is not None:
            frame.to_parquet(tmp / "backtest_forecasts.parquet", index=False)
        if items:
            plot_methods(tmp / "backtest_forecasts.png", items)
        for f in sorted(tmp.iterdir()):
            mlflow.log_artifact(str(f))
