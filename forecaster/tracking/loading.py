"""Loading a logged or registered model back as a ``Forecaster`` (the path serving uses).

MLflow is imported when a function here needs it, not with the module: a serving worker reads
the folder its server prepared and never asks the registry, and importing MLflow took half a
second of each worker's start.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forecaster.models import Forecaster

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """Nothing is registered (or logged) under the requested URI."""


@dataclass
class ModelInfo:
    """Where a loaded model came from, and how it scored when it was trained."""

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def describe(model_uri: str, tracking_uri: str | None = None) -> ModelInfo:
    """Resolve ``models:/name@alias`` or ``models:/name/version`` to its version, run and metrics."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from forecaster.tracking.store import resolve_tracking_uri

    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    m = _REGISTRY_URI.match(model_uri)
    if not m:
        return ModelInfo(uri=model_uri)
    name, alias = m["name"], m["alias"]
    try:
        mv = (client.get_model_version_by_alias(name, alias) if alias
              else client.get_model_version(name, m["version"]))
    except MlflowException as err:
        raise ModelNotFoundError(
            f"no model is registered as {model_uri} in {resolve_tracking_uri(tracking_uri)}; "
            "train one first: `python -m pipelines.train` (it registers forecaster-rnn and sets "
            "its alias), or set FORECASTER_MODEL_URI / MLFLOW_TRACKING_URI to where one is"
        ) from err
    metrics = {k: v for k, v in client.get_run(mv.run_id).data.metrics.items()
               if k.startswith(("test", "val/loss_best"))}
    return ModelInfo(model_uri, name, str(mv.version), alias, mv.run_id, metrics)


def download_forecaster(model_uri: str, dst: str | Path | None = None,
                        tracking_uri: str | None = None) -> Path:
    """Download a logged or registered model; returns the folder of its ``Forecaster`` files
    (weights, config, scalers). Raises ``ModelNotFoundError``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from forecaster.tracking.pyfunc import ARTIFACT_KEY
    from forecaster.tracking.store import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=str(dst) if dst else None)
    except MlflowException as err:
        raise ModelNotFoundError(f"could not download {model_uri}: {err}") from err
    return Path(local) / "artifacts" / ARTIFACT_KEY


def load_forecaster(model_uri: str, tracking_uri: str | None = None,
                    dst: str | Path | None = None) -> tuple[Forecaster, ModelInfo]:
    """Download the model's files and load its ``Forecaster``; raises ``ModelNotFoundError``."""
    info = describe(model_uri, tracking_uri)
    return Forecaster.load(download_forecaster(model_uri, dst, tracking_uri)), info
