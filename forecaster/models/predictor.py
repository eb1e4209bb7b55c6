"""``Forecaster``: the one prediction path shared by the MLflow pyfunc model and the service.

A trained model is three files in a folder, none of them pickled Python objects:

    weights.safetensors  the network's state dict (safetensors: tensors and a JSON header, no
                   code); folders of format 2 have ``weights.pt`` instead, read with
                   ``torch.load(weights_only=True)``
    config.json    network arguments (one network or an ensemble's members), the data spec
                   (input size, horizon, features, frequency), quantiles, seasons and the
                   conformal interval radii
    scalers.json   the per-series scalers fitted on the training rows
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from forecaster.data import FeatureSpec, SeriesScaler, inference_batch
from forecaster.data.inference import batch_from_arrays
from forecaster.models import conformal
from forecaster.nn import EnsembleNet, RNNForecastNet, build_net, window_scale

FORMAT_VERSION = 3  # 3: weights.safetensors; 2: weights.pt (still read)
WEIGHTS, CONFIG, SCALERS = "weights.safetensors", "config.json", "scalers.json"
WEIGHTS_V2 = "weights.pt"


MIN_ROWS = 8  # the fewest rows of a forward pass (see Forecaster.predict_batch)


class ModelFileError(ValueError):
    """A model folder cannot be loaded; the message names the file and the cause."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing: a model folder holds {WEIGHTS}, {CONFIG} "
                             f"and {SCALERS}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path} cannot be read as JSON: {err}") from None


def _read_weights(path: Path, version: int) -> dict[str, torch.Tensor]:
    file = path / (WEIGHTS if version >= 3 else WEIGHTS_V2)
    if not file.is_file():
        raise ModelFileError(f"{file} is missing: a model folder of format {version} holds it "
                             f"beside {CONFIG}")
    try:
        if version >= 3:
            return safetensors.torch.load_file(str(file), device="cpu")
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, empty, not that format: all mean "not weights"
        kind = "safetensors" if version >= 3 else "torch state-dict"
        raise ModelFileError(f"{file} is not a readable {kind} file (empty, truncated or "
                             f"corrupt): {type(err).__name__}: {err}") from None


class NonFiniteForecastError(RuntimeError):
    """The network produced NaN or infinite values; they are never returned as a forecast."""


def quantile_column(q: float) -> str:
    """Output column of quantile ``q``: 0.1 -> ``y_q10``, 0.025 -> ``y_q2.5``."""
    return f"y_q{round(q * 100, 4):g}"


def _median_index(quantiles: Sequence[float]) -> int:
    """The output that is the point forecast: the quantile nearest 0.5 (0 for a point model)."""
    return int(np.argmin([abs(q - 0.5) for q in quantiles])) if quantiles else 0


class Forecaster:
    """A trained network with everything needed to forecast from raw history.

    Args:
        net: the trained ``RNNForecastNet`` or ``EnsembleNet`` (put in eval mode here).
        net_config: the keyword arguments that rebuild ``net`` (``build_net``).
        spec: the data spec the network was trained with.
        scaler: per-series scalers fitted on the training rows.
        quantiles: ascending quantile levels of the network's outputs (empty for a point model).
        season_length: the seasonal period used for MASE and seasonal naive.
        seasons: every season length the model uses (the primary one first).
        calibration: ``{"levels": [0.8, ...], "radius": [[H floats], ...]}``, split-conformal
            interval radii (``forecaster.models.conformal``); when given, the outputs are the
            median (the network's point forecast) and these intervals.
        nonnegative: a series whose history in the window (what the model reads) never went
            below zero is not forecast below zero, point and interval bounds alike (sales,
            demand, counts); a series with a negative value is left as forecast.
    """

    def __init__(self, net: RNNForecastNet | EnsembleNet, net_config: dict, spec: FeatureSpec,
                 scaler: SeriesScaler, quantiles: Sequence[float] = (), season_length: int = 1,
                 seasons: Sequence[int] = (), calibration: dict | None = None,
                 nonnegative: bool = False):
        self.net = net.eval()
        self.nonnegative = bool(nonnegative)
        self.net_config = dict(net_config)
        self.spec, self.scaler = spec, scaler
        self.net_quantiles = [float(q) for q in quantiles]
        self.season_length = int(season_length)
        self.seasons = [int(m) for m in seasons] or ([self.season_length] if season_length > 1 else [])
        self.net_point_index = _median_index(self.net_quantiles)
        self.calibration = None
        if calibration is not None:
            levels = [float(a) for a in calibration["levels"]]
            radius = np.asarray(calibration["radius"], dtype=np.float64).reshape(len(levels), -1)
            self.calibration = {"levels": levels, "radius": radius}
            self.quantiles = conformal.interval_quantiles(levels)
        else:
            self.quantiles = self.net_quantiles
        self.point_index = _median_index(self.quantiles)

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def describe(self) -> dict:
        """What the model is, for people and ``/metadata``: its members (the median of them is
        the forecast), seasons and how its intervals are made."""
        members = self.net_config.get("members", [self.net_config])
        kinds = self.net_config.get("kinds") or ["rnn"] * len(members)
        return {
            "combine": "median" if len(members) > 1 else "single network",
            "members": [{"kind": k, "input_size": m.get("input_size"), "lags": m.get("lags", []),
                         "segment": m.get("segment", 0), "base": m.get("base", "last"),
                         "hidden_size": m.get("hidden_size")}
                        for k, m in zip(kinds, members)],
            "seasons": self.seasons,
            "nonnegative": self.nonnegative,
            "intervals": ({"method": "split-conformal, calibrated on validation windows",
                           "levels": self.calibration["levels"]} if self.calibration else
                          {"method": "the network's quantile outputs", "quantiles": self.net_quantiles}),
        }

    @property
    def output_columns(self) -> list[str]:
        return ["y_hat", *(quantile_column(q) for q in self.quantiles)]

    # ----------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        safetensors.torch.save_file(state, str(path / WEIGHTS))
        config = {
            "format_version": FORMAT_VERSION,
            "net": self.net_config,
            "spec": self.spec.to_dict(),
            "quantiles": self.net_quantiles,
            "season_length": self.season_length,
            "seasons": self.seasons,
            "calibration": None if self.calibration is None else {
                "levels": self.calibration["levels"],
                "radius": self.calibration["radius"].tolist()},
            "nonnegative": self.nonnegative,
        }
        (path / CONFIG).write_text(json.dumps(config, indent=2))
        (path / SCALERS).write_text(json.dumps(self.scaler.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Forecaster":
        """The model of a folder ``save`` wrote (format 3, or 2 with ``weights.pt``).

        Raises:
            ModelFileError: a file is missing, unreadable, or does not fit the others; the
                message names the file and the cause.
        """
        path = Path(path)
        if not path.is_dir():
            raise ModelFileError(f"{path} is not a model folder (no such directory)")
        config = _read_json(path / CONFIG)
        version = config.get("format_version") if isinstance(config, dict) else None
        if version not in (2, FORMAT_VERSION):
            raise ModelFileError(f"{path / CONFIG} has format_version {version!r}; this "
                                 f"forecaster reads versions 2 and {FORMAT_VERSION}")
        state = _read_weights(path, version)
        try:
            net = build_net(config["net"])
            spec = FeatureSpec.from_dict(config["spec"])
            quantiles, season = config["quantiles"], config["season_length"]
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path / CONFIG} does not describe a network: "
                                 f"{type(err).__name__}: {err}") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            raise ModelFileError(
                f"the weights in {path / (WEIGHTS if version >= 3 else WEIGHTS_V2)} do not fit "
                f"the network {path / CONFIG} describes: {' '.join(first[:3])}") from None
        try:
            scaler = SeriesScaler.from_dict(_read_json(path / SCALERS))
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelFileError(f"{path / SCALERS} does not describe the scalers: "
                                 f"{type(err).__name__}: {err}") from None
        return cls(net, config["net"], spec, scaler, quantiles, season,
                   config.get("seasons", ()), config.get("calibration"),
                   bool(config.get("nonnegative", False)))

    # ----------------------------------------------------------------------------- predict
    @torch.inference_mode()
    def predict_batch(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Original-scale forecasts ``[B, H, Q]`` for a batch of the data contract.

        A series' forecast does not depend on the batch it comes in, to the float32 bit: CPU
        matrix products of fewer than a few rows (per thread) take another kernel, whose sums
        round differently, so a batch is padded (with copies of its last window) to whole
        blocks of ``MIN_ROWS`` rows per thread. One request, a chunk of a batch job and a
        whole panel in one call then give the same numbers.
        """
        B = batch["x"].shape[0]
        block = MIN_ROWS * torch.get_num_threads()  # each thread's share: whole blocks of rows
        padded = -(-B // block) * block
        if B and padded != B:
            batch = {k: None if v is None else
                     torch.cat([v, v[-1:].expand(padded - B, *v.shape[1:])])
                     for k, v in batch.items()}
        out = self.net(batch["x"], batch["futr"], batch["static"])  # [B, H, Q] scaled
        if self.calibration is not None:
            point = out[..., self.net_point_index]  # [B, H]
            s = window_scale(batch["x"][..., 0])[:, 0]  # [B], the unit of the radii
            out = torch.from_numpy(conformal.apply(
                point.numpy(), s.numpy(), self.calibration["levels"], self.calibration["radius"],
            ).astype(np.float32))  # [B, H, Q]
        out = out * batch["scale"][:, None, None] + batch["loc"][:, None, None]
        if self.nonnegative:
            out = torch.where(_never_negative(batch)[:, None, None], out.clamp_min(0), out)
        values = out.numpy()[:B]
        if not np.isfinite(values).all():
            raise NonFiniteForecastError(
                "the model produced a non-finite forecast (NaN or infinity); the input may be "
                "far outside the training range"
            )
        return values

    def predict(self, df: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """Forecast the next ``horizon`` steps of every series in a long frame.

        The frame is validated and turned into per-series arrays by ``inference_batch``, which
        builds the batch with the same array core as :meth:`predict_arrays`.

        Args:
            df: history as a long frame (``unique_id``, ``ds``, ``y`` [+ covariates]); rows after
                the history with ``y`` missing carry known-future covariates for the horizon.
            horizon: steps to return, at most the model's horizon (default: the model's).

        Returns:
            A long frame ``unique_id``, ``ds``, ``y_hat`` (+ ``y_q10``... for quantile models).
        """
        horizon = self._check_horizon(horizon)
        batch, ids, future_ds = inference_batch(df, self.spec, horizon=self.horizon,
                                                scaler=self.scaler)
        values = self.predict_batch(batch)[:, :horizon]  # [B, h, Q]
        return self.to_frame(values, ids, [ds[:horizon] for ds in future_ds])

    def predict_arrays(
        self,
        y: np.ndarray,
        offsets: np.ndarray,
        ids: Sequence[str],
        *,
        horizon: int | None = None,
        ds: np.ndarray | None = None,
        freq: str | int | None = None,
        exog: np.ndarray | None = None,
        futr_exog: np.ndarray | None = None,
        static: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[str], np.ndarray | None]:
        """Forecasts of series given as flat arrays: the fast path of the service.

        Same numbers as :meth:`predict` on the equivalent frame (both build the batch with
        ``batch_from_arrays``), without pandas for a model without calendar features.

        Args:
            y: [N] finite history values, series after series, oldest first.
            offsets: int [S+1]; series ``s`` is ``y[offsets[s]:offsets[s+1]]`` (>= input_size).
            ids: S series ids; ids the training scaler knows use its stats.
            horizon: steps to return, at most the model's horizon (default: the model's).
            ds: [N] time stamps of the history (needed for calendar features and future_ds).
            freq: frequency of ``ds`` (default: the model's).
            exog: [N, K] raw history values of the known-future exogenous columns.
            futr_exog: [S, H, K] raw values of those columns over the model's horizon H.
            static: [S, n_static] static features.

        Returns:
            ``(values, ids, future_ds)``: forecasts float32 [S, h, Q] (point forecast at
            ``point_index``), the ids in the order given, future time stamps [S, h] or ``None``.

        Raises:
            DataValidationError: an input breaks a rule (too short, non-finite...).
            NonFiniteForecastError: the network produced NaN or infinity.
        """
        horizon = self._check_horizon(horizon)
        batch, ids, future_ds = batch_from_arrays(
            y, offsets, ids, self.spec, horizon=self.horizon, scaler=self.scaler, ds=ds,
            freq=freq, exog=exog, futr_exog=futr_exog, static=static)
        values = self.predict_batch(batch)[:, :horizon]  # [S, h, Q]
        return values, ids, None if future_ds is None else future_ds[:, :horizon]

    def to_frame(self, values: np.ndarray, ids: Sequence[str], future_ds) -> pd.DataFrame:
        """Long output frame from ``values`` ``[B, h, Q]``."""
        B, h, Q = values.shape
        frame = {"unique_id": np.repeat(np.asarray(ids, dtype=object), h),
                 "ds": np.concatenate([np.asarray(ds) for ds in future_ds]),
                 "y_hat": values[:, :, self.point_index].reshape(-1)}
        for k, q in enumerate(self.quantiles):
            frame[quantile_column(q)] = values[:, :, k].reshape(-1)
        return pd.DataFrame(frame)

    def _check_horizon(self, horizon: int | None) -> int:
        if horizon is None:
            return self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
            raise ValueError(f"horizon must be an integer, got {horizon!r}")
        if not 1 <= horizon <= self.horizon:
            raise ValueError(
                f"horizon must be between 1 and the model's horizon {self.horizon}, got {horizon}"
            )
        return int(horizon)


def _never_negative(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B]``: whether each window's target never went below zero, in the series' units (a
    zero that the scaler's round trip leaves a rounding error below zero still counts)."""
    y = batch["x"][..., 0] * batch["scale"][:, None] + batch["loc"][:, None]  # [B, L]
    tolerance = 1e-5 * (batch["scale"].abs() + batch["loc"].abs())[:, None]
    return (y >= -tolerance).all(1)
