"""Panel, window gathering and the loader: the batch contract of docs/architecture.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster.data import FeatureSpec, Panel, SeriesScaler, WindowDataset, validate_frame, window_loader
from forecaster.data.frames import series_offsets

from .synthetic import long_frame

SPEC = FeatureSpec(6, 3, calendar=("hour", "dayofweek"), futr_exog=("price",), static_cols=("size",))


def make_panel(spec=SPEC, lengths=(20, 30)):
    df = long_frame(lengths).assign(price=lambda d: np.arange(len(d), dtype=float), size=lambda d: d["y"].round(-1))
    clean, _, _ = validate_frame(df, min_length=1, futr_exog=spec.futr_exog, static_cols=spec.static_cols)
    ids, offsets = series_offsets(clean)
    exog = clean[list(spec.futr_exog)].to_numpy()
    scaler = SeriesScaler(spec.scaler).fit(clean["y"].to_numpy(), offsets, np.diff(offsets), ids, exog, spec.futr_exog)
    return clean, Panel.from_frame(clean, spec, scaler)


def test_panel_layout():
    clean, panel = make_panel()
    assert panel.ids == ["s0", "s1"]
    np.testing.assert_array_equal(panel.offsets, [0, 20, 50])
    assert panel.ds.dtype == "datetime64[ns]" and panel.y.dtype == np.float32
    assert panel.features.shape == (50, SPEC.n_futr) and panel.static.shape == (2, 1)
    np.testing.assert_allclose(panel.static[:, 0], [10.0, 20.0])
    restored = panel.y_scaled * np.repeat(panel.scale, [20, 30]) + np.repeat(panel.loc, [20, 30])
    np.testing.assert_allclose(restored, clean["y"], rtol=1e-5)


def test_batch_contract_shapes_and_dtypes():
    _, panel = make_panel()
    ds = WindowDataset(panel, SPEC, np.array([0, 1, 1]), np.array([6, 6, 27]))
    batch = ds[[0, 2]]
    B, L, H, F, C = 2, 6, 3, SPEC.n_features, SPEC.n_futr
    assert batch["x"].shape == (B, L, F) and batch["x"].dtype == torch.float32
    assert batch["futr"].shape == (B, H, C) and batch["futr"].dtype == torch.float32
    assert batch["static"].shape == (B, 1) and batch["y"].shape == (B, H)
    assert batch["loc"].shape == batch["scale"].shape == (B,)
    assert batch["series"].dtype == batch["t"].dtype == torch.int64
    assert batch["t"].tolist() == [6, 27] and batch["series"].tolist() == [0, 1]
    # inputs: scaled target then the features of the input rows; targets: scaled rows t..t+H-1
    rows = 20 + 27 + np.arange(-L, 0)
    np.testing.assert_array_equal(batch["x"][1, :, 0].numpy(), panel.y_scaled[rows])
    np.testing.assert_array_equal(batch["x"][1, :, 1:].numpy(), panel.features[rows])
    np.testing.assert_array_equal(batch["y"][1].numpy(), panel.y_scaled[47:50])
    np.testing.assert_array_equal(batch["futr"][1].numpy(), panel.features[47:50])


@pytest.mark.parametrize("idx", [1, [1], np.array([1])])
def test_int_list_and_array_indices_give_a_batch(idx):
    _, panel = make_panel()
    batch = WindowDataset(panel, SPEC, np.array([0, 1]), np.array([6, 10]))[idx]
    assert batch["x"].shape == (1, 6, SPEC.n_features) and batch["t"].tolist() == [10]


def test_windows_must_fit_their_series():
    _, panel = make_panel()
    with pytest.raises(ValueError, match="does not fit"):
        WindowDataset(panel, SPEC, np.array([0]), np.array([5]))
    with pytest.raises(ValueError, match="does not fit"):
        WindowDataset(panel, SPEC, np.array([0]), np.array([18]))


def test_dataset_holds_index_arrays_not_copies():
    _, panel = make_panel()
    ds = WindowDataset(panel, SPEC, np.zeros(12, dtype=np.int64), np.arange(6, 18))
    assert ds.panel.y_scaled is panel.y_scaled
    assert ds.series.nbytes + ds.t.nbytes == 12 * 16


def test_loader_batches_cover_each_window_once_and_shuffle_is_seeded():
    _, panel = make_panel()
    ds = WindowDataset(panel, SPEC, np.array([0] * 12 + [1] * 22), np.r_[6:18, 6:28])
    order = [b["t"].tolist() for b in window_loader(ds, 8, shuffle=False)]
    assert [len(o) for o in order] == [8, 8, 8, 8, 2]
    seen = [(int(s), int(t)) for b in window_loader(ds, 8, shuffle=True, seed=3) for s, t in zip(b["series"], b["t"])]
    assert sorted(seen) == sorted(zip(ds.series.tolist(), ds.t.tolist()))
    first = [b["t"].tolist() for b in window_loader(ds, 8, shuffle=True, seed=3)]
    again = [b["t"].tolist() for b in window_loader(ds, 8, shuffle=True, seed=3)]
    assert first == again and first != order
    assert len(list(window_loader(ds, 8, shuffle=True, seed=3, drop_last=True))) == 4
