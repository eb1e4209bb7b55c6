"""Where runs go: the tracking URI, the experiment, and housekeeping of the store."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from forecaster.errors import UsageError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
PID_TAG, HOST_TAG = "forecaster.pid", "forecaster.host"


class RunInUseError(UsageError, RuntimeError):
    """A run asked for (``resume=true``) is still being written by a live process."""


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working folder.

    A relative sqlite path is made absolute, so every process of a sweep opens the same file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def _sqlite_path(uri: str) -> str | None:
    prefix = "sqlite:///"
    return uri[len(prefix):] if uri.startswith(prefix) else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path``, released when the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _store_lock(uri: str, suffix: str) -> AbstractContextManager:
    """The lock on ``<database><suffix>`` beside a sqlite store; nothing for other stores."""
    path = _sqlite_path(uri)
    return nullcontext() if path is None else _file_lock(Path(path + suffix))


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``<database>.lock`` beside a sqlite store.

    MLflow creates and migrates a sqlite schema table by table without a transaction around it,
    so two processes opening a brand-new database at once both add the same columns and one
    crashes ("duplicate column name"). Other stores (a server, Postgres) set themselves up.
    """
    path = _sqlite_path(uri)
    with _store_lock(uri, ".lock"):
        if path is not None:
            _write_ahead_log(path)
        yield


def registry_lock(uri: str) -> AbstractContextManager:
    """Hold an exclusive lock on ``<database>.registry.lock`` beside a sqlite store while a
    run compares itself with the champion, registers and moves the alias (and while an
    evaluation appends to a version's description).

    Without it, the jobs of a parallel sweep all compared themselves with the same champion
    and all took ``champion``: the last to finish kept it, not the best. A store behind a
    server cannot be locked from here; there the comparison and the alias can race, and
    ``retry_lost_insert`` keeps the alias write from failing.
    """
    return _store_lock(uri, ".registry.lock")


def retry_lost_insert(write: Callable[[], object], attempts: int = 3) -> None:
    """Call ``write``; again when another process inserted the same row first.

    MLflow's SQL store looks a row up, then inserts it (a dataset, an experiment tag, an
    alias): two processes writing the same row at once both insert, and the second breaks the
    table's unique key. The row is there now, so the next try finds it and updates it.
    """
    for attempt in range(attempts):
        try:
            write()
            return
        except mlflow.exceptions.MlflowException as err:
            if "UNIQUE constraint" not in str(err) and "IntegrityError" not in str(err) \
                    or attempt == attempts - 1:
                raise


def _write_ahead_log(path: str) -> None:
    """Put the sqlite database at ``path`` in write-ahead-log mode (it stays so in the file).

    In the default rollback-journal mode a commit waits until no process is reading and
    readers wait while one commits, so eight trainings logging metrics into one file took
    turns long enough for a connection's lock wait to run out ("database is locked"). With
    the log, readers never wait and a commit appends to ``<database>-wal``. A copy of the
    store must therefore take ``-wal`` too, or use sqlite's backup (``sqlite3 .backup``).
    """
    import sqlite3

    with closing(sqlite3.connect(path, timeout=60)) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")


def open_client(uri: str) -> MlflowClient:
    """An ``MlflowClient`` of ``uri`` whose store exists; safe when many processes start at once.

    Constructing the client creates the sqlite schema, so it happens under the creation lock;
    MLflow keeps one store object per URI in the process, so later clients reuse it.
    """
    with _creation_lock(uri):
        return MlflowClient(uri)


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """Where a new experiment of a sqlite store keeps its runs' files: ``mlruns/`` beside the
    database file, not MLflow's default ``./mlruns`` of whatever folder the process runs in
    (runs of one store would scatter over working folders). Other stores: their default."""
    path = _sqlite_path(uri)
    if path is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment_name)
    return (Path(path).parent / "mlruns" / safe).as_uri()


def prepare_store(uri: str, experiment_name: str) -> str:
    """Create the store's schema and the experiment if needed, under the creation lock.

    Safe under concurrent starts: a sweep's jobs or separate trainings on one brand-new sqlite
    file. Returns the experiment id.
    """
    mlflow.set_tracking_uri(uri)
    with _creation_lock(uri):
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(experiment_name, _artifact_location(uri, experiment_name))
        except mlflow.exceptions.MlflowException:  # a server store: another process was first
            return client.get_experiment_by_name(experiment_name).experiment_id


def process_tags() -> dict[str, str]:
    """Tags that let a later start tell whether a RUNNING run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def live_holder(tags: dict[str, str]) -> str | None:
    """Who still runs a RUNNING run, from its process tags: ``"process 123 on host-a"``, or None
    when that process is gone.

    A run of another host cannot be checked from here, so it counts as held.
    """
    if PID_TAG not in tags:
        return None
    holder = f"process {tags[PID_TAG]} on {tags.get(HOST_TAG, 'an unknown host')}"
    if tags.get(HOST_TAG) != socket.gethostname():
        return holder
    return holder if _alive(int(tags[PID_TAG])) else None


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
            reason = f"process {tags[PID_TAG]} was gone when the next run started"
            # the jobs of a sweep starting together may all find the same dead run
            retry_lost_insert(lambda: client.set_tag(run.info.run_id, "forecaster.killed_reason",
                                                     reason))
            killed.append(run.info.run_id)
    return killed
