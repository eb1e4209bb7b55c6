"""Parsing and validation of a request's series against the served model's rules: every
failure is a ``FieldError`` naming the field (``loc``), the rule and what is needed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.data.features import future_grid
from forecaster.data.frames import DataValidationError, parse_timestamps, to_offset_any
from forecaster.serving.schemas import clip, detail, error_body

_EARLIEST, _LATEST = (f"{t:%Y-%m-%d}" for t in (pd.Timestamp.min.ceil("D"),
                                                  pd.Timestamp.max.floor("D")))
_ORIGIN = pd.Timestamp("2000-01-01")  # ds of a history sent without last_timestamp (not returned)


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
    future_ds: list[str] | None  # the forecast's stamps (when the request had last_timestamp)
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
            return self.horizon  # the series are still checked, against the model's horizon
        return horizon

    def check_series(self, id: str, values: Sequence[float], last_timestamp: str | None,
                     covariates: dict[str, Sequence[float]] | None,
                     future_covariates: dict[str, Sequence[float]] | None, horizon: int,
                     loc: tuple, errors: list[FieldError]) -> Series | None:
        """A request's series checked against the model's rules (each failure appended to
        ``errors``, naming its field), or ``None`` when it broke one.

        Covariates are aligned at the end, like the values: each covariate's history list holds
        its values at the latest steps of the history, and its future list the model's
        ``horizon`` steps after it. A history list longer than ``values`` starts earlier (its
        first items are not read); a shorter one covers only the latest values, and the
        forecast reads the history from where every covariate is known.
        """
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
        known = {}
        if self.futr_exog or covariates or future_covariates:
            self._check_covariates(covariates or {}, future_covariates or {}, loc, errors)
            if self.futr_exog and len(errors) == n_errors:  # aligned at the end
                n = min(n, *(len(covariates[name]) for name in self.futr_exog))
                values = values[len(values) - n:]
                known = {name: [*covariates[name][len(covariates[name]) - n:],
                                *future_covariates[name]] for name in self.futr_exog}
        ds, future = self._check_last_timestamp(last_timestamp, n, horizon, loc, errors)
        if len(errors) > n_errors:
            return None
        return Series(id, values, ds, future, known)

    def _check_covariates(self, history: dict, future: dict, loc: tuple,
                          errors: list[FieldError]) -> None:
        """The names and lengths of both covariate fields."""
        for field, given, low, high, what in (
                ("covariates", history, self.input_size, self.max_length,
                 f"at least the model's input_size {self.input_size} values, the latest steps "
                 "of the history's"),
                ("future_covariates", future, self.horizon, self.horizon,
                 f"the model's horizon {self.horizon} values, the forecast steps'")):
            unknown = sorted(set(given) - set(self.futr_exog))
            if unknown:
                named = ", ".join(repr(clip(u, 40)) for u in unknown[:5])
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                errors.append(FieldError((*loc, field), f"unknown covariates {named}{more}; "
                                         f"this model reads {self.futr_exog}", "extra_forbidden"))
            for name in self.futr_exog:
                if name not in given:
                    errors.append(FieldError((*loc, field, name), f"{field} {name!r} is "
                                             f"required: {what}", "missing"))
                elif not low <= len(given[name]) <= high:
                    got = len(given[name])
                    rule = (f"needs {what}" if got < low or low == high else f"may hold at most "
                            f"{high} values (FORECASTER_MAX_SERIES_LENGTH); send the latest ones")
                    errors.append(FieldError((*loc, field, name), f"{field} {name!r} {rule}, "
                                             f"got {got}", "wrong_length"))

    @functools.lru_cache(maxsize=64)
    def _synthetic_ds(self, n: int):
        if isinstance(self.freq, (int, np.integer)):  # integer time steps
            return pd.Index(np.arange(n, dtype=np.int64) * int(self.freq))
        return pd.date_range(_ORIGIN, periods=n, freq=self.freq or "D")

    def _check_last_timestamp(self, last: str | None, n: int, horizon: int, loc: tuple,
                              errors: list[FieldError]):
        """The values' times from the time of the last one: ``(ds [n], forecast stamps [h])``.

        The other values step back from ``last`` at the model's frequency, so a request cannot
        send times that disagree with its values. A time between two steps of an anchored
        frequency names the step whose period holds it: it rolls forward to a month, quarter or
        year end (``ME``) or to the week's day (``W-SAT``: weeks ending on Saturdays), and back
        to a month, quarter or year start (``MS``) or to the business day before (``B``).
        """
        loc = (*loc, "last_timestamp")
        if last is None:
            if self.calendar:
                errors.append(FieldError(loc, f"last_timestamp is required: the model derives "
                                         f"calendar features {self.calendar} from the values' "
                                         "times", "missing"))
                return None, None
            return self._synthetic_ds(n), None
        if not isinstance(self.freq, str):
            errors.append(FieldError(loc, "this model counts time in integer steps, not dates: "
                                     "send no last_timestamp", "extra_forbidden"))
            return None, None
        try:
            t = pd.Timestamp(parse_timestamps([last])[0])  # naive, UTC for an aware stamp
        except DataValidationError as err:
            errors.append(FieldError(loc, f"last_timestamp {err}", "datetime_parsing"))
            return None, None
        offset = to_offset_any(self.freq)
        if not offset.is_on_offset(t):  # the step whose period holds t
            ends = type(offset).__name__.endswith("End") or isinstance(offset, pd.offsets.Week)
            t = offset.rollforward(t) if ends else offset.rollback(t)
        try:
            ds = (pd.date_range(end=t, periods=n, freq=offset) if self.calendar
                  else self._synthetic_ds(n))  # the history's times are read for calendars only
            future = future_grid(np.array([t.to_datetime64()]), self.freq, horizon)[0]  # [h]
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            errors.append(FieldError(
                loc, f"{n} values and {horizon} forecast steps at the model's frequency "
                f"{self.freq!r} around {t} reach beyond the times the model can represent "
                f"({_EARLIEST} to {_LATEST}); send fewer values or a smaller horizon",
                "out_of_range"))
            return None, None
        # an aware request gets its forecast's stamps in UTC, marked so; a naive one, naive
        suffix = "+00:00" if _is_aware(last) else ""
        return ds, [ts.isoformat() + suffix for ts in pd.DatetimeIndex(future)]
