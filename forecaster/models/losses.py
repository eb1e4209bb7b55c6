"""Training losses on scaled values: MSE, MAE and the pinball (quantile) loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

LOSSES = ("mse", "mae", "pinball")


def pinball_loss(y_hat: Tensor, y: Tensor, quantiles: Tensor) -> Tensor:
    """Mean pinball loss. ``y_hat`` ``[B, H, Q]``, ``y`` ``[B, H]``, ``quantiles`` ``[Q]``.

    ``rho_q(u) = max(q * u, (q - 1) * u)`` with ``u = y - y_hat``; its minimiser is the
    ``q``-quantile, so the outputs become prediction-interval bounds.
    """
    u = y.unsqueeze(-1) - y_hat  # [B, H, Q]
    return torch.maximum(quantiles * u, (quantiles - 1) * u).mean()


class ForecastLoss(torch.nn.Module):
    """The configured loss as a module: ``loss(y_hat [B, H, Q], y [B, H]) -> scalar``.

    Args:
        name: ``"mse"``, ``"mae"`` or ``"pinball"``.
        quantiles: the quantile levels in (0, 1) for ``"pinball"``, ascending; ignored otherwise.
    """

    def __init__(self, name: str = "mse", quantiles: Sequence[float] = ()):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"loss={name!r} is not supported; use one of {list(LOSSES)}")
        self.name = name
        q = sorted(float(v) for v in quantiles) if name == "pinball" else []
        if name == "pinball":
            if not q:
                raise ValueError("loss='pinball' needs model.quantiles, e.g. [0.1, 0.5, 0.9]")
            if any(not 0.0 < v < 1.0 for v in q) or len(set(q)) != len(q):
                raise ValueError(f"quantiles must be distinct values in (0, 1), got {list(quantiles)}")
        self.levels = q  # the quantile levels as given (exact floats, for files and reports)
        self.register_buffer("quantiles", torch.tensor(q, dtype=torch.float32), persistent=False)

    @property
    def n_outputs(self) -> int:
        return max(len(self.quantiles), 1)

    def point(self, y_hat: Tensor) -> Tensor:
        """The point forecast ``[B, H]``: the output itself, or the quantile nearest the median."""
        if y_hat.shape[-1] == 1:
            return y_hat[..., 0]
        return y_hat[..., int(torch.argmin((self.quantiles - 0.5).abs()))]

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        if self.name == "pinball":
            return pinball_loss(y_hat, y, self.quantiles)
        err = y_hat[..., 0] - y
        return err.square().mean() if self.name == "mse" else err.abs().mean()
