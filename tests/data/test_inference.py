"""Inference batches: the last input_size rows of each series and its known-future features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data import DataValidationError, FeatureSpec, build_datasets, inference_batch

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
