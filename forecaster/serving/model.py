"""``ServedModel``: a loaded ``Forecaster`` with its request rules (``rules``), its array
fast path (``fastpath``) and its response writer (``writer``), warmed up on its own example."""

from __future__ import annotations

import logging
import os

import pandas as pd

from forecaster.data.frames import to_offset_any
from forecaster.models.predictor import Forecaster, NonFiniteForecastError
from forecaster.serving.fastpath import FastPath
from forecaster.serving.rules import FieldError, RequestError, Rules
from forecaster.serving.writer import Writer
from forecaster.tracking.loading import ModelInfo

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 100_000  # values per series: any model's input and seasons, with room


class ModelLoadError(RuntimeError):
    """The configured model cannot be served; the message names the file or URI and the cause."""


class ServedModel(Rules, FastPath, Writer):
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
                body["last_timestamp"] = pd.Timestamp(frame["ds"][observed].iloc[-1]).isoformat()
            if self.futr_exog:  # the history's rows, then the horizon's (no y)
                body["covariates"] = {c: frame[c][observed].astype(float).tolist()
                                      for c in self.futr_exog}
                body["future_covariates"] = {c: frame[c][~observed].astype(float).tolist()
                                             for c in self.futr_exog}
        else:
            body = {"values": [float(1 + k % 7) for k in range(n)]}
            if isinstance(self.freq, str):
                body["last_timestamp"] = self._synthetic_ds(n)[-1].isoformat()
            if self.futr_exog:
                body["covariates"] = {c: [0.0] * n for c in self.futr_exog}
                body["future_covariates"] = {c: [0.0] * self.horizon for c in self.futr_exog}
        errors: list[FieldError] = []
        self.check_series(None, body["values"], body.get("last_timestamp"), body.get("covariates"),
                          body.get("future_covariates"), self.horizon, (), errors)
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
        ex = self.example
        series = self.check_series(None, ex["values"], ex.get("last_timestamp"),
                                   ex.get("covariates"), ex.get("future_covariates"), self.horizon,
                                   (), errors)
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
