"""Losses and the network's output contract."""

import numpy as np
import pytest
import torch

from forecaster.models import ForecastLoss
from forecaster.nn import RNNForecastNet


def test_quantile_outputs_never_cross():
    torch.manual_seed(0)
    net = RNNForecastNet(n_features=2, horizon=5, hidden_size=8, n_outputs=3)
    with torch.no_grad():
        net.head.weight.normal_(std=5.0)
    out = net(torch.randn(64, 10, 2) * 10)
    assert (out.diff(dim=-1) >= 0).all()


def test_pinball_loss_is_minimised_by_the_quantile():
    torch.manual_seed(1)
    y = torch.randn(20000, 1)
    loss = ForecastLoss("pinball", [0.1, 0.5, 0.9])
    candidates = torch.linspace(-2, 2, 401)
    best = []
    for k, q in enumerate([0.1, 0.5, 0.9]):
        values = [
            float(torch.maximum(q * (y - c), (q - 1) * (y - c)).mean()) for c in candidates
        ]
        best.append(float(candidates[int(np.argmin(values))]))
    np.testing.assert_allclose(best, torch.quantile(y, torch.tensor([0.1, 0.5, 0.9])).tolist(), atol=0.03)
    y_hat = torch.tensor(best).view(1, 1, 3).expand(20000, 1, 3)
    assert float(loss(y_hat, y)) < float(loss(y_hat + 0.3, y))


def test_point_losses_and_point_index():
    y_hat, y = torch.tensor([[[1.0], [3.0]]]), torch.tensor([[0.0, 1.0]])
    assert float(ForecastLoss("mse")(y_hat, y)) == pytest.approx((1 + 4) / 2)
    assert float(ForecastLoss("mae")(y_hat, y)) == pytest.approx((1 + 2) / 2)
    q = ForecastLoss("pinball", [0.9, 0.1, 0.5])  # sorted internally
    assert q.quantiles.tolist() == pytest.approx([0.1, 0.5, 0.9])
    assert q.point(torch.arange(3.0).view(1, 1, 3)).item() == 1.0
    with pytest.raises(ValueError, match="needs model.quantiles"):
        ForecastLoss("pinball", [])


def test_seasonal_skip_starts_from_seasonal_naive():
    x = torch.arange(8.0).view(1, 8, 1)  # last season: 5, 6, 7
    for level in ("last", "season"):
        net = RNNForecastNet(n_features=1, horizon=5, hidden_size=4, season_length=3,
                             base="seasonal", level=level)
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.zero_()
        np.testing.assert_allclose(net(x)[0, :, 0].detach().numpy(), [5, 6, 7, 5, 6], rtol=1e-6)
    flat = RNNForecastNet(n_features=1, horizon=2, hidden_size=4)  # base "last": the last value
    with torch.no_grad():
        flat.head.weight.zero_()
        flat.head.bias.zero_()
    np.testing.assert_allclose(flat(x)[0, :, 0].detach().numpy(), [7, 7], rtol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_inference_forward_equals_the_training_forward(num_layers):
    """The last layer's inference path (final_state) gives the network the same forecasts as
    the training path (dynamic_rnn with its autograd node), to the bit."""
    torch.manual_seed(3)
    net = RNNForecastNet(n_features=3, horizon=6, hidden_size=16, num_layers=num_layers,
                         n_outputs=3, season_length=4, lags=[4], base="seasonal",
                         input_size=24, linear=True).eval()
    x = torch.randn(50, 24, 3)
    trained = net(x)
    assert trained.requires_grad
    with torch.inference_mode():
        assert torch.equal(net(x), trained.detach())
