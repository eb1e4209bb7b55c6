"""Parsing and validation of a request's series against the served model's rules: every
failure is a ``FieldError`` naming the field (``loc``), the rule and what is needed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.data.features import future_grid
from forecaster.data.frames import DataValidationError, parse_timestamps, same_freq, series_freq
from forecaster.serving.schemas import clip, detail, error_body

_ORIGIN = pd.Timestamp("2000-01-01")  # ds of a history sent without timestamps (not returned)


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


class Rules:
    """The model-dependent rules of a request (a mixin of ``ServedModel``: it reads the model's
    ``input_size``, ``horizon``, ``freq``, ``calendar``, ``futr_exog`` and ``max_length``)."""

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
