"""Inference batches: the last input_size rows of each series and its known-future features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.data import DataValidationError, FeatureSpec, build_datasets, inference_batch
from forecaster.data.inference import batch_from_arrays

from .synthetic import long_frame

SPEC = FeatureSpec(6, 3, calendar=("hour",), futr_exog=("price",))


def frame_with_future(n_future=3):
    """Two series with prices; the last ``n_future`` rows of each have y NaN (future rows)."""
    df = long_frame((20, 25)).assign(price=lambda d: np.arange(len(d), dtype=float))
    future = df.groupby("unique_id").cumcount(ascending=False) < n_future
    df.loc[future, "y"] = np.nan
    return df


def test_batch_holds_last_inputs_and_future_features():
    df = frame_with_future()
    batch, ids, future_ds = inference_batch(df, SPEC)
    assert ids == ["s0", "s1"] and "y" not in batch
    assert batch["x"].shape == (2, 6, SPEC.n_features) and batch["futr"].shape == (2, 3, SPEC.n_futr)
    assert batch["t"].tolist() == [17, 22] and batch["series"].tolist() == [0, 1]
    history = df[df["y"].notna()]
    last = history.groupby("unique_id").tail(6)["y"].to_numpy().reshape(2, 6)
    restored = batch["x"][..., 0].numpy() * batch["scale"].numpy()[:, None] + batch["loc"].numpy()[:, None]
    np.testing.assert_allclose(restored, last, rtol=1e-5)
    expected_ds = df[df["y"].isna()]["ds"].to_numpy().reshape(2, 3)
    np.testing.assert_array_equal(future_ds, expected_ds)
    hours = pd.DatetimeIndex(future_ds.ravel()).hour.to_numpy().reshape(2, 3)
    np.testing.assert_allclose(batch["futr"][..., 0].numpy(), hours / 23 - 0.5, rtol=1e-6)


def test_known_series_use_training_stats_and_unknown_ones_their_history():
    train = long_frame((40, 40)).assign(price=lambda d: np.arange(len(d), dtype=float))
    data = build_datasets(train, SPEC, val_size=3, test_size=3)
    new = frame_with_future().replace({"unique_id": {"s1": "new"}})
    batch, ids, _ = inference_batch(new, SPEC, scaler=data.scaler)
    assert ids == ["new", "s0"]
    assert batch["loc"][1] == data.scaler.loc[0] and batch["scale"][1] == data.scaler.scale[0]
    history = new[(new["unique_id"] == "new") & new["y"].notna()]["y"]
    np.testing.assert_allclose(batch["loc"][0], history.mean(), rtol=1e-5)
    # the price of the first future step of s0, standardised with the training stats
    price = new[(new["unique_id"] == "s0") & new["y"].isna()]["price"].iloc[0]
    expected = (price - data.scaler.exog_loc[0, 0]) / data.scaler.exog_scale[0, 0]
    np.testing.assert_allclose(batch["futr"][1, 0, 1], expected, rtol=1e-5)


def test_missing_future_exog_rows_name_column_and_series():
    df = frame_with_future(n_future=3)
    short = df.drop(index=df.index[-1])
    with pytest.raises(DataValidationError, match=r"column 'price' \(futr_exog\): series 's1' has 2 future rows"):
        inference_batch(short, SPEC)
    df.loc[df.index[-2], "price"] = np.nan
    with pytest.raises(DataValidationError, match=r"column 'price' \(futr_exog\): series 's1' lacks known-future"):
        inference_batch(df, SPEC)


def test_without_exog_future_rows_are_optional_and_horizon_may_differ():
    spec = FeatureSpec(4, 2, freq=2)
    batch, _, future_ds = inference_batch(long_frame((10,), integer=True), spec, horizon=5)
    assert batch["futr"].shape == (1, 5, 0)
    np.testing.assert_array_equal(future_ds, [[30, 32, 34, 36, 38]])


def test_history_rules_still_apply():
    with pytest.raises(DataValidationError, match=r"at least 6 are needed \(input_size 6\)"):
        inference_batch(long_frame((5,)), FeatureSpec(6, 3))
    with pytest.raises(DataValidationError, match="differs from spec.freq"):
        inference_batch(long_frame(), FeatureSpec(6, 3, freq="D"))
    df = long_frame()
    df.loc[df["unique_id"] == "s1", "y"] = np.nan
    with pytest.raises(DataValidationError, match="series 's1' has no observed value"):
        inference_batch(df, FeatureSpec(6, 3))


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(6, 3),
        FeatureSpec(6, 3, scaler="meanabs"),
        FeatureSpec(6, 3, calendar=("hour", "dayofweek")),
        FeatureSpec(6, 3, calendar=("hour",), futr_exog=("price",), static_cols=("size",)),
        FeatureSpec(6, 3, futr_exog=("price",), scaler="none"),
    ],
    ids=["plain", "meanabs", "calendar", "calendar+exog+static", "exog"],
)
@pytest.mark.parametrize("trained", [False, True], ids=["history-stats", "training-stats"])
def test_array_path_equals_frame_path(spec, trained):
    """The frame path is validation + the array core: the same batch, bit for bit."""
    df = frame_with_future().assign(size=lambda d: (d["unique_id"] == "s1").astype(float))
    df = df.replace({"unique_id": {"s1": "new"}})  # one series the training scaler lacks
    scaler = None
    if trained:
        train = long_frame((40, 40)).assign(price=lambda d: np.arange(len(d), dtype=float), size=0.0)
        scaler = build_datasets(train, spec, val_size=3, test_size=3).scaler
    expected, ids, future_ds = inference_batch(df, spec, scaler=scaler)

    history = df[df["y"].notna()].sort_values(["unique_id", "ds"])
    future = df[df["y"].isna()].sort_values(["unique_id", "ds"])
    lengths = history.groupby("unique_id", sort=True).size().to_numpy()
    exog = list(spec.futr_exog)
    batch, ids2, future_ds2 = batch_from_arrays(
        history["y"].to_numpy(),
        np.concatenate([[0], np.cumsum(lengths)]),
        sorted(df["unique_id"].unique()),
        spec,
        scaler=scaler,
        ds=history["ds"].to_numpy(),
        freq="h",
        exog=history[exog].to_numpy() if exog else None,
        futr_exog=future[exog].to_numpy().reshape(2, 3, len(exog)) if exog else None,
        static=history.groupby("unique_id", sort=True)[list(spec.static_cols)].first().to_numpy(),
    )
    assert ids2 == ids == ["new", "s0"]
    np.testing.assert_array_equal(future_ds2, future_ds)
    assert batch.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(batch[key], value), key
    if trained:  # s0 is known to the training scaler: its stats, not its history's
        assert batch["loc"][1] == scaler.loc[0] and batch["scale"][1] == scaler.scale[0]


def test_array_path_keeps_the_given_order_and_checks_its_inputs():
    spec = FeatureSpec(4, 2)
    y = np.arange(12, dtype=float)
    batch, ids, future_ds = batch_from_arrays(y, [0, 5, 12], ["b", "a"], spec)
    assert ids == ["b", "a"] and future_ds is None and batch["t"].tolist() == [5, 7]
    np.testing.assert_allclose(batch["loc"].numpy(), [2.0, 8.0])
    with pytest.raises(DataValidationError, match=r"series 'b' has 3 points but at least 4"):
        batch_from_arrays(y, [0, 3, 12], ["b", "a"], spec)
    with pytest.raises(DataValidationError, match=r"series 'a' has NaN/inf"):
        batch_from_arrays(np.r_[y[:11], np.nan], [0, 5, 12], ["b", "a"], spec)
    with pytest.raises(DataValidationError, match="calendar features"):
        batch_from_arrays(y, [0, 5, 12], ["b", "a"], FeatureSpec(4, 2, calendar=("hour",)))
