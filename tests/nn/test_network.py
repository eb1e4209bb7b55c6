"""The forecasting network: scale-free by construction, the seasonal base, the lag channels,
the NLinear special case and the median ensemble."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from forecaster.nn import EnsembleNet, RNNForecastNet, build_net

L, H = 24, 6


def _net(seed: int = 0, **kw) -> RNNForecastNet:
    torch.manual_seed(seed)
    config = dict(n_features=1, horizon=H, hidden_size=8, input_size=L, season_length=4,
                  lags=[4, 8], base="seasonal", level="season", linear=True)
    config.update(kw)
    net = RNNForecastNet(**config).eval()
    with torch.no_grad():  # weights large enough that the corrections matter
        for p in net.parameters():
            p.normal_(std=0.5)
    return net


windows = arrays(np.float64, L, elements=st.floats(-1e3, 1e3, allow_nan=False)).filter(
    lambda w: np.std(w) > 1e-3 * (1 + np.abs(w).max()))


@settings(max_examples=40, deadline=None)
@given(w=windows, a=st.floats(1e-3, 1e3), shift=st.floats(-10, 10),
       base=st.sampled_from(["seasonal", "last", "level"]), level=st.sampled_from(["last", "season"]))
def test_forecast_is_equivariant_under_positive_affine_maps(w, a, shift, base, level):
    """y -> a y + b (a > 0) maps the forecast the same way: nothing depends on the units.
    (Shifts are exact while the window's std stays above 1e-5 of its level, the float floor.)"""
    b = shift * a * (1 + np.abs(w).max())
    net = _net(base=base, level=level)
    x = torch.tensor(w, dtype=torch.float64).view(1, L, 1)
    with torch.no_grad():
        net.double()
        f = net(x)[0, :, 0].numpy()
        g = net(a * x + b)[0, :, 0].numpy()
    np.testing.assert_allclose(g, a * f + b, rtol=1e-7, atol=1e-7 * (abs(b) + a * np.abs(w).max()))


@settings(max_examples=25, deadline=None)
@given(w=arrays(np.float64, L, elements=st.floats(0.1, 1e4)), c=st.floats(1e-3, 1e3))
def test_log_mode_scales_the_forecast_with_the_series(w, c):
    net = _net(log=True).double()
    x = torch.tensor(w, dtype=torch.float64).view(1, L, 1)
    with torch.no_grad():
        np.testing.assert_allclose(net(c * x)[0, :, 0].numpy(), c * net(x)[0, :, 0].numpy(),
                                   rtol=1e-8)


def test_the_forecast_reads_only_its_window():
    net = _net()
    x = torch.randn(3, L, 1)
    longer = torch.cat([torch.randn(3, 50, 1) * 100, x], 1)  # more, wilder history before it
    with torch.no_grad():
        assert torch.equal(net(x), net(longer))


def test_constant_and_all_zero_windows_forecast_the_constant():
    """A constant window's scale is the float floor (1e-5 of its level), so the corrections
    move it by a few 1e-5 at most; an all-zero window forecasts zeros exactly."""
    net = _net()
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.full((1, L, 1), 7.5)).numpy(), 7.5, rtol=1e-3)
        assert torch.equal(net(torch.zeros(1, L, 1)), torch.zeros(1, H, 1))


def test_nlinear_is_the_special_case_without_head():
    """base=last, level=last and a zero head: y_hat = last + W (x - last) + b, NLinear."""
    net = _net(base="last", level="last", lags=[])
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        x = torch.randn(5, L, 1) * 3 + 10
        last = x[:, -1:, 0]  # [B, 1]
        expected = last + (x[..., 0] - last) @ net.linear.weight.T + net.linear.bias * x[..., 0].std(
            1, correction=0, keepdim=True)
        np.testing.assert_allclose(net(x)[..., 0].numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_lag_channels_see_one_season_back():
    """Swapping two values before the cell's steps keeps the window's level and scale: only
    the lag channel can see it, so it changes the forecast with the channel and not without."""
    x = torch.randn(1, L, 1)
    w = x.clone()
    i = L - 4 - 8  # the first step of the lag-8 channel of a 4-step cell
    w[0, i], w[0, i + 1] = x[0, i + 1], x[0, i]
    kw = dict(linear=False, rnn_steps=4, level="last", base="last")
    with torch.no_grad():
        assert not torch.allclose(_net(lags=[8], **kw)(x), _net(lags=[8], **kw)(w))
        assert torch.allclose(_net(lags=[], **kw)(x), _net(lags=[], **kw)(w), atol=1e-6)


def test_segments_feed_the_cell_one_season_per_step():
    """segment=4: the cell reads the window's last 24 values as 6 steps of 4 (features beside
    each value), and the forecast stays scale-free."""
    net = _net(segment=4, lags=[], n_features=2).double()
    x = torch.randn(3, L, 2, dtype=torch.float64)  # the target and one feature
    x_cut, n, level, scale = net.normalise(x)
    u = net.cell_inputs(x_cut, n)
    assert u.shape == (3, L // 4, 4 * 2) and net.cells[0].input_size == 8
    assert torch.equal(u[:, 1, 0::2], n[:, 4:8]) and torch.equal(u[:, 1, 1::2], x[:, 4:8, 1])
    a, b = 7.0, -3.0
    with torch.no_grad():
        shifted = x.clone()
        shifted[..., 0] = a * x[..., 0] + b
        np.testing.assert_allclose(net(shifted).numpy(), (a * net(x) + b).numpy(), rtol=1e-9)
    lagged = _net(segment=4, lags=[8], n_features=2)  # 4 segments beside an 8-step lag
    x_cut, n, _, _ = lagged.normalise(x.float())
    u = lagged.cell_inputs(x_cut, n)
    assert u.shape == (3, 4, 4 * 3) and torch.equal(u[:, 0, 1::3], n[:, 0:4])
    with pytest.raises(ValueError, match="segment must be"):
        _net(segment=-1)
    with pytest.raises(ValueError, match="too short"):
        RNNForecastNet(n_features=1, horizon=H, input_size=8, segment=4, rnn_steps=3)


def test_ensemble_is_the_median_of_its_members():
    configs = [dict(n_features=1, horizon=H, hidden_size=4, input_size=size, season_length=4,
                    base="seasonal", linear=lin) for size, lin in [(24, True), (12, False), (16, True)]]
    torch.manual_seed(0)
    net = build_net({"members": configs}).eval()
    assert isinstance(net, EnsembleNet) and net.input_size == 24
    x = torch.randn(7, 24, 1)
    with torch.no_grad():
        members = torch.stack([m(x) for m in net.members])
        assert torch.equal(net(x), members.median(0).values)
        two = EnsembleNet(configs[:2]).eval()
        two.load_state_dict({k: v for k, v in net.state_dict().items()
                             if not k.startswith("members.2.")})
        np.testing.assert_allclose(two(x).numpy(), members[:2].mean(0).numpy(), rtol=1e-6)


def test_windows_too_short_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="too short for lags"):
        RNNForecastNet(n_features=1, horizon=H, input_size=8, lags=[8])
    net = RNNForecastNet(n_features=1, horizon=H, input_size=L, lags=[4])
    with pytest.raises(ValueError, match="this network reads 24"):
        net(torch.randn(1, 10, 1))
