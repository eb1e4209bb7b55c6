"""Where runs go: the tracking URI, the experiment, and housekeeping of the store."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
PID_TAG, HOST_TAG = "forecaster.pid", "forecaster.host"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working folder.

    A relative sqlite path is made absolute, so every process of a sweep opens the same file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def prepare_store(uri: str, experiment_name: str) -> str:
    """Create the store's schema and the experiment once, in the launching process.

    MLflow's schema set-up races when several processes create one sqlite database at once, so
    a sweep calls this before it starts its jobs. Returns the experiment id.
    """
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(experiment_name)
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(experiment_name).experiment_id


def process_tags() -> dict[str, str]:
    """Tags that let a later start tell whether a RUNNING run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_runs_killed(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this host whose process no longer exists.

    A run whose process was SIGKILLed never gets to end itself; it would stay RUNNING forever.
    Runs of other hosts, and runs whose process is alive, are left alone. Returns the run ids.
    """
    host = socket.gethostname()
    killed = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or PID_TAG not in tags:
            continue
        if not _alive(int(tags[PID_TAG])):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            client.set_tag(run.info.run_id, "forecaster.killed_reason",
                           f"process {tags[PID_TAG]} was gone when the next run started")
            killed.append(run.info.run_id)
    return killed
