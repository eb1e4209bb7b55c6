"""What the service does between a parsed request and its JSON answer.

    source    -> a ``Forecaster`` + ``ModelInfo``: a folder (FORECASTER_MODEL_DIR), a BentoML
                 model, or the MLflow registry (FORECASTER_MODEL_URI in MLFLOW_TRACKING_URI)
    check     -> the model-dependent rules (input_size, horizon, covariates, timestamps);
                 every failure is a ``FieldError`` naming the field and the rule
    forecast  -> flat arrays for all series -> ``Forecaster.predict_arrays`` (numpy batch core
                 ``batch_from_arrays`` -> ``predict_batch``): the core ``Forecaster.predict``
                 (and so the pyfunc model) runs after validating its frame
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from forecaster.data.features import future_grid
from forecaster.data.frames import (
    DataValidationError,
    parse_timestamps,
    same_freq,
    series_freq,
    to_offset_any,
)
from forecaster.models.predictor import Forecaster, ModelFileError, NonFiniteForecastError
from forecaster.serving.schemas import clip, detail, error_body
from forecaster.tracking.loading import ModelInfo, ModelNotFoundError, describe, load_forecaster
from forecaster.tracking.store import resolve_tracking_uri

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "models:/forecaster-rnn@champion"
INFO_FILE = "model_info.json"
EXAMPLE_FILE = "input_example.json"  # the name MLflow gives it
_ORIGIN = pd.Timestamp("2000-01-01")  # ds of a history sent without timestamps (not returned)


# ------------------------------------------------------------------------------ loading
PREPARED_ENV = "FORECASTER_PREPARED_MODEL_DIR"  # set by the deployment hook for its workers
DEFAULT_MAX_LENGTH = 100_000  # values per series: any model's input and seasons, with room


class ModelLoadError(RuntimeError):
    """The configured model cannot be served; the message names the file or URI and the cause."""


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


# ------------------------------------------------------------------------------ checking
def _is_aware(timestamp: str) -> bool:
    """Whether an ISO-8601 string carries a UTC offset (``Z``, ``+02:00``, ``-0500``)."""
    return pd.Timestamp(timestamp).tzinfo is not None


@dataclass
class FieldError:
    loc: tuple
    msg: str
    type: str

    def to_dict(self) -> dict:
        return detail(self.loc, self.msg, self.type)


class RequestError(ValueError):
    """Model-dependent validation failed; answered 422 like the schema's own errors."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors = errors

    def to_dict(self) -> dict:
        return error_body([e.to_dict() for e in self.errors])


@dataclass
class Series:
    """One checked series, ready for the frame."""

    id: str | None  # None: a /forecast request, named by its position in the pass
    values: Sequence[float]
    ds: pd.DatetimeIndex
    future_ds: list[str] | None  # returned timestamps (only when the request had timestamps)
    covariates: dict[str, Sequence[float]]


class ServedModel:
    """A loaded ``Forecaster`` with the request rules and the batched prediction it serves."""

    def __init__(self, forecaster: Forecaster, info: ModelInfo,
                 example: pd.DataFrame | None = None):
        self.forecaster, self.info = forecaster, info
        spec = forecaster.spec
        self.input_size, self.horizon = forecaster.input_size, forecaster.horizon
        self.futr_exog = list(getattr(spec, "futr_exog", ()) or ())
        self.calendar = list(getattr(spec, "calendar", ()) or ())
        freq = getattr(spec, "freq", None)
        # a model saved by an older pandas may say "H" or "M"; pandas 3 reads only "h", "ME"
        self.freq = to_offset_any(freq).freqstr if isinstance(freq, str) else freq
        self.quantile_keys = [f"{q:g}" for q in forecaster.quantiles]
        self.max_length = int(os.environ.get("FORECASTER_MAX_SERIES_LENGTH", DEFAULT_MAX_LENGTH))
        self.model_ref = {"name": info.name, "version": info.version, "alias": info.alias,
                          "run_id": info.run_id}
        self.example = self._example(example)
        self._warm_up()

    def _example(self, frame: pd.DataFrame | None) -> dict:
        """A ``/forecast`` body this model answers: its stored input example (the last
        ``input_size`` steps of a training series), else a made-up flat history at its
        frequency (a model folder written without one)."""
        n = self.input_size
        if frame is not None:
            observed = frame["y"].notna().to_numpy()
            body = {"values": frame["y"][observed].astype(float).tolist()}
            if frame["ds"].dtype.kind not in "iuf":  # integer time indexes have no timestamps
                body["timestamps"] = [pd.Timestamp(t).isoformat() for t in frame["ds"][observed]]
            if self.futr_exog:
                body["covariates"] = {c: frame[c].astype(float).tolist() for c in self.futr_exog}
        else:
            body = {"values": [float(1 + k % 7) for k in range(n)]}
            if isinstance(self.freq, str) or self.calendar:
                body["timestamps"] = [t.isoformat() for t in self._synthetic_ds(n)]
            if self.futr_exog:
                body["covariates"] = {c: [0.0] * (n + self.horizon) for c in self.futr_exog}
        errors: list[FieldError] = []
        self.check_series(None, body["values"], body.get("timestamps"), body.get("covariates"),
                          self.horizon, (), errors)
        if errors:  # an example that breaks the rules would be worse than the made-up one
            log.warning("the model's input example breaks a rule (%s); /docs.json shows a "
                        "made-up history", errors[0].msg)
            return self._example(None) if frame is not None else body
        return body

    def _warm_up(self) -> None:
        """Forecast the model's own example (the first forecast also warms torch up): a model
        that cannot forecast it finitely is broken, and is never served. Once it can, a
        non-finite forecast is the fault of the history sent (values beyond what float32
        arithmetic can forecast)."""
        errors: list[FieldError] = []
        series = self.check_series(None, self.example["values"], self.example.get("timestamps"),
                                   self.example.get("covariates"), self.horizon, (), errors)
        if series is None:
            raise ModelLoadError(f"the model accepts no example history ({errors[0].msg})")
        try:
            self.predict([series])
        except (NonFiniteForecastError, RequestError) as err:
            raise ModelLoadError(f"the model's forecast of its own input example is not finite "
                                 f"({err}); its weights are broken") from None

    def non_finite(self, err: NonFiniteForecastError, loc: tuple = ()) -> FieldError:
        """How a non-finite forecast is answered: the client's error (422, naming the values);
        the model forecast its own example finitely at start-up (``_warm_up``)."""
        return FieldError((*loc, "values"), "the forecast of these values is not finite: they "
                          "lie beyond what the model's float32 arithmetic can forecast; send "
                          "them in smaller units", "non_finite_forecast")

    # ------------------------------------------------------------------ metadata
    def metadata(self) -> dict:
        groups: dict[str, dict[str, float]] = {}
        for key, value in self.info.metrics.items():
            stage, _, metric = key.partition("/")
            if stage == "test":
                groups.setdefault("model", {})[metric] = value
            elif stage.startswith("test_"):
                groups.setdefault(stage[len("test_"):], {})[metric] = value
        return {**self.model_ref, "uri": self.info.uri, "input_size": self.input_size,
                "horizon": self.horizon, "frequency": self.freq,
                "quantiles": self.forecaster.quantiles, "futr_exog": self.futr_exog,
                "calendar": self.calendar, "metrics": groups, "ensemble": self.forecaster.describe()}

    # ------------------------------------------------------------------ rules
    def check_horizon(self, horizon: int | None, errors: list[FieldError]) -> int:
        if horizon is None:
            return self.horizon
        if horizon > self.horizon:
            errors.append(FieldError(("horizon",), f"horizon must be at most the model's horizon "
                                     f"{self.horizon}, got {horizon}", "less_than_equal"))
        return horizon

    def check_series(self, id: str, values: Sequence[float], timestamps: Sequence[str] | None,
                     covariates: dict[str, Sequence[float]] | None, horizon: int,
                     loc: tuple, errors: list[FieldError]) -> Series | None:
        n_errors = len(errors)
        n = len(values)
        if n > self.max_length:
            errors.append(FieldError((*loc, "values"), f"values may hold at most {self.max_length}"
                                     f" values (FORECASTER_MAX_SERIES_LENGTH), got {n}; send the "
                                     "latest ones", "too_long"))
            return None
        if n < self.input_size:
            errors.append(FieldError((*loc, "values"), f"values needs at least the model's "
                                     f"input_size {self.input_size} values, got {n}", "too_short"))
        ds, future = self._check_timestamps(timestamps, n, horizon, loc, errors)
        covariates = covariates or {}
        unknown = sorted(set(covariates) - set(self.futr_exog))
        if unknown:
            named = ", ".join(repr(clip(u, 40)) for u in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            errors.append(FieldError((*loc, "covariates"), f"unknown covariates {named}{more}; "
                                     f"this model reads {self.futr_exog}", "extra_forbidden"))
        for name in self.futr_exog:
            if name not in covariates:
                errors.append(FieldError((*loc, "covariates", name), f"covariate {name!r} is "
                                         f"required: {n} + {self.horizon} values (history + the "
                                         "model's horizon)", "missing"))
            elif len(covariates[name]) != n + self.horizon:
                errors.append(FieldError(
                    (*loc, "covariates", name), f"covariate {name!r} needs len(values) + the "
                    f"model's horizon = {n + self.horizon} values, got {len(covariates[name])}",
                    "wrong_length"))
        if len(errors) > n_errors:
            return None
        return Series(id, values, ds, future, covariates)

    @functools.lru_cache(maxsize=64)
    def _synthetic_ds(self, n: int):
        if isinstance(self.freq, (int, np.integer)):  # integer time steps
            return pd.Index(np.arange(n, dtype=np.int64) * int(self.freq))
        return pd.date_range(_ORIGIN, periods=n, freq=self.freq or "D")

    def _check_timestamps(self, timestamps, n, horizon, loc, errors):
        loc = (*loc, "timestamps")
        if timestamps is None:
            if self.calendar:
                errors.append(FieldError(loc, f"timestamps are required: the model derives "
                                         f"calendar features {self.calendar} from them", "missing"))
                return None, None
            return self._synthetic_ds(n), None
        if len(timestamps) != n:
            errors.append(FieldError(loc, f"timestamps must have one entry per value ({n}), got "
                                     f"{len(timestamps)}", "wrong_length"))
            return None, None
        try:
            ds = parse_timestamps(timestamps)  # [n] naive, UTC for aware stamps
        except DataValidationError as err:
            errors.append(FieldError(loc, f"timestamps {err}", "datetime_parsing"))
            return None, None
        steps = np.diff(ds.view(np.int64))
        if (steps == 0).any():
            errors.append(FieldError(loc, "timestamps must be unique", "duplicated"))
            return None, None
        if (steps < 0).any():
            errors.append(FieldError(loc, "timestamps must be sorted in increasing order",
                                     "unsorted"))
            return None, None
        freq = series_freq(ds) if n >= 2 else self.freq
        if freq is None:
            errors.append(FieldError(loc, "timestamps must be evenly spaced (a regular "
                                     "frequency)", "irregular"))
            return None, None
        if self.freq is not None:
            if not same_freq(self.freq, freq, at=ds[:-1]):
                errors.append(FieldError(loc, f"timestamps must be at the model's frequency "
                                         f"{self.freq!r}, got {freq!r}", "frequency"))
                return None, None
            freq = self.freq
        future = future_grid(ds[-1:], freq, horizon)[0]  # [h]
        # an aware request gets its forecast's stamps in UTC, marked so; a naive one, naive
        suffix = "+00:00" if _is_aware(timestamps[-1]) else ""
        ds = pd.DatetimeIndex(ds)
        return ds, [t.isoformat() + suffix for t in pd.DatetimeIndex(future)]

    # ------------------------------------------------------------------ predicting
    def arrays(self, series: Sequence[Series]) -> dict:
        """The flat arrays ``Forecaster.predict_arrays`` reads, built from the checked series.

        Returns:
            keyword arguments: ``y`` [N], ``offsets`` [S+1], ``ids`` (S), and ``ds`` [N] (calendar
            models), ``exog`` [N, K] / ``futr_exog`` [S, H, K] (models with covariates).
        """
        S = len(series)
        lengths = np.fromiter((len(s.values) for s in series), dtype=np.int64, count=S)  # [S]
        offsets = np.zeros(S + 1, dtype=np.int64)  # [S+1]
        np.cumsum(lengths, out=offsets[1:])
        N = int(offsets[-1])
        y = np.fromiter(itertools.chain.from_iterable(s.values for s in series),
                        dtype=np.float64, count=N)  # [N]
        out = {"y": y, "offsets": offsets, "ids": self.ids(series)}
        if self.calendar:
            out["ds"] = np.concatenate([s.ds.values for s in series])  # [N]
            first = series[0].ds
            out["freq"] = self.freq if self.freq is not None else series_freq(first.values)
        if self.futr_exog:
            H, K = self.horizon, len(self.futr_exog)
            # each covariate list is the series' n history values, then the model's H future ones
            shift = np.repeat(np.arange(S, dtype=np.int64) * H, lengths)  # [N]
            history_rows = np.arange(N) + shift  # [N]
            future_rows = (offsets[1:] + np.arange(S) * H)[:, None] + np.arange(H)  # [S, H]
            exog = np.empty((N, K))  # [N, K]
            futr = np.empty((S, H, K))  # [S, H, K]
            for k, name in enumerate(self.futr_exog):
                col = np.fromiter(itertools.chain.from_iterable(s.covariates[name] for s in series),
                                  dtype=np.float64, count=N + S * H)
                exog[:, k], futr[:, :, k] = col[history_rows], col[future_rows]
            out["exog"], out["futr_exog"] = exog, futr
        return out

    def predict(self, series: Sequence[Series]) -> np.ndarray:
        """Forecasts ``[B, H, Q]`` in the order of ``series`` (one batched forward pass).

        Runs ``Forecaster.predict_arrays``: the array core ``Forecaster.predict`` (and so the
        pyfunc model) also runs, without building a frame.
        """
        try:
            values, _, _ = self.forecaster.predict_arrays(**self.arrays(series))
        except DataValidationError as err:  # a rule the checks above missed: still the client's
            field = "timestamps" if "'ds'" in str(err) else "values"
            raise RequestError([FieldError((field,), str(err), "data_validation")]) from err
        return values  # [B, H, Q]

    @staticmethod
    def ids(series: Sequence[Series]) -> list[str]:
        # unnamed series get ids no training series has, so their scalers are fitted on the
        # history they bring, as the pyfunc model does for a series it does not know
        return [s.id if s.id is not None else f"__request_{k}" for k, s in enumerate(series)]

    def render(self, s: Series, values: np.ndarray, horizon: int) -> dict:
        """One series' answer from its ``[H, Q]`` forecasts (numpy rows, for :func:`to_json`)."""
        columns = np.ascontiguousarray(values[:horizon].T)  # [Q, h]
        out = {"forecast": columns[self.forecaster.point_index]}
        if s.future_ds is not None:
            out["timestamps"] = s.future_ds
        if self.quantile_keys:
            out["intervals"] = dict(zip(self.quantile_keys, columns))
        return out

    def render_many(self, series: Sequence[Series], values: np.ndarray, horizon: int) -> list[dict]:
        """The answers of a batch (``id`` first) from its ``[B, H, Q]`` forecasts."""
        columns = np.ascontiguousarray(values[:, :horizon].transpose(0, 2, 1))  # [B, Q, h]
        point, keys = self.forecaster.point_index, self.quantile_keys
        out = []
        for s, cols in zip(series, columns):
            d = {"id": s.id, "forecast": cols[point]}
            if s.future_ds is not None:
                d["timestamps"] = s.future_ds
            if keys:
                d["intervals"] = dict(zip(keys, cols))
            out.append(d)
        return out


def to_json(body: dict) -> bytes:
    """A rendered answer as JSON bytes. Forecast rows stay float32 numpy arrays and are written
    by orjson as the shortest decimal that reads back as the same float32 (``315.12347``, not
    the float64 expansion ``315.12347412109375``): the model's own precision, half the bytes, and
    ~3x faster than converting to Python floats first. Non-finite forecasts never get here
    (``Forecaster.predict_batch`` raises ``NonFiniteForecastError``)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


# ------------------------------------------------------------------------------ batching
class MicroBatcher:
    """Runs concurrent single-series requests together, without waiting for a batch to fill.

    While one forward pass runs, the requests that arrive queue up; the next pass takes all of
    them (at most ``max_batch``). A lone request goes alone, at once. The passes run on the
    event loop itself (the numpy batch core is short; in a worker thread a pass fought the
    request parsing for the GIL).
    """

    def __init__(self, fn: Callable[[list], np.ndarray], max_batch: int = 256):
        self.fn, self.max_batch = fn, max_batch
        self._pending: list[tuple[object, asyncio.Future]] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecast")

    async def submit(self, item) -> np.ndarray:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._gather()
                batch = self._pending[:self.max_batch]
                self._pending = self._pending[self.max_batch:]
                items = [item for item, _ in batch]
                try:
                    results = self._run(items)
                except Exception as err:  # noqa: BLE001 - handed to each waiting request
                    results = [err] * len(batch)
                for (_, fut), result in zip(batch, results):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._busy = False

    async def run(self, items: list, chunk: int = 1024
                  ) -> tuple[np.ndarray, dict[int, BaseException]]:
        """One request's many series: passes of at most ``chunk`` series in a worker thread, so
        that probes and other requests are answered meanwhile.

        Returns:
            ``(values, failed)``: ``[B', H, Q]`` forecasts of the series that did not fail, in
            order, and the error of each series (by index) that failed on its own.
        """
        loop = asyncio.get_running_loop()
        values, failed = [], {}
        for k in range(0, len(items), chunk):
            part, part_failed = await loop.run_in_executor(
                self._executor, self._run_many, items[k:k + chunk])
            values.append(part)
            failed.update({k + i: err for i, err in part_failed.items()})
        values = [v for v in values if len(v)]
        if not values:
            return np.empty((0, 0, 0), np.float32), failed
        return (np.concatenate(values) if len(values) > 1 else values[0]), failed

    def _run_many(self, items: list) -> tuple[np.ndarray, dict[int, BaseException]]:
        try:
            return self.fn(items), {}
        except (NonFiniteForecastError, RequestError):
            pass
        out = self._one_by_one(items)
        ok = [r for r in out if not isinstance(r, BaseException)]
        shape = ok[0].shape if ok else (0, 0)
        return (np.stack(ok) if ok else np.empty((0, *shape), np.float32),
                {k: r for k, r in enumerate(out) if isinstance(r, BaseException)})

    async def _gather(self, max_wait_s: float = 0.002, idle_turns: int = 8) -> None:
        """Let the requests already received reach ``submit``: a request takes several turns of
        the event loop (body, parsing, middleware) before it queues. Stops when the queue stops
        growing for ``idle_turns`` turns, or after ``max_wait_s``."""
        deadline, idle = time.perf_counter() + max_wait_s, 0
        while idle < idle_turns and len(self._pending) < self.max_batch:
            n = len(self._pending)
            await asyncio.sleep(0)
            idle = idle + 1 if len(self._pending) == n else 0
            if time.perf_counter() > deadline:
                break

    def _run(self, items: list) -> list:
        try:
            return list(self.fn(items))
        except (NonFiniteForecastError, RequestError):
            if len(items) == 1:
                raise
        return self._one_by_one(items)

    def _one_by_one(self, items: list) -> list:
        """Each item's ``[H, Q]`` forecasts, or its error: one series' bad data or non-finite
        forecast must not fail the others."""
        out = []
        for item in items:
            try:
                out.append(self.fn([item])[0])
            except (NonFiniteForecastError, RequestError) as err:
                out.append(err)
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True)
