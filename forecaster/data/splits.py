"""Time-ordered train / validation / test windows per series, with no leakage.

Each series of length ``n`` is cut into training rows ``[0, n - val_size - test_size)``,
validation rows ``[n - val_size - test_size, n - test_size)`` and test rows
``[n - test_size, n)``. A window belongs to the split that holds all of its targets; its inputs
may reach back into earlier splits (the standard protocol). Windows are anchored at the end of
each split and step back by ``stride``, so the latest data is always used. Scalers are fitted on
training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecaster.data.features import FeatureSpec
from forecaster.data.frames import DataValidationError, same_freq, series_offsets, validate_frame
from forecaster.data.scalers import SeriesScaler
from forecaster.data.windows import Panel, WindowDataset


@dataclass
class Datasets:
    """What :func:`build_datasets` returns.

    Attributes:
        train, val, test: windows whose targets lie in each split (``val``/``test`` may be empty).
        panel: the panel all three read.
        scaler: scaler fitted on training rows (save it with the model).
        freq: inferred frequency of ``ds``.
        fill_report: values filled per series (see :func:`~forecaster.data.validate_frame`).
        spec: the spec used, with ``freq`` set.
    """

    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    panel: Panel
    scaler: SeriesScaler
    freq: str | int
    fill_report: dict[str, int]
    spec: FeatureSpec
    left_out: tuple[str, ...] = ()  # series too short for one window of each split (drop_short)


def split_windows(
    start: np.ndarray, end: np.ndarray, input_size: int, horizon: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose targets lie in rows ``[start[s], end[s])`` of each series.

    The last window of a series ends at ``end[s]``; the others step back by ``stride`` while
    their targets stay in the range and their inputs inside the series (``t >= input_size``).

    Args:
        start, end: int [S] bounds of the target range of each series (positions in the series).
        input_size: ``L``.
        horizon: ``H``.
        stride: steps between consecutive windows of a series.

    Returns:
        ``(series, t)`` int64 [W], windows ordered by series, then time.
    """
    first = np.maximum(start, input_size)  # [S] earliest allowed first-target position
    last = end - horizon  # [S] latest one
    counts = np.where(last >= first, (last - first) // stride + 1, 0)  # [S]
    series = np.repeat(np.arange(len(counts), dtype=np.int64), counts)  # [W]
    # Window k of series s (k = w - first window index of s) starts at earliest[s] + k * stride.
    earliest = last - (counts - 1) * stride  # [S]
    first_window = np.cumsum(counts) - counts  # [S]
    t = np.arange(counts.sum(), dtype=np.int64) * stride + np.repeat(earliest - first_window * stride, counts)
    return series, t  # [W], [W]


def build_datasets(
    df: pd.DataFrame,
    spec: FeatureSpec,
    *,
    val_size: int,
    test_size: int,
    stride: int = 1,
    fill: str | None = None,
    scaler: SeriesScaler | None = None,
    drop_short: bool = False,
) -> Datasets:
    """Validates a long frame and cuts it into train / validation / test windows.

    Args:
        df: long frame (``unique_id``, ``ds``, ``y`` and the spec's covariate columns).
        spec: feature specification; a set ``spec.freq`` must match the data's.
        val_size: validation steps at the end of each series (before the test steps);
            0 or at least ``horizon``.
        test_size: test steps at the end of each series; 0 or at least ``horizon``.
        stride: steps between consecutive windows of a series, in every split.
        fill: NaN/inf policy for ``y`` (see :func:`~forecaster.data.validate_frame`).
        scaler: a scaler already fitted on every series' training rows (sharded data: fitted
            in one pass over the shards, while ``df`` holds only the series' tails); default:
            fitted here on the training rows of ``df``.
        drop_short: leave out the series shorter than one window of each split (named in
            ``left_out``) instead of refusing the frame; it is refused only when every series
            is that short.

    Returns:
        The three window sets, their panel, the scaler fitted on training rows, the frequency,
        the fill report and the spec with ``freq`` set.

    Raises:
        DataValidationError: the frame breaks a rule, or a series is shorter than
            ``input_size + horizon + val_size + test_size`` (one training window plus the splits).
        ValueError: a size or the stride is out of range.
    """
    L, H = spec.input_size, spec.horizon
    for name, size in (("val_size", val_size), ("test_size", test_size)):
        if size != 0 and size < H:
            raise ValueError(f"{name} must be 0 or at least horizon {H} (one full window), got {size}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    left_out: tuple[str, ...] = ()
    if drop_short and "unique_id" in df.columns:
        sizes = df.groupby("unique_id", sort=False, observed=True).size()
        short = sizes.index[sizes < L + H + val_size + test_size]
        if 0 < len(short) < len(sizes):  # all short: validate_frame names the first
            df = df[~df["unique_id"].isin(short)]
            left_out = tuple(sorted(str(i) for i in short))
    clean, freq, fill_report = validate_frame(
        df,
        min_length=L + H + val_size + test_size,
        fill=fill,
        futr_exog=spec.futr_exog,
        static_cols=spec.static_cols,
        length_rule=f"input_size {L} + horizon {H} + val_size {val_size} + test_size {test_size}",
    )
    if spec.freq is not None and not same_freq(spec.freq, freq, at=clean["ds"].to_numpy()):
        raise DataValidationError(f"column 'ds': frequency {freq!r} differs from spec.freq {spec.freq!r}")
    spec = replace(spec, freq=freq)
    lengths = np.diff(series_offsets(clean)[1])
    val_start = lengths - val_size - test_size  # [S] also the number of training rows
    test_start = lengths - test_size
    if scaler is None:
        scaler = SeriesScaler(spec.scaler).fit_frame(clean, val_start, spec.futr_exog)
    panel = Panel.from_frame(clean, spec, scaler)
    zeros = np.zeros_like(lengths)
    return Datasets(
        train=WindowDataset(panel, spec, *split_windows(zeros, val_start, L, H, stride)),
        val=WindowDataset(panel, spec, *split_windows(val_start, test_start, L, H, stride)),
        test=WindowDataset(panel, spec, *split_windows(test_start, lengths, L, H, stride)),
        panel=panel,
        scaler=scaler,
        freq=freq,
        fill_report=fill_report,
        spec=spec,
        left_out=left_out,
    )
