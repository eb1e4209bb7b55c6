"""The forecasting network: stacked ``BasicRNNCell`` encoder and a direct multi-horizon head.

    h^1_{1..L} = dynamic_rnn(cell_1, x)                      x: [B, L, F]
    h^k_{1..L} = dynamic_rnn(cell_k, dropout(h^{k-1}))       k = 2..num_layers
    z          = concat([h^K_L, flatten(futr), static])      [B, D + H*C + S]
    y_hat      = head(z)                                     [B, H, Q]

With ``local_level`` the target channel is taken relative to the window's last value
``x_{L,0}`` (subtracted from the inputs, added back to every output), so the cell models the
changes from the latest level and a trending series does not push it outside the range it was
trained on. With ``season_length = m > 1`` as well, what is added back is the seasonal-naive
forecast ``x_{L-m+(h mod m),0}`` of each step ``h``, so the network learns corrections to it.

The head emits every horizon step at once (direct multi-output), so no forecast error is fed
back. With several quantiles the outputs are made non-crossing by construction: the lowest
quantile is free and each next one adds a softplus increment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F_
from torch import Tensor, nn

from forecaster.nn.cell import BasicRNNCell, dynamic_rnn, final_state


class RNNForecastNet(nn.Module):
    """Encoder of stacked ``BasicRNNCell`` layers with a linear multi-horizon head.

    Args:
        n_features: encoder input features per step ``F`` (target + history features).
        horizon: forecast steps ``H``.
        hidden_size: units ``D`` of every cell.
        num_layers: stacked cells; layer ``k`` reads the outputs of layer ``k - 1``.
        dropout: dropout probability between stacked layers (not after the last).
        activation: the cells' activation (``tanh``, ``relu``, ``identity``...).
        n_futr: known-future features per horizon step ``C``, fed to the head.
        n_static: static per-series features ``S``, fed to the head.
        n_outputs: outputs per horizon step ``Q`` (1 for a point forecast, else one per quantile,
            in ascending quantile order).
        local_level: forecast relative to the last input value of the target (channel 0).
        season_length: with ``local_level``, forecast relative to the seasonal-naive forecast of
            this period instead (1: the last value); needs ``season_length <= L``.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "tanh",
        n_futr: int = 0,
        n_static: int = 0,
        n_outputs: int = 1,
        local_level: bool = True,
        season_length: int = 1,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.horizon, self.n_outputs = horizon, n_outputs
        self.n_futr, self.n_static = n_futr, n_static
        self.local_level = local_level
        self.season_length = season_length
        # step h of the horizon repeats input step L - m + (h mod m), counted from the end
        self.register_buffer("season_index", torch.arange(horizon) % season_length - season_length,
                             persistent=False)
        self.cells = nn.ModuleList(
            BasicRNNCell(n_features if k == 0 else hidden_size, hidden_size, activation)
            for k in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + horizon * n_futr + n_static, horizon * n_outputs)

    def forward(self, x: Tensor, futr: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        """``x`` ``[B, L, F]``, ``futr`` ``[B, H, C]``, ``static`` ``[B, S]`` -> ``[B, H, Q]``."""
        B, L, F = x.shape
        if self.local_level:
            if self.season_length > L:
                raise ValueError(f"season_length {self.season_length} exceeds the {L} input steps")
            level = x[:, -1:, :1]  # [B, 1, 1]
            base = x[:, self.season_index + L, :1]  # [B, H, 1] seasonal naive (last value if m=1)
            x = torch.cat([x[..., :1] - level, x[..., 1:]], -1)  # [B, L, F]
        h = x
        for k, cell in enumerate(self.cells):
            if k > 0:
                h = self.dropout(h)
            if k + 1 < len(self.cells):
                h, _ = dynamic_rnn(cell, h)  # [B, L, D]
            else:  # the head reads only the last state
                state = final_state(cell, h)  # [B, D]
        parts = [state]
        if self.n_futr:
            parts.append(futr.reshape(B, self.horizon * self.n_futr))  # [B, H*C]
        if self.n_static:
            parts.append(static)  # [B, S]
        z = torch.cat(parts, 1) if len(parts) > 1 else state
        out = self.head(z).view(B, self.horizon, self.n_outputs)  # [B, H, Q]
        if self.n_outputs > 1:
            # softplus of a strided view takes torch's scalar path (~14x slower): copy first
            out = torch.cat([out[..., :1], F_.softplus(out[..., 1:].contiguous())], -1).cumsum(-1)
        if self.local_level:
            out = out + base  # [B, H, Q]
        return out
