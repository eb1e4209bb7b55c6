"""Where the served model comes from: a folder (FORECASTER_MODEL_DIR), a BentoML model, or the
MLflow registry (FORECASTER_MODEL_URI in MLFLOW_TRACKING_URI); prepared once per server,
loaded and warmed up per worker, and followed when its alias moves."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from forecaster.models.predictor import Forecaster, ModelFileError
from forecaster.serving.model import ModelLoadError, ServedModel
from forecaster.tracking.loading import ModelInfo, ModelNotFoundError, describe, load_forecaster

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "models:/forecaster-rnn@champion"
INFO_FILE = "model_info.json"
EXAMPLE_FILE = "input_example.json"  # the name MLflow gives it
PREPARED_ENV = "FORECASTER_PREPARED_MODEL_DIR"  # set by the deployment hook for its workers


def model_uri() -> str:
    return os.environ.get("FORECASTER_MODEL_URI") or DEFAULT_MODEL_URI


def _check_store(uri: str) -> None:
    """A sqlite store that does not exist is an error for the server (opening it would create
    an empty one, and then report that nothing is registered)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix):]).is_file():
        raise ModelLoadError(
            f"the tracking store {uri} does not exist (no file {uri[len(prefix):]}); set "
            "MLFLOW_TRACKING_URI to the store a training wrote (`python -m pipelines.train` "
            "prints it), or serve a folder with FORECASTER_MODEL_DIR")


def check_source() -> None:
    """Fail fast (``ModelLoadError``) when the configured model does not exist."""
    if os.environ.get("FORECASTER_MODEL_DIR") or os.environ.get("FORECASTER_BENTO_MODEL"):
        return
    from forecaster.tracking.store import resolve_tracking_uri  # imports MLflow: not in workers

    _check_store(resolve_tracking_uri())
    try:
        describe(model_uri())
    except ModelNotFoundError as err:
        raise ModelLoadError(str(err)) from None


def prepare(bento_model_path: str | Path | None = None) -> Path:
    """Once per server, before its workers start: the configured model as a local folder,
    loaded and warmed up (``open_served``); workers then read that folder
    (``PREPARED_ENV``), not the tracking store.

    Raises:
        ModelLoadError: the store, URI or a file of the model is missing or broken, or its
            forecast of its own input example is not finite.
    """
    folder = os.environ.get("FORECASTER_MODEL_DIR") or bento_model_path
    if not folder:
        check_source()
        forecaster, info, example = _download()
        folder = export(forecaster, info, Path(tempfile.mkdtemp(prefix="forecaster-model-")),
                        example)
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # when the server ends
    open_served(Path(folder))  # loads and warms up, or raises
    return Path(folder)


def _download() -> tuple[Forecaster, ModelInfo, pd.DataFrame | None]:
    uri = model_uri()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            forecaster, info = load_forecaster(uri, dst=tmp)
        except ModelNotFoundError as err:
            raise ModelLoadError(str(err)) from None
        except ModelFileError as err:
            raise ModelLoadError(f"{uri}: {err}") from None
        found = sorted(Path(tmp).rglob(EXAMPLE_FILE))
        return forecaster, info, _read_example(found[0]) if found else None


def load(bento_model_path: str | Path | None = None
         ) -> tuple[Forecaster, ModelInfo, pd.DataFrame | None]:
    """The served model: the folder the deployment prepared, else FORECASTER_MODEL_DIR, else
    the Bento's model, else the registry.

    Returns:
        ``(forecaster, info, example)``: ``example`` is the history the model was logged with
        (MLflow's input example, ``input_example.json``), or ``None`` when the model has none.
    """
    folder = (os.environ.get(PREPARED_ENV) or os.environ.get("FORECASTER_MODEL_DIR")
              or bento_model_path)
    if not folder:
        return _download()
    folder = Path(folder)
    info_path = folder / INFO_FILE
    info = (ModelInfo(**json.loads(info_path.read_text())) if info_path.is_file()
            else ModelInfo(uri=str(folder)))
    try:
        forecaster = Forecaster.load(folder)
    except ModelFileError as err:
        raise ModelLoadError(str(err)) from None
    return forecaster, info, _read_example(folder / EXAMPLE_FILE)


def open_served(folder: Path | None = None) -> ServedModel:
    """Load the model (``load``) and warm it up on its input example: a ``ServedModel`` whose
    forecast of that example is finite, or ``ModelLoadError``."""
    forecaster, info, example = load(folder)
    try:
        return ServedModel(forecaster, info, example)
    except ModelLoadError as err:
        where = os.environ.get(PREPARED_ENV) or os.environ.get("FORECASTER_MODEL_DIR") or folder
        source = info.uri if not where or str(where) == info.uri else f"{info.uri} ({where})"
        raise ModelLoadError(f"{source}: {err}") from None


def follows_alias() -> bool:
    """Whether the served model is a registry alias (``models:/name@alias``) the service can
    follow: not a folder, not a Bento's model."""
    if os.environ.get("FORECASTER_MODEL_DIR") or os.environ.get("FORECASTER_BENTO_MODEL"):
        return False
    return "@" in model_uri() and model_uri().startswith("models:/")


class AliasFollower:
    """Follows the registry alias the service serves: every ``every_s`` seconds it asks which
    version the alias points to; a new one is downloaded, loaded and warmed up on its input
    example in this background thread, then handed to ``swap`` (which puts it in place in one
    assignment). A version that fails is refused once, with one WARNING line, and the model
    being served stays.

    Args:
        version: the version served now.
        swap: called with the new ``ServedModel``.
        every_s: seconds between polls.
    """

    def __init__(self, version: str | None, swap: Callable[[ServedModel], None], every_s: float):
        self.version, self.swap, self.every_s = version, swap, float(every_s)
        self.refused: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alias-follower", daemon=True)

    def start(self) -> AliasFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 - the thread must outlive a bad poll
                log.warning("alias poll failed: %s: %s", type(err).__name__, err)

    def check(self) -> str | None:
        """One poll: the version swapped in, or None."""
        uri = model_uri()
        try:
            version = describe(uri).version
        except ModelNotFoundError as err:
            if "gone" not in self.refused:
                log.warning("%s no longer resolves (%s); still serving version %s", uri, err,
                            self.version)
                self.refused.add("gone")
            return None
        self.refused.discard("gone")
        if version in (self.version, None) or version in self.refused:
            return None
        try:
            forecaster, info, example = _download()
            served = ServedModel(forecaster, info, example)
        except ModelLoadError as err:
            self.refused.add(version)
            log.warning("%s moved to version %s, which is refused: %s; still serving version %s",
                        uri, version, err, self.version)
            return None
        self.swap(served)
        log.info("%s moved: now serving version %s (was %s)", uri, served.info.version,
                 self.version)
        self.version = served.info.version
        return self.version


def _read_example(path: Path) -> pd.DataFrame | None:
    """MLflow's ``input_example.json`` (a pandas frame, ``split`` orient) as a long frame."""
    if not path.is_file():
        return None
    split = json.loads(path.read_text())
    return pd.DataFrame(split["data"], columns=split["columns"])


def export(forecaster: Forecaster, info: ModelInfo, path: str | Path,
           example: pd.DataFrame | None = None) -> Path:
    """A self-contained model folder: the ``Forecaster`` files, ``model_info.json`` and, when
    there is one, the input example (the runnable example of ``/docs.json``)."""
    path = forecaster.save(path)
    (path / INFO_FILE).write_text(json.dumps(info.to_dict(), indent=2))
    if example is not None:
        frame = example.astype({"ds": str}) if "ds" in example else example
        (path / EXAMPLE_FILE).write_text(frame.to_json(orient="split", index=False))
    return path
