"""Train / validation / test windows: positions, no leakage, scalers fitted on training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.data import DataValidationError, FeatureSpec, build_datasets

from .synthetic import long_frame


def test_split_positions_are_anchored_at_split_ends():
    data = build_datasets(long_frame((40,)), FeatureSpec(5, 3), val_size=6, test_size=3, stride=2)
    # training rows [0, 31), validation [31, 37), test [37, 40)
    assert data.train.t.tolist() == list(range(6, 29, 2))
    assert data.val.t.tolist() == [32, 34]
    assert data.test.t.tolist() == [37]
    assert data.freq == "h" and data.spec.freq == "h" and data.fill_report == {}


def test_zero_val_size_gives_an_empty_validation_set():
    data = build_datasets(long_frame(), FeatureSpec(5, 3), val_size=0, test_size=3)
    assert len(data.val) == 0 and len(data.test) == 2


def test_too_short_series_says_how_many_points_are_needed():
    with pytest.raises(DataValidationError, match=r"'s0' has 40 points but at least 41 are needed \(input_size 20 \+ "
                                                  r"horizon 5 \+ val_size 8 \+ test_size 8\)"):
        build_datasets(long_frame(), FeatureSpec(20, 5), val_size=8, test_size=8)


def test_short_series_are_left_out_when_asked_and_the_frame_refused_only_when_all_are():
    """drop_short (the training run's data module): a panel with one short series trains on
    the others and names the one left out; with every series short the error stays."""
    df = long_frame()
    extra = df[df["unique_id"] == "s0"].assign(unique_id="new")
    df = pd.concat([df, extra.iloc[:10]], ignore_index=True)  # a new product: 10 points
    data = build_datasets(df, FeatureSpec(5, 3), val_size=3, test_size=3, drop_short=True)
    assert data.left_out == ("new",) and "new" not in list(data.panel.ids)
    with pytest.raises(DataValidationError, match="'new' has 10 points"):
        build_datasets(df, FeatureSpec(5, 3), val_size=3, test_size=3)  # not asked: refused
    with pytest.raises(DataValidationError, match="at least 216 are needed"):  # none is long enough
        build_datasets(long_frame(), FeatureSpec(200, 8), val_size=8, test_size=0, drop_short=True)


def test_sizes_and_stride_are_checked():
    with pytest.raises(ValueError, match="val_size must be 0 or at least horizon"):
        build_datasets(long_frame(), FeatureSpec(5, 3), val_size=2, test_size=3)
    with pytest.raises(ValueError, match="stride"):
        build_datasets(long_frame(), FeatureSpec(5, 3), val_size=3, test_size=3, stride=0)


def test_spec_freq_must_match_and_calendar_needs_datetimes():
    with pytest.raises(DataValidationError, match="differs from spec.freq"):
        build_datasets(long_frame(), FeatureSpec(5, 3, freq="D"), val_size=3, test_size=3)
    with pytest.raises(DataValidationError, match="integer index"):
        build_datasets(long_frame(integer=True), FeatureSpec(5, 3, calendar=("hour",)), val_size=3, test_size=3)


def test_fill_report_is_returned():
    df = long_frame()
    df.loc[[50, 51], "y"] = np.nan
    data = build_datasets(df, FeatureSpec(5, 3), val_size=3, test_size=3, fill="ffill")
    assert data.fill_report == {"s1": 2}


def test_scaler_ignores_validation_and_test_values():
    df = long_frame()
    spec = FeatureSpec(5, 3, futr_exog=("price",))
    df["price"] = np.arange(len(df), dtype=float)
    base = build_datasets(df, spec, val_size=4, test_size=4).scaler
    changed = df.copy()
    tail = changed.groupby("unique_id").cumcount(ascending=False) < 8
    changed.loc[tail, ["y", "price"]] *= 1000.0
    other = build_datasets(changed, spec, val_size=4, test_size=4).scaler
    np.testing.assert_array_equal(base.loc, other.loc)
    np.testing.assert_array_equal(base.scale, other.scale)
    np.testing.assert_array_equal(base.exog_loc, other.exog_loc)


@st.composite
def panels(draw):
    """A random panel, spec and split sizes that leave each series one training window."""
    L = draw(st.integers(1, 6))
    H = draw(st.integers(1, 4))
    val = draw(st.sampled_from([0, H, H + draw(st.integers(0, 3))]))
    test = draw(st.sampled_from([H, H + draw(st.integers(0, 3))]))
    lengths = draw(st.lists(st.integers(L + H + val + test, L + H + val + test + 15), min_size=1, max_size=4))
    values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=sum(lengths), max_size=sum(lengths)))
    df = long_frame(tuple(lengths))
    df["y"] = values
    kind = draw(st.sampled_from(["standard", "meanabs", "none"]))
    stride = draw(st.integers(1, 3))
    shuffled = draw(st.booleans())
    if shuffled:
        df = df.sample(frac=1.0, random_state=0)
    return df, FeatureSpec(L, H, calendar=("hour",), scaler=kind), val, test, stride


@settings(max_examples=60, deadline=None)
@given(panels())
def test_windows_are_causal_exact_and_do_not_leak(case):
    df, spec, val_size, test_size, stride = case
    data = build_datasets(df, spec, val_size=val_size, test_size=test_size, stride=stride)
    original = df.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    lengths = original.groupby("unique_id").size().to_numpy()
    ds_all = original["ds"].to_numpy()
    offsets = np.r_[0, np.cumsum(lengths)]
    bounds = {
        "train": (np.zeros_like(lengths), lengths - val_size - test_size),
        "val": (lengths - val_size - test_size, lengths - test_size),
        "test": (lengths - test_size, lengths),
    }
    assert len(data.train) >= len(lengths)  # one training window per series at least
    for name, (start, end) in bounds.items():
        windows = getattr(data, name)
        if len(windows) == 0:
            continue
        batch = windows[np.arange(len(windows))]
        s, t = batch["series"].numpy(), batch["t"].numpy()
        # targets lie inside this split of their series; inputs precede targets inside the series
        assert np.all(t >= start[s]) and np.all(t + spec.horizon <= end[s]) and np.all(t >= spec.input_size)
        first_target = offsets[s] + t
        input_rows = first_target[:, None] + np.arange(-spec.input_size, 0)  # [B, L]
        target_rows = first_target[:, None] + np.arange(spec.horizon)  # [B, H]
        assert np.all(ds_all[input_rows].max(axis=1) < ds_all[target_rows].min(axis=1))
        # targets, inverse-scaled, are exactly the original rows (to float32 rounding)
        restored = batch["y"].numpy() * batch["scale"].numpy()[:, None] + batch["loc"].numpy()[:, None]
        expected = original["y"].to_numpy()[target_rows]
        np.testing.assert_allclose(restored, expected, rtol=1e-5, atol=1e-3)
        restored_inputs = batch["x"][..., 0].numpy() * batch["scale"].numpy()[:, None] + batch["loc"].numpy()[:, None]
        np.testing.assert_allclose(restored_inputs, original["y"].to_numpy()[input_rows], rtol=1e-5, atol=1e-3)
    # the scaler saw training rows only
    train_rows = original.groupby("unique_id").cumcount().to_numpy() < np.repeat(bounds["train"][1], lengths)
    train_y = pd.Series(original["y"].to_numpy()[train_rows]).groupby(original["unique_id"].to_numpy()[train_rows])
    if spec.scaler == "standard":
        expected_loc = train_y.mean().to_numpy()
        np.testing.assert_allclose(data.scaler.loc, expected_loc, rtol=1e-5, atol=1e-4)
    elif spec.scaler == "meanabs":
        expected_scale = train_y.apply(lambda v: v.abs().mean()).to_numpy()
        expected_scale = np.where(expected_scale < 1e-8, 1.0, expected_scale)
        np.testing.assert_allclose(data.scaler.scale, expected_scale, rtol=1e-5, atol=1e-4)
