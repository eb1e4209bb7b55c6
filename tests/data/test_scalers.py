"""Per-series scalers: stats from training rows, zero-scale guard, exact JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.data import SeriesScaler

Y = np.array([1.0, 2.0, 3.0, 100.0, -4.0, -4.0, -4.0, 50.0])
OFFSETS = np.array([0, 4, 8])
TRAIN_END = np.array([3, 3])


def test_standard_uses_training_rows_only_and_guards_zero_scale():
    scaler = SeriesScaler("standard").fit(Y, OFFSETS, TRAIN_END, ["a", "b"])
    np.testing.assert_allclose(scaler.loc, [2.0, -4.0])
    np.testing.assert_allclose(scaler.scale, [np.std([1.0, 2.0, 3.0]), 1.0])
    assert scaler.loc.dtype == scaler.scale.dtype == np.float32


def test_meanabs_and_none():
    meanabs = SeriesScaler("meanabs").fit(Y, OFFSETS, TRAIN_END, ["a", "b"])
    np.testing.assert_allclose(meanabs.loc, [0.0, 0.0])
    np.testing.assert_allclose(meanabs.scale, [2.0, 4.0])
    none = SeriesScaler("none").fit(Y, OFFSETS, TRAIN_END, ["a", "b"])
    np.testing.assert_array_equal(none.transform(Y, OFFSETS), Y.astype(np.float32))


@pytest.mark.parametrize("kind", ["standard", "meanabs", "none"])
def test_inverse_undoes_transform(kind):
    scaler = SeriesScaler(kind).fit(Y, OFFSETS, TRAIN_END, ["a", "b"])
    np.testing.assert_allclose(scaler.inverse(scaler.transform(Y, OFFSETS), OFFSETS), Y, rtol=1e-6)


def test_exog_is_standardised_on_training_rows():
    exog = np.stack([Y, 2 * Y], axis=1)  # [N, 2]
    scaler = SeriesScaler("meanabs").fit(Y, OFFSETS, TRAIN_END, ["a", "b"], exog=exog, exog_names=["p", "q"])
    scaled = scaler.transform_exog(exog, OFFSETS)
    assert scaled.shape == (8, 2)
    np.testing.assert_allclose(scaled[:3].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled[:3].std(axis=0), 1.0, rtol=1e-6)


def test_json_round_trip_is_exact():
    rng = np.random.default_rng(0)
    y = rng.normal(size=8) * 1e3
    exog = rng.normal(size=(8, 1))
    scaler = SeriesScaler("standard").fit(y, OFFSETS, TRAIN_END, ["a", "b"], exog=exog, exog_names=["p"])
    back = SeriesScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert back.ids == ["a", "b"] and back.kind == "standard" and back.exog_names == ("p",)
    for name in ("loc", "scale", "exog_loc", "exog_scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(scaler, name))
        assert getattr(back, name).dtype == np.float32


def test_subset_and_update_from():
    trained = SeriesScaler("standard").fit(Y, OFFSETS, TRAIN_END, ["a", "b"])
    assert trained.subset(["b"]).loc.tolist() == [-4.0]
    with pytest.raises(KeyError, match="'c'"):
        trained.subset(["c"])
    fresh = SeriesScaler("standard").fit(Y, OFFSETS, np.array([4, 4]), ["b", "c"])
    merged = fresh.update_from(trained)
    assert merged.ids == ["b", "c"]
    assert merged.loc[0] == trained.loc[1] and merged.loc[1] == fresh.loc[1]


def test_fit_rejects_bad_train_end_and_kind():
    with pytest.raises(ValueError, match="train_end"):
        SeriesScaler().fit(Y, OFFSETS, np.array([0, 3]), ["a", "b"])
    with pytest.raises(ValueError, match="kind"):
        SeriesScaler("robust")
