"""The forecasting network: a window-normalised ``BasicRNNCell`` encoder that corrects a
seasonal-naive base, beside an NLinear path, and the median ensemble of such networks.

One member (``RNNForecastNet``) reads the last ``L`` steps of a window ``x`` ``[B, L, F]``
(channel 0 the target ``y``, then known-future features) and forecasts ``H`` steps:

    level, scale = window statistics of y_{1..L}      (last value or mean of the last season; std)
    n_t          = (y_t - level) / scale               the window in its own units (RevIN/NLinear)
    u_t          = [n_t, n_{t-m_1}, n_{t-m_2}, ..., features_t]   t = L-T+1 .. L
    h_T          = BasicRNNCell unrolled over u (stacked layers, like tf.nn.dynamic_rnn)
    c            = head([h_T, futr, static]) + linear(n_{1..L})     [B, H, Q] corrections
    y_hat_h      = level + scale * (base_h + c_h)       base: seasonal naive n_{L-m+(h mod m)},
                                                        the last value, or 0 (the level)

``n_{t-m}`` are the seasonal-lag channels (``lags``): the value one season earlier, normalised
like the window, at every step the cell reads; they are a cheap analogue of ES-RNN's dilated
connections. With ``segment`` P the cell's step ``s`` reads P consecutive ``u_t`` at once (one
season per step: SegRNN's and ES-RNN's period-aligned recurrence), and ``T`` counts segments.
``linear`` is one dense map from the whole normalised window to the horizon:
with ``base="last"`` and ``level="last"`` and a zero head it is exactly NLinear.

Because level and scale come from the window itself, the forecast depends only on the
values in the window (and covariates): a series seen in training and a new one get the same
forecast, and ``y -> a * y + b`` (``a > 0``) maps the forecast the same way; with ``log`` the
network works on ``log y`` and ``y -> c * y`` scales the forecast by ``c``.

The head emits every horizon step at once (direct multi-output). With several quantiles the
outputs are non-crossing by construction: the lowest is free and each next one adds a softplus
increment.

``EnsembleNet`` holds K members (different seeds, input lengths or variants) and forecasts
their median.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F_
from torch import Tensor, nn

from forecaster.nn.cell import BasicRNNCell, dynamic_rnn, final_state

BASES = ("seasonal", "last", "level")
LEVELS = ("last", "season")
# A window whose std is below this share of its level is treated as constant (float32 noise).
_REL_SCALE_FLOOR = 1e-5


def window_stats(y: Tensor, level: str = "last", season: int = 1,
                 log: bool = False) -> tuple[Tensor, Tensor]:
    """The level and scale of windows ``y`` ``[B, L]``, both ``[B, 1]``.

    ``level``: the last value, or the mean of the last ``season`` values. ``scale``: the
    window's standard deviation, floored at ``1e-5 * |level|`` (``1e-5`` for ``log`` values,
    a relative change); 0 only for an all-zero window. Both are positively homogeneous in
    ``y`` (for ``log`` values, unchanged by a shift) and the level moves with it, which is what
    makes the forecast scale-equivariant.
    """
    if level == "season" and season > 1:
        lvl = y[:, -season:].mean(1, keepdim=True)  # [B, 1]
    else:
        lvl = y[:, -1:]  # [B, 1]
    std = y.std(1, correction=0, keepdim=True)  # [B, 1]
    floor = torch.full_like(lvl, _REL_SCALE_FLOOR) if log else _REL_SCALE_FLOOR * lvl.abs()
    return lvl, torch.maximum(std, floor)


SCALES = ("std", "meanabs", "none")


def window_scale(y: Tensor, kind: str = "std") -> Tensor:
    """``[B, 1]``: the unit of training errors and of calibrated interval widths for windows
    ``y`` ``[B, L]``: their std (as in :func:`window_stats`) or their mean absolute value
    (``meanabs``: errors relative to the level, as sMAPE and MAPE weigh them), or 1 (``none``:
    the series' own units, as a metric on one standardised series weighs them); 1 where it is 0."""
    if kind == "none":
        return torch.ones_like(y[:, :1])
    if kind == "meanabs":
        scale = y.abs().mean(1, keepdim=True)
    elif kind == "std":
        _, scale = window_stats(y)
    else:
        raise ValueError(f"the window scale must be one of {list(SCALES)}, got {kind!r}")
    return torch.where(scale > 0, scale, torch.ones_like(scale))


class RNNForecastNet(nn.Module):
    """One forecasting network: window-normalised inputs, a stacked ``BasicRNNCell`` encoder
    with seasonal-lag channels, a direct multi-horizon head and an optional NLinear path.

    Args:
        n_features: features per step in the batch ``F`` (target + known-future features).
        horizon: forecast steps ``H``.
        hidden_size: units ``D`` of every cell.
        num_layers: stacked cells; layer ``k`` reads the outputs of layer ``k - 1``.
        dropout: dropout probability between stacked layers (not after the last).
        activation: the cells' activation (``tanh``, ``relu``, ``identity``...).
        n_futr: known-future features per horizon step ``C``, fed to the head.
        n_static: static per-series features ``S``, fed to the head.
        n_outputs: outputs per horizon step ``Q`` (1 for a point forecast, else one per quantile,
            in ascending quantile order).
        input_size: steps ``L`` this network reads: the last ``L`` of the batch's window
            (``None``: the whole window).
        season_length: the primary season ``m`` (steps) of the seasonal-naive base and of the
            ``season`` level; 1 for none.
        lags: season lengths whose lag channels ``n_{t-m}`` feed the cell (each ``< L``).
        rnn_steps: steps ``T`` the cell unrolls over (``None``: ``L - max(lags)``, or ``L``).
        base: what the network corrects: ``seasonal`` (seasonal naive of ``season_length``),
            ``last`` (the last value) or ``level`` (the window level).
        level: ``last`` value or mean of the last ``season`` as the normalising level.
        linear: add the NLinear path, a dense map from the normalised window to the horizon.
        log: model ``log y`` (positive series; multiplicative seasonality).
        rnn: with ``False`` the cell and its head are left out: the linear path alone
            corrects the base (with ``base="last"``, exactly NLinear).
        segment: 0: the cell reads one window step per step. ``P > 0``: one segment of ``P``
            consecutive steps per step (SegRNN's and ES-RNN's period-aligned recurrence; ``P``
            is usually the season, so a week of hourly values is 7 steps, not 168), and
            ``rnn_steps`` counts segments (default: as many as fit in the window beside the
            longest lag). Lag channels then carry longer seasons (the same hours a week
            earlier); the previous segments themselves are the lag of one season.
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
        input_size: int | None = None,
        season_length: int = 1,
        lags: Sequence[int] = (),
        rnn_steps: int | None = None,
        base: str = "last",
        level: str = "last",
        linear: bool = False,
        log: bool = False,
        rnn: bool = True,
        segment: int = 0,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if base not in BASES:
            raise ValueError(f"base must be one of {list(BASES)}, got {base!r}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
        self.lags = tuple(int(m) for m in lags)
        if any(m < 1 for m in self.lags):
            raise ValueError(f"lags must be positive season lengths, got {list(lags)}")
        self.segment = int(segment or 0)
        if self.segment < 0:
            raise ValueError(f"segment must be 0 or a positive length, got {segment}")
        need = (self.segment or 1) * (rnn_steps or 1) + max(self.lags, default=0)
        if input_size is not None and input_size < max(need, season_length):
            raise ValueError(f"input_size {input_size} is too short for lags {list(self.lags)}, "
                             f"rnn_steps {rnn_steps} and season_length {season_length}")
        if linear and input_size is None:
            raise ValueError("linear=True needs a fixed input_size")
        if not rnn and (not linear or n_outputs > 1):
            raise ValueError("rnn=False needs the linear path and a point output")
        self.horizon, self.n_outputs = horizon, n_outputs
        self.n_futr, self.n_static = n_futr, n_static
        self.input_size, self.rnn_steps = input_size, rnn_steps
        self.season_length = max(int(season_length), 1)
        self.base, self.level, self.log, self.rnn = base, level, log, rnn
        # step h of the horizon repeats input step L - m + (h mod m), counted from the end
        m = self.season_length if base == "seasonal" else 1
        self.register_buffer("season_index", torch.arange(horizon) % m - m, persistent=False)
        n_in = (n_features + len(self.lags)) * (self.segment or 1)
        self.cells = nn.ModuleList(
            BasicRNNCell(n_in if k == 0 else hidden_size, hidden_size, activation)
            for k in range(num_layers if rnn else 0)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = (nn.Linear(hidden_size + horizon * n_futr + n_static, horizon * n_outputs)
                     if rnn else None)
        self.linear = nn.Linear(input_size, horizon) if linear else None

    def forward(self, x: Tensor, futr: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        """``x`` ``[B, >=L, F]``, ``futr`` ``[B, H, C]``, ``static`` ``[B, S]`` -> ``[B, H, Q]``."""
        x, n, level, scale = self.normalise(x)
        state = self.encode(self.cell_inputs(x, n)) if self.rnn else None
        return self.decode(x, n, level, scale, state, futr, static)

    def normalise(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The window this network reads ``x`` ``[B, L, F]``, its normalised target ``n``
        ``[B, L]``, and the level and scale ``[B, 1]`` that undo it."""
        if self.input_size is not None:
            if x.shape[1] < self.input_size:
                raise ValueError(f"the window has {x.shape[1]} steps; this network reads "
                                 f"{self.input_size}")
            x = x[:, -self.input_size:]
        L = x.shape[1]
        T = self._steps(L)
        if T < 1 or self._span(T) > L or self.season_length > L:
            raise ValueError(f"a window of {L} steps is too short for lags {list(self.lags)}, "
                             f"rnn_steps {self.rnn_steps}, segment {self.segment} and season "
                             f"{self.season_length}")
        y = x[..., 0]  # [B, L]
        if self.log:
            y = y.log()
        level, scale = window_stats(y, self.level, self.season_length, self.log)  # [B, 1] each
        n = (y - level) / torch.where(scale > 0, scale, torch.ones_like(scale))  # [B, L]
        return x, n, level, scale

    def _steps(self, L: int) -> int:
        """Steps ``T`` the cell unrolls over in a window of ``L``."""
        if self.rnn_steps:
            return self.rnn_steps
        return (L - max(self.lags, default=0)) // (self.segment or 1)

    def _span(self, T: int) -> int:
        """Window steps that ``T`` cell steps read (with their lags)."""
        return T * (self.segment or 1) + max(self.lags, default=0)

    def cell_inputs(self, x: Tensor, n: Tensor) -> Tensor:
        """What the first cell reads ``[B, T, F']``: per step the normalised value, its
        seasonal lags and the features; with ``segment`` P, P consecutive steps of them."""
        B, L, F = x.shape
        P = self.segment or 1
        S = self._steps(L) * P  # window steps read
        steps = [n[:, L - S:, None]]  # [B, S, 1]
        steps += [n[:, L - S - m:L - m, None] for m in self.lags]  # [B, S, 1] each
        u = torch.cat([*steps, x[:, L - S:, 1:]], -1)  # [B, S, 1 + len(lags) + F - 1]
        return u.reshape(B, S // P, P * u.shape[-1]) if self.segment else u  # [B, T, F']

    def encode(self, h: Tensor) -> Tensor:
        """The stacked cells over the cell inputs ``[B, T, F']``: the last state ``[B, D]``."""
        for k, cell in enumerate(self.cells):
            if k > 0:
                h = self.dropout(h)
            if k + 1 < len(self.cells):
                h, _ = dynamic_rnn(cell, h)  # [B, T, D]
        return final_state(self.cells[-1], h)  # [B, D]: the head reads only the last state

    def decode(self, x: Tensor, n: Tensor, level: Tensor, scale: Tensor, state: Tensor | None,
               futr: Tensor | None, static: Tensor | None) -> Tensor:
        """The forecast ``[B, H, Q]`` from the last state: the head's corrections, the linear
        path and the base, in the window's units."""
        B, L = n.shape
        out = self._head(state, futr, static) if self.rnn else n.new_zeros(B, self.horizon, 1)
        if self.linear is not None:
            out = out + self.linear(n)[..., None]  # [B, H, Q]
        if self.base != "level":
            out = out + n[:, self.season_index + L, None]  # [B, H, Q] + seasonal naive / last
        out = level[..., None] + scale[..., None] * out  # [B, H, Q]
        return out.exp() if self.log else out

    def _head(self, state: Tensor, futr: Tensor | None, static: Tensor | None) -> Tensor:
        """``[B, H, Q]`` corrections from the last state, future and static features."""
        B = state.shape[0]
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
        return out


class EnsembleNet(nn.Module):
    """The median of K member networks' forecasts.

    Args:
        members: the keyword arguments of each member ``RNNForecastNet``; they must agree on
            ``horizon`` and ``n_outputs``.
    """

    def __init__(self, members: Sequence[dict]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.configs = [dict(kw) for kw in members]
        self.members = nn.ModuleList(RNNForecastNet(**kw) for kw in self.configs)
        first = self.members[0]
        if any((m.horizon, m.n_outputs) != (first.horizon, first.n_outputs) for m in self.members):
            raise ValueError("ensemble members must share horizon and n_outputs")
        self.horizon, self.n_outputs = first.horizon, first.n_outputs
        self.input_size = max((m.input_size or 0) for m in self.members) or None

    def forward_members(self, x: Tensor, futr: Tensor | None = None,
                        static: Tensor | None = None) -> Tensor:
        """Every member's forecast: ``[K, B, H, Q]``."""
        return torch.stack([m(x, futr, static) for m in self.members])

    def forward(self, x: Tensor, futr: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        """The members' median ``[B, H, Q]`` (the mean of the middle two for an even K)."""
        if len(self.members) == 1:
            return self.members[0](x, futr, static)
        return self.forward_members(x, futr, static).quantile(0.5, dim=0)


def build_net(config: dict) -> RNNForecastNet | EnsembleNet:
    """The network a saved config describes: ``{"members": [...]}`` is an ensemble (other
    keys, such as ``kinds``, describe it and are not arguments)."""
    if "members" in config:
        return EnsembleNet(config["members"])
    return RNNForecastNet(**config)
