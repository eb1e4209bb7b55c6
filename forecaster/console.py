"""What a person watching a run sees in the terminal: progress, quiet libraries, a summary.

Progress bars are drawn only for a person: on a terminal and not under ``CI=true`` (in CI logs
and redirected output they are thousands of carriage returns). The summary ends every training
run with the test table against the baselines, the registry decision and the next commands.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
METHODS = (("model", "test"), ("naive", "test_naive"), ("seasonal naive", "test_seasonal_naive"))
POINT_METRICS = ("mae", "rmse", "smape", "mase")
# Third-party messages that carry no information for this project's users.
LIGHTNING_TIPS = "💡 Tip:"  # adverts for litlogger / litmodels, once per Trainer
KNOWN_DEPRECATIONS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch 2.13 vs lightning 2.6's pytree
)


def progress_wanted() -> bool:
    """True when a person watches: stdout is a terminal and ``CI`` is not ``true``."""
    return sys.stdout.isatty() and os.environ.get("CI", "").lower() not in ("true", "1")


def progress(items: Iterable, total: int | None = None, desc: str = "") -> Iterable:
    """``items``, with a tqdm bar on stderr when :func:`progress_wanted`."""
    if not progress_wanted():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, leave=False)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_TIPS)


def quiet_third_party() -> None:
    """Silence the known noise, and only it: Lightning's tips, known deprecation warnings,
    MLflow's artifact-download bars (drawn even into log files), and Lightning's second copy of
    each line.

    ``import lightning`` adds its own stderr handler to the ``lightning`` logger, which also
    propagates to the root; once the entry point has configured the root (Hydra's job logging)
    every Lightning line would print twice, so Lightning's handler goes and its lines keep the
    job's format and reach the job's log file.
    """
    if logging.getLogger().handlers:
        own = logging.getLogger("lightning")
        for handler in list(own.handlers):
            own.removeHandler(handler)
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropTips) for f in tips.filters):
        tips.addFilter(_DropTips())
    for message in KNOWN_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def prepare(cfg: DictConfig) -> None:
    """Console set-up of a training run: quiet libraries, and Lightning's progress bar on when
    ``trainer.enable_progress_bar`` is null (the default) and :func:`progress_wanted`."""
    quiet_third_party()
    if cfg.get("trainer") is not None and cfg.trainer.get("enable_progress_bar", False) is None:
        with open_dict(cfg):
            cfg.trainer.enable_progress_bar = progress_wanted()


def summary(metrics: Mapping[str, float], run_id: str | None, decision, tracking_uri: str) -> str:
    """The closing table of a training run.

    Args:
        metrics: the run's flat metrics (``test/mase``, ``test_naive/mase``, ...).
        run_id: the MLflow run, or None (tracking off).
        decision: the registry's ``Decision`` (``name``, ``version``, ``alias``, ``reasons``),
            or None when registration is off.
        tracking_uri: the store the run went to.
    """
    lines = [f"{'':<16}" + "".join(f"{m:>10}" for m in POINT_METRICS)]
    for label, prefix in METHODS:
        cells = [metrics.get(f"{prefix}/{m}") for m in POINT_METRICS]
        lines.append(f"{label:<16}" + "".join(
            f"{'-':>10}" if v is None else f"{v:>10.4f}" for v in cells))
    for key, value in sorted(metrics.items()):
        if key.startswith("test/coverage_"):
            lo, hi = (float(q) for q in key.removeprefix("test/coverage_").split("_"))
            lines.append(f"interval {lo:g}-{hi:g}: coverage {value:.3f} (nominal {hi - lo:.3f})")
    if metrics.get("data/series_left_out"):
        lines.append(f"left out: {int(metrics['data/series_left_out'])} series too short for "
                     "one window of each split (not trained, not scored; series_left_out.csv names them)")
    lines.append(f"run:      {run_id or '(tracking off)'}")
    if decision is None or not decision.registered:
        lines.append("registry: registry off" if decision is None else
                     f"registry: {'; '.join(decision.reasons)}")
        model_uri = f"runs:/{run_id}/model"
    else:
        lines.append(f"registry: {decision.name} v{decision.version} -> {decision.alias} "
                     f"({'; '.join(decision.reasons)})")
        model_uri = (f"models:/{decision.name}@{decision.alias}" if decision.alias == "champion"
                     else f"models:/{decision.name}/{decision.version}")
    env = f"MLFLOW_TRACKING_URI={shlex.quote(tracking_uri)} FORECASTER_MODEL_URI={model_uri}"
    lines += [
        "next:",
        f"  mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}",
        f"  cd {shlex.quote(str(REPO_ROOT))} && {env} bentoml serve",
        "  curl -s localhost:3000/forecast -H 'content-type: application/json' "
        "-d @examples/forecast.json",
    ]
    return "\n".join(lines)
