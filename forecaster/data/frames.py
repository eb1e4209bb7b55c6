"""Long frames: loading, sorting, frequency inference and validation.

The input contract is a long pandas frame with one row per (series, time step):
``unique_id`` (series name), ``ds`` (datetime-like or integer time index), ``y`` (target) and
optional numeric covariates. Every rule broken raises :class:`DataValidationError` whose message
names the column, the series and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pandas.tseries.frequencies import to_offset

from forecaster.errors import UsageError

FILL_POLICIES = ("interpolate", "ffill")


class DataValidationError(UsageError, ValueError):
    """A frame breaks a rule of the input contract.

    The message names the column, the series (where one is at fault) and the rule.
    """


def load_frame(
    path: str | Path,
    *,
    wide: bool = False,
    time_col: str = "ds",
    id_col: str = "unique_id",
    target_col: str = "y",
) -> pd.DataFrame:
    """Reads a CSV or Parquet file (chosen by suffix) into a long frame.

    Long files keep every column; ``time_col``, ``id_col`` and ``target_col`` are renamed to
    ``ds``, ``unique_id`` and ``y``. A long file without ``id_col`` holds one series, named after
    the file stem (``sales.csv`` -> ``"sales"``). A wide file has ``time_col`` plus one column
    per series (the column name becomes ``unique_id``); its rows are taken in file order and the
    empty cells before a series starts and after it ends are padding, dropped, so series of
    different lengths can share a file. Values are not parsed or checked here: see
    :func:`validate_frame`.

    Args:
        path: ``.csv`` or ``.parquet`` file.
        wide: read the wide layout instead of the long one.
        time_col: name of the time column in the file.
        id_col: name of the series-id column in a long file.
        target_col: name of the target column in a long file.

    Returns:
        Long frame with columns ``unique_id``, ``ds``, ``y`` and any others of a long file.

    Raises:
        DataValidationError: the time or target column is missing.
        ValueError: the suffix is neither ``.csv`` nor ``.parquet``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = pd.read_csv(path)
    elif suffix in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    else:
        raise ValueError(f"{path.name}: unsupported suffix {suffix!r}; expected .csv or .parquet")
    if time_col not in raw.columns:
        raise DataValidationError(f"column {time_col!r} (time) is missing from {path.name}")
    if wide:
        return _melt_wide(raw, time_col, path.name)
    if target_col not in raw.columns:
        raise DataValidationError(f"column {target_col!r} (target) is missing from {path.name}")
    frame = raw.rename(columns={time_col: "ds", target_col: "y", id_col: "unique_id"})
    if "unique_id" not in frame.columns:
        frame.insert(0, "unique_id", path.stem)
    return frame


def _melt_wide(raw: pd.DataFrame, time_col: str, name: str) -> pd.DataFrame:
    """Turns a wide frame (time column + one column per series) into a long one."""
    series_cols = [c for c in raw.columns if c != time_col]
    if not series_cols:
        raise DataValidationError(f"{name}: a wide file needs series columns besides {time_col!r}")
    long = raw.melt(id_vars=time_col, value_vars=series_cols, var_name="unique_id", value_name="y")
    long = long.rename(columns={time_col: "ds"})[["unique_id", "ds", "y"]]
    long["unique_id"] = long["unique_id"].astype(str)
    # melt stacks the series one after another in file order: padding is the run of empty
    # cells before the first and after the last value of each block.
    seen = long["y"].notna().to_numpy().reshape(len(series_cols), len(raw))  # [S, T]
    started = np.maximum.accumulate(seen, axis=1)
    not_ended = np.maximum.accumulate(seen[:, ::-1], axis=1)[:, ::-1]
    return long[(started & not_ended).ravel()].reset_index(drop=True)


def sort_frame(
    df: pd.DataFrame, *, futr_exog: Sequence[str] = (), static_cols: Sequence[str] = ()
) -> tuple[pd.DataFrame, list[str], np.ndarray, str | int]:
    """Checks columns, parses ``ds``, sorts by (``unique_id``, ``ds``) and infers the frequency.

    Missing values of ``y`` are allowed here (future rows of an inference request carry none);
    :func:`validate_frame` adds the checks on values.

    Args:
        df: long frame.
        futr_exog: known-future exogenous columns that must be present and numeric.
        static_cols: static columns that must be present and numeric.

    Returns:
        ``(frame, ids, offsets, freq)``: the frame restricted to ``unique_id``, ``ds``, ``y``
        and the named columns, sorted, with ``unique_id`` as str, ``ds`` as datetime64[ns] or
        int64 and numeric columns as float64; the sorted series ids; int64 ``offsets`` [S+1]
        (rows of series ``s`` are ``offsets[s]:offsets[s+1]``); the frequency (a pandas offset
        alias, or the integer step for integer ``ds``).

    Raises:
        DataValidationError: a rule of the input contract is broken.
    """
    columns = ["unique_id", "ds", "y", *futr_exog, *static_cols]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"column {missing[0]!r} is missing (required columns: {columns}); got {list(df.columns)}"
        )
    if df["unique_id"].isna().any():
        row = int(np.flatnonzero(df["unique_id"].isna().to_numpy())[0])
        raise DataValidationError(f"column 'unique_id' has a missing value (row {row})")
    uid = df["unique_id"].astype(str)
    codes, uniques = pd.factorize(uid, sort=True)
    ids = [str(u) for u in uniques]
    ds = _parse_ds(df["ds"], uid)
    values = {c: _numeric(df[c], c, uid) for c in ["y", *futr_exog, *static_cols]}

    key = ds.view(np.int64)
    step_code = np.diff(codes)
    step_ds = np.diff(key)
    if not np.all((step_code > 0) | ((step_code == 0) & (step_ds > 0))):
        order = np.lexsort((key, codes))
        codes, ds, key = codes[order], ds[order], key[order]
        uid = uid.iloc[order]
        values = {c: v[order] for c, v in values.items()}
        step_code, step_ds = np.diff(codes), np.diff(key)
    duplicate = (step_code == 0) & (step_ds == 0)
    if duplicate.any():
        i = int(np.argmax(duplicate))
        raise DataValidationError(
            f"columns ('unique_id', 'ds'): series {ids[codes[i]]!r} has duplicate rows at ds={ds[i]}"
        )
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(ids)))]).astype(np.int64)
    freq = _infer_freq(ds, step_ds, codes, ids, offsets)
    frame = pd.DataFrame({"unique_id": uid.reset_index(drop=True), "ds": ds, **values})
    return frame, ids, offsets, freq


def _parse_ds(ds: pd.Series, uid: pd.Series) -> np.ndarray:
    """``ds`` as int64 (integer index) or datetime64[ns] (:func:`parse_timestamps`)."""
    if ds.isna().any():
        row = int(np.flatnonzero(ds.isna().to_numpy())[0])
        raise DataValidationError(f"column 'ds': series {uid.iloc[row]!r} has a missing time stamp")
    if ptypes.is_bool_dtype(ds):
        raise DataValidationError("column 'ds' holds booleans; expected datetimes or integers")
    if ptypes.is_integer_dtype(ds):
        return ds.to_numpy(np.int64)
    if ptypes.is_float_dtype(ds):
        values = ds.to_numpy(np.float64)
        if not np.all(values == np.round(values)):
            raise DataValidationError("column 'ds' holds non-integer numbers; expected datetimes or integers")
        return values.astype(np.int64)
    try:
        return parse_timestamps(ds, iso=False)
    except DataValidationError as err:
        raise DataValidationError(f"column 'ds' {err}") from None


def parse_timestamps(values, *, iso: bool = True) -> np.ndarray:
    """The one timestamp parser (training frames, the pyfunc model, HTTP requests).

    Time-zone-aware values are converted to UTC and their zone dropped, on every path: a model
    sees UTC wall time (calendar hours of ``+02:00`` stamps are their UTC hours), and series
    whose offsets change (daylight saving) stay evenly spaced. Naive values are taken as they
    are. Mixing aware and naive values is an error: their order would be a guess.

    Args:
        values: datetime-likes or strings (a list, array, Series or index).
        iso: strings must be ISO-8601 (requests); ``False`` lets pandas infer the format (files).

    Returns:
        datetime64[ns] array [N], naive (UTC for aware input).

    Raises:
        DataValidationError: a value does not parse, or aware and naive values are mixed; the
            message starts with the rule (the caller prefixes the field).
    """
    fmt = "ISO8601" if iso else None
    try:
        parsed = pd.DatetimeIndex(pd.to_datetime(values, format=fmt))
    except (ValueError, TypeError, OverflowError) as err:
        if _mixes_aware_and_naive(values):
            raise DataValidationError("mixes time-zone-aware and naive timestamps; give every "
                                      "timestamp a UTC offset, or none") from None
        if "Mixed timezones" not in str(err):  # several offsets (daylight saving) are fine
            rule = "ISO-8601 date-times" if iso else "datetimes"
            raise DataValidationError(f"cannot be parsed as {rule}: {err}") from None
        parsed = pd.DatetimeIndex(pd.to_datetime(values, format=fmt, utc=True))
    if parsed.tz is not None:
        parsed = parsed.tz_convert("UTC").tz_localize(None)
    return parsed.as_unit("ns").to_numpy()


def _mixes_aware_and_naive(values) -> bool:
    """Whether some values carry a UTC offset and others not (only asked once parsing failed)."""
    aware = set()
    for v in values:
        try:
            aware.add(pd.Timestamp(v).tzinfo is not None)
        except (ValueError, TypeError, OverflowError):
            continue
        if len(aware) > 1:
            return True
    return False


def _numeric(column: pd.Series, name: str, uid: pd.Series) -> np.ndarray:
    """A column as float64; a non-numeric value raises, naming its series."""
    if ptypes.is_numeric_dtype(column):
        return column.to_numpy(np.float64, na_value=np.nan)
    coerced = pd.to_numeric(column, errors="coerce")
    bad = (coerced.isna() & column.notna()).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataValidationError(
            f"column {name!r} must be numeric: series {uid.iloc[row]!r} has {column.iloc[row]!r}"
        )
    return coerced.to_numpy(np.float64, na_value=np.nan)


def _infer_freq(
    ds: np.ndarray, steps: np.ndarray, codes: np.ndarray, ids: list[str], offsets: np.ndarray
) -> str | int:
    """One frequency for the whole panel, checked between every pair of consecutive rows.

    ``steps`` [N-1] are the differences of consecutive ``ds`` as int64 (ns for datetimes).
    """
    same = codes[1:] == codes[:-1]  # [N-1] consecutive rows of one series
    if not same.any():
        raise DataValidationError("column 'ds': no frequency can be inferred, every series has one row")
    step = steps[np.argmax(same)]
    unequal = same & (steps != step)

    def irregular(bad: np.ndarray, expected: object) -> DataValidationError:
        i = int(np.argmax(bad))
        return DataValidationError(
            f"column 'ds': irregular spacing in series {ids[codes[i]]!r}: {ds[i]} is followed by "
            f"{ds[i + 1]}, expected a step of {expected}"
        )

    if ds.dtype.kind == "i":
        if unequal.any():
            raise irregular(unequal, int(step))
        return int(step)
    if not unequal.any():
        return _tick_alias(pd.Timedelta(int(step), "ns"))
    # Unequal steps can still be one calendar frequency (months, quarters, years): infer it on
    # the first series long enough, then check that every step of every series is that offset.
    lengths = np.diff(offsets)
    if not (lengths >= 3).any():
        raise irregular(unequal, pd.Timedelta(int(step), "ns"))
    first = int(np.argmax(lengths >= 3))
    alias = series_freq(ds[offsets[first] : offsets[first + 1]])
    if alias is None:
        seg = slice(offsets[first], offsets[first + 1] - 1)
        bad = np.zeros_like(same)
        bad[seg] = steps[seg] != steps[offsets[first]]
        raise irregular(bad, pd.Timedelta(int(steps[offsets[first]]), "ns"))
    offset = to_offset(alias)
    expected = (pd.DatetimeIndex(ds[:-1]) + offset).as_unit("ns").to_numpy()
    bad = same & (ds[1:] != expected)
    if bad.any():
        raise irregular(bad, alias)
    return offset.freqstr


def series_freq(ds: np.ndarray) -> str | None:
    """The frequency of one series' increasing datetime64 stamps, named as panels name it.

    Fixed steps are named by their length (``"h"``, ``"D"``, ``"7D"``: weekly dates are ``7D``
    whatever their weekday); uneven calendar steps (months, business days) as pandas infers them.

    Returns:
        The offset alias, or ``None`` when the stamps are not evenly spaced at any frequency
        (or fewer than two).
    """
    if len(ds) < 2:
        return None
    steps = np.diff(np.asarray(ds).view(np.int64))  # [N-1] ns
    if (steps == steps[0]).all():
        return _tick_alias(pd.Timedelta(int(steps[0]), "ns"))
    if len(ds) < 3:
        return None
    alias = pd.infer_freq(pd.DatetimeIndex(ds))
    return None if alias is None else to_offset(alias).freqstr


def _tick_alias(step: pd.Timedelta) -> str:
    """Offset alias of a fixed step; whole days as ``"D"``/``"7D"`` (pandas would say ``"24h"``)."""
    days, rest = divmod(step, pd.Timedelta(days=1))
    if rest == pd.Timedelta(0):
        return "D" if days == 1 else f"{days}D"
    return to_offset(step).freqstr


# Aliases of older pandas versions, which a saved model may carry, to those of pandas >= 2.2.
_LEGACY_ALIASES = {"H": "h", "T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns", "M": "ME",
                   "BM": "BME", "SM": "SME", "CBM": "CBME", "Q": "QE", "BQ": "BQE", "A": "YE",
                   "Y": "YE", "BA": "BYE", "BY": "BYE", "AS": "YS", "BAS": "BYS"}
_ALIAS = re.compile(r"^(?P<n>[+-]?\d*)(?P<base>[A-Za-z]+)(?P<anchor>-[A-Za-z]+)?$")


def to_offset_any(freq: str) -> pd.DateOffset:
    """``to_offset`` that also reads the aliases of older pandas (``H``, ``T``, ``M``, ``Q``,
    ``A``...), which pandas 3 rejects."""
    try:
        return to_offset(freq)
    except ValueError:
        m = _ALIAS.match(freq.strip())
        if not m or m["base"] not in _LEGACY_ALIASES:
            raise
        return to_offset(f"{m['n']}{_LEGACY_ALIASES[m['base']]}{m['anchor'] or ''}")


def same_freq(a: str | int, b: str | int, at=None) -> bool:
    """The one frequency comparison: whether two frequencies step the same way.

    Equal offsets are the same (``h``/``H``/``60min``, ``ME``/``M``, ``QS``/``QS-JAN``). Offsets
    that differ in general can agree on given timestamps (``W-SAT`` and ``7D`` from Saturdays:
    the CO2 model is trained at ``7D`` on Saturday dates, which pandas names ``W-SAT``). With
    ``at``, they are the same when one step of each lands on the same time from every
    timestamp of ``at``.

    Args:
        a, b: offset aliases, or integer steps (integer time indexes).
        at: timestamps (datetime64 array or index) the frequencies step from.

    Returns:
        Whether ``a`` and ``b`` are the same step (at ``at``).
    """
    if isinstance(a, str) != isinstance(b, str):
        return False
    if not isinstance(a, str):
        return a == b
    oa, ob = to_offset_any(a), to_offset_any(b)
    if oa == ob:
        return True
    if at is None or len(at) == 0:
        return False
    at = pd.DatetimeIndex(at)
    return bool(((at + oa) == (at + ob)).all())


def validate_frame(
    df: pd.DataFrame,
    *,
    min_length: int,
    fill: str | None = None,
    futr_exog: Sequence[str] = (),
    static_cols: Sequence[str] = (),
    length_rule: str = "",
) -> tuple[pd.DataFrame, str | int, dict[str, int]]:
    """Validates a long frame and returns it sorted, typed and (optionally) filled.

    Rules: the columns exist; ``y``, ``futr_exog`` and ``static_cols`` are numeric; no duplicate
    (``unique_id``, ``ds``); ``ds`` parses (datetime-like strings or integers) and every series
    steps by one shared frequency; every series has at least ``min_length`` rows; ``y`` is finite
    unless ``fill`` is set; known-future exogenous values are finite; static columns are constant
    within each series. Unsorted input is sorted, not rejected.

    Args:
        df: long frame (``unique_id``, ``ds``, ``y`` and optional covariates).
        min_length: fewest rows (time steps) a series may have.
        fill: ``None`` (NaN/inf in ``y`` is an error), ``"interpolate"`` (linear in the position,
            the first/last finite value carried to the edges) or ``"ffill"`` (last finite value
            carried forward; leading gaps take the first finite value).
        futr_exog: known-future exogenous columns.
        static_cols: static per-series columns.
        length_rule: how ``min_length`` was computed, quoted in the error message,
            e.g. ``"input_size 24 + horizon 12"``.

    Returns:
        ``(clean, freq, fill_report)``: the frame of :func:`sort_frame`; the frequency (offset
        alias or integer step); the number of values filled per series, for the series where
        at least one was.

    Raises:
        DataValidationError: a rule is broken.
        ValueError: ``fill`` is not a known policy.
    """
    if fill is not None and fill not in FILL_POLICIES:
        raise ValueError(f"fill must be None or one of {FILL_POLICIES}, got {fill!r}")
    clean, ids, offsets, freq = sort_frame(df, futr_exog=futr_exog, static_cols=static_cols)
    lengths = np.diff(offsets)
    short = np.flatnonzero(lengths < min_length)
    if short.size:
        s = int(short[0])
        rule = f" ({length_rule})" if length_rule else ""
        others = f"; {short.size - 1} more series are too short" if short.size > 1 else ""
        raise DataValidationError(
            f"column 'y': series {ids[s]!r} has {lengths[s]} points but at least {min_length} are "
            f"needed{rule}{others}"
        )
    series = np.repeat(np.arange(len(ids)), lengths)  # [N] series index of each row
    y = clean["y"].to_numpy()
    missing = ~np.isfinite(y)
    report: dict[str, int] = {}
    if missing.any():
        if fill is None:
            i = int(np.argmax(missing))
            count = int(missing[series == series[i]].sum())
            raise DataValidationError(
                f"column 'y': series {ids[series[i]]!r} has {count} NaN/inf values (first at "
                f"ds={clean['ds'].iloc[i]}); pass fill='interpolate' or fill='ffill' to fill them"
            )
        y = y.copy()
        for s in np.unique(series[missing]):
            lo, hi = offsets[s], offsets[s + 1]
            y[lo:hi] = _fill_gaps(y[lo:hi], fill, ids[s])
            report[ids[s]] = int(missing[lo:hi].sum())
        clean["y"] = y
    for col in futr_exog:
        bad = ~np.isfinite(clean[col].to_numpy())
        if bad.any():
            s = series[int(np.argmax(bad))]
            raise DataValidationError(
                f"column {col!r} (futr_exog): series {ids[s]!r} has {int(bad[series == s].sum())} "
                "NaN/inf values; known-future exogenous values must be finite"
            )
    for col in static_cols:
        values = clean[col].to_numpy()
        bad = values != values[offsets[:-1]][series]  # NaN != NaN flags missing values too
        if bad.any():
            s = series[int(np.argmax(bad))]
            raise DataValidationError(
                f"column {col!r} (static_cols) must be constant within a series; series {ids[s]!r} "
                "has several values"
            )
    return clean, freq, report


def _fill_gaps(y: np.ndarray, fill: str, series_id: str) -> np.ndarray:
    """Fills the NaN/inf of one series by ``fill`` (see :func:`validate_frame`)."""
    ok = np.isfinite(y)
    if not ok.any():
        raise DataValidationError(f"column 'y': series {series_id!r} has no finite value to fill from")
    pos = np.arange(len(y))
    if fill == "interpolate":
        return np.interp(pos, pos[ok], y[ok])
    last_ok = np.maximum.accumulate(np.where(ok, pos, -1))
    return y[np.where(last_ok < 0, np.argmax(ok), last_ok)]


def series_offsets(clean: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Series ids and row offsets of a frame sorted by :func:`validate_frame`.

    Args:
        clean: frame whose rows are grouped by ``unique_id``.

    Returns:
        ``(ids, offsets)``: ids in row order and int64 offsets [S+1].

    Raises:
        ValueError: the rows of a series are not contiguous.
    """
    uid = clean["unique_id"]
    starts = np.flatnonzero(uid.ne(uid.shift()).to_numpy())
    ids = [str(u) for u in uid.iloc[starts]]
    if len(set(ids)) != len(ids):
        raise ValueError("rows of a series are not contiguous; pass the frame through validate_frame")
    return ids, np.append(starts, len(uid)).astype(np.int64)
