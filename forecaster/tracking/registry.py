"""Registering a trained model and deciding its alias: ``champion`` only when it earns it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Gate:
    """When a new version becomes ``champion`` (lower ``metric`` is better).

    Args:
        metric: the test metric compared, e.g. ``mase``.
        beat_baseline: the baseline the model must beat on ``metric`` (``seasonal_naive``), or
            None to skip that check.
        beat_champion: whether the model must also beat the current champion's ``metric``.
    """

    metric: str = "mase"
    beat_baseline: str | None = "seasonal_naive"
    beat_champion: bool = True


@dataclass
class Decision:
    name: str
    version: str
    alias: str
    reasons: list[str] = field(default_factory=list)
    champion_before: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _champion_metric(client: MlflowClient, name: str, metric: str) -> tuple[str | None, float | None]:
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    value = client.get_run(mv.run_id).data.metrics.get(f"test/{metric}")
    return mv.version, value


def register(client: MlflowClient, model_uri: str, name: str, metrics: dict[str, float],
             baselines: dict[str, dict[str, float]], gate: Gate) -> Decision:
    """Register ``model_uri`` under ``name`` and give it ``champion`` or ``challenger``.

    Args:
        metrics: the model's test metrics (``{"mase": ...}``).
        baselines: each baseline's test metrics (``{"seasonal_naive": {"mase": ...}}``).
    """
    champion_version, champion_value = _champion_metric(client, name, gate.metric)
    mv = mlflow.register_model(model_uri, name)
    ours = metrics.get(gate.metric, math.nan)
    reasons, ok = [], math.isfinite(ours)
    if not ok:
        reasons.append(f"test {gate.metric} is not finite")
    if gate.beat_baseline:
        ref = baselines.get(gate.beat_baseline, {}).get(gate.metric, math.nan)
        beats = ours < ref
        ok &= beats
        reasons.append(f"test {gate.metric} {ours:.4f} {'<' if beats else '>='} "
                       f"{gate.beat_baseline} {ref:.4f}")
    if gate.beat_champion:
        if champion_version is None:
            reasons.append("no current champion")
        elif champion_value is None:
            reasons.append(f"champion v{champion_version} has no test/{gate.metric}; not compared")
        else:
            beats = ours < champion_value
            ok &= beats
            reasons.append(f"test {gate.metric} {ours:.4f} {'<' if beats else '>='} "
                           f"champion v{champion_version} {champion_value:.4f}")
    alias = CHAMPION if ok else CHALLENGER
    client.set_registered_model_alias(name, alias, mv.version)
    decision = Decision(name, str(mv.version), alias, reasons, champion_version)
    client.set_model_version_tag(name, mv.version, "gate", "; ".join(reasons))
    return decision
