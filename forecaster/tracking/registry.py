"""Registering a trained model and deciding its alias: ``champion`` only when it earns it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from forecaster.tracking.store import retry_lost_insert

CHAMPION, CHALLENGER = "champion", "challenger"


REGISTER_IF = ("beats_baseline", "always", "never")


@dataclass
class Gate:
    """When a run registers a version, and when that version becomes ``champion`` (lower
    ``metric`` is better).

    Args:
        metric: the test metric compared, e.g. ``mase``.
        beat_baseline: the baseline the model must beat on ``metric`` (``seasonal_naive``), or
            None to skip that check.
        beat_champion: whether the model must also beat the current champion, scored on this
            run's own test windows.
        register_if: ``beats_baseline`` (default: a model that loses to the baseline gets no
            version), ``always`` or ``never``.
    """

    metric: str = "mase"
    beat_baseline: str | None = "seasonal_naive"
    beat_champion: bool = True
    register_if: str = "beats_baseline"

    def __post_init__(self):
        if self.register_if not in REGISTER_IF:
            raise ValueError(f"registry.register_if={self.register_if!r} is invalid: it must be "
                             f"one of {list(REGISTER_IF)}")


@dataclass
class Incumbent:
    """The current champion, scored by the challenger's run on the challenger's own test
    windows (the same data, windows and metric).

    Attributes:
        version: its version.
        value: its ``metric`` on those windows; None when it cannot forecast them.
        refusal: why it cannot (another frequency, horizon, input length, covariates).
    """

    version: str
    value: float | None = None
    refusal: str | None = None


@dataclass
class Decision:
    """What the gate decided: ``version`` and ``alias`` are None when nothing was registered."""

    name: str
    version: str | None
    alias: str | None
    reasons: list[str] = field(default_factory=list)
    champion_before: str | None = None

    @property
    def registered(self) -> bool:
        return self.version is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def current_champion(client: MlflowClient, name: str) -> str | None:
    """The version ``champion`` points to, or None."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def register(client: MlflowClient, model_uri: str, name: str, metrics: dict[str, float],
             baselines: dict[str, dict[str, float]], gate: Gate,
             incumbent: Incumbent | None = None) -> Decision:
    """Register ``model_uri`` under ``name`` (unless ``gate.register_if`` says not) and give
    it ``champion`` or ``challenger``.

    Args:
        metrics: the model's test metrics (``{"mase": ...}``).
        baselines: each baseline's metrics on the same windows (``{"seasonal_naive": {...}}``).
        incumbent: the current champion scored on the same windows (None: there is none, or
            ``gate.beat_champion`` is off).
    """
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
    before = incumbent.version if incumbent else None
    if gate.register_if == "never":
        return Decision(name, None, None, [*reasons, "not registered: registry.register_if=never"],
                        before)
    if gate.register_if == "beats_baseline" and not ok:
        return Decision(name, None, None, [*reasons, "not registered: it does not beat "
                        f"{gate.beat_baseline or 'its baseline'} (registry.register_if="
                        "beats_baseline; registry.register_if=always registers every run)"],
                        before)
    if incumbent is not None and incumbent.refusal:
        return Decision(name, None, None, [*reasons, f"not registered: champion "
                        f"v{incumbent.version} of {name} forecasts {incumbent.refusal}, so the "
                        f"two cannot be compared; register under another name with "
                        f"registry.model_name=<name>"], before)
    if gate.beat_champion:
        if incumbent is None:
            reasons.append("no current champion")
        else:
            beats = ours < incumbent.value
            ok &= beats
            reasons.append(f"on this run's test windows {gate.metric} {ours:.4f} "
                           f"{'<' if beats else '>='} champion v{incumbent.version} "
                           f"{incumbent.value:.4f}")
    mv = mlflow.register_model(model_uri, name)
    alias = CHAMPION if ok else CHALLENGER
    retry_lost_insert(lambda: client.set_registered_model_alias(name, alias, mv.version))
    decision = Decision(name, str(mv.version), alias, reasons, before)
    client.set_model_version_tag(name, mv.version, "gate", "; ".join(reasons))
    return decision
