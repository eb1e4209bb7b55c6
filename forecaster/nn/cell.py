"""TensorFlow's ``BasicRNNCell`` and ``tf.nn.dynamic_rnn``, written out in plain torch.

The cell is TensorFlow 1's ``tf.compat.v1.nn.rnn_cell.BasicRNNCell`` exactly: two variables,

    kernel  [input_size + hidden_size, hidden_size]   Glorot-uniform
    bias    [hidden_size]                             zeros

and one equation (``BasicRNNCell.call``):

    output = new_state = act(concat([inputs, state], 1) @ kernel + bias)

no gates, no second bias. ``dynamic_rnn`` unrolls it over a ``[B, T, F]`` batch the way
``tf.nn.dynamic_rnn`` does (zero initial state, optional ``sequence_length``) and is trained by
backpropagation through time.

Speed. Since ``concat([x, h]) @ kernel == x @ W_x + h @ W_h`` with ``W_x = kernel[:F]`` and
``W_h = kernel[F:]``, the input half is applied to all steps in one matmul
(``xw = x @ W_x + b``, ``[B, T, D]``) and only the recurrence stays in a loop:

    h_t = act(xw_t + h_{t-1} @ W_h)

That loop is one autograd node (``_Recurrence``) with a hand-written BPTT backward:

    dz_t     = dh_t * act'(h_t)                  (act' from the output: 1 - h^2 for tanh)
    dh_{t-1} = dz_t @ W_h^T + dL/dout_{t-1}
    dW_h     = [h_0 .. h_{T-1}]^T @ [dz_1 .. dz_T]   one matmul over all steps
    dxw_t    = dz_t

so each step costs two kernels each way, with no per-step autograd bookkeeping, and the
weight gradient is one large matmul instead of T small ones. ``gradcheck`` in float64 checks
it against finite differences (tests/nn). Callable activations and ``sequence_length`` take a
plain autograd loop over ``unbind(1)`` (indexing ``x[:, t]`` in a loop makes autograd copy a
zero-filled gradient per step, which doubled the backward time).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _identity(z: Tensor) -> Tensor:
    return z


# name -> (activation, in-place activation, derivative in terms of the activation's output y
# written in place into y's buffer)
_ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "tanh": (torch.tanh, torch.tanh_, lambda y: y.mul_(y).neg_().add_(1.0)),
    "relu": (torch.relu, torch.relu_, lambda y: y.gt_(0)),
    "sigmoid": (torch.sigmoid, torch.sigmoid_, lambda y: y.sub_(y * y)),
    "identity": (_identity, _identity, lambda y: y.fill_(1.0)),
}
ACTIVATIONS = tuple(_ACTIVATIONS)


def get_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Return the activation function named ``activation`` (or ``activation`` if callable)."""
    if callable(activation):
        return activation
    try:
        return _ACTIVATIONS[activation][0]
    except KeyError:
        raise ValueError(
            f"activation={activation!r} is not supported; use one of {list(ACTIVATIONS)} "
            "or pass a callable"
        ) from None


class BasicRNNCell(nn.Module):
    """The vanilla RNN cell of TensorFlow 1 (``BasicRNNCell``).

    Args:
        input_size: number of input features ``F`` per time step.
        hidden_size: number of units ``D``; the output and the state both have this size.
        activation: ``"tanh"`` (TensorFlow's default), ``"relu"``, ``"sigmoid"``,
            ``"identity"``, or a callable applied elementwise.

    Attributes:
        kernel: ``[F + D, D]``, Glorot-uniform initialised (``limit = sqrt(6 / (F + 2D))``).
        bias: ``[D]``, zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str | Callable = "tanh"):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.act = get_activation(activation)
        self.activation = activation if isinstance(activation, str) else None
        self.kernel = nn.Parameter(torch.empty(input_size + hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TensorFlow's defaults: ``glorot_uniform`` kernel, ``zeros`` bias."""
        fan_in, fan_out = self.input_size + self.hidden_size, self.hidden_size
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        with torch.no_grad():
            self.kernel.uniform_(-limit, limit)
            self.bias.zero_()

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``x`` ``[B, F]``, ``state`` ``[B, D]`` -> ``(output, new_state)``, both ``[B, D]``."""
        new_state = self.act(torch.addmm(self.bias, torch.cat([x, state], 1), self.kernel))
        return new_state, new_state

    def project_inputs(self, inputs: Tensor, out: Tensor | None = None) -> Tensor:
        """The input half for every step at once: ``inputs @ kernel[:F] + bias``,
        ``[N, M, F] -> [N, M, D]`` (batch- or time-major alike), into ``out`` when given
        (a contiguous buffer of at least ``N * M * D`` elements)."""
        N, M, F = inputs.shape
        D = self.hidden_size
        if out is not None:
            out = out.view(-1)[:N * M * D].view(N * M, D)
        xw = torch.addmm(self.bias, inputs.reshape(N * M, F), self.kernel[:F], out=out)
        return xw.view(N, M, D)  # [N, M, D]

    def extra_repr(self) -> str:
        act = self.activation or getattr(self.act, "__name__", "callable")
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, activation={act!r}"


def _steps(xw: Tensor, W_h: Tensor, h: Tensor, outs: Iterator[Tensor], act: str) -> Tensor:
    """``h_t = act(xw_t + h_{t-1} @ W_h)`` over time-major ``xw`` ``[T, B, D]``, step ``t``
    written in place into the next of ``outs`` (``[B, D]`` buffers); the last state."""
    act_ = _ACTIVATIONS[act][1]
    for xw_t, out in zip(xw.unbind(0), outs):  # zip stops before taking a buffer too many
        h = act_(torch.mm(h, W_h, out=out).add_(xw_t))
    return h


def _recurrence_forward(xw: Tensor, W_h: Tensor, h0: Tensor, act: str) -> Tensor:
    """The states ``[T + 1, B, D]`` (row 0 is ``h0``) over time-major ``xw`` ``[T, B, D]``,
    written in place into one buffer."""
    T, B, D = xw.shape
    H = xw.new_empty(T + 1, B, D)  # [T+1, B, D]
    H[0] = h0
    # views made once: indexing H[t] in the loop costs a call per step
    _steps(xw, W_h, H[0], iter(H.unbind(0)[1:]), act)
    return H


class _Recurrence(torch.autograd.Function):
    """The loop of ``dynamic_rnn`` as one autograd node with an explicit BPTT backward.

    Inputs and gradients are time-major (``[T, B, D]``) so every per-step slice is contiguous.
    """

    @staticmethod
    def forward(ctx, xw: Tensor, W_h: Tensor, h0: Tensor, act: str):
        H = _recurrence_forward(xw, W_h, h0, act)  # [T+1, B, D]
        ctx.save_for_backward(W_h, H)
        ctx.act = act
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
        return H[1:], H[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor | None, g_final: Tensor | None):
        W_h, H = ctx.saved_tensors
        T1, B, D = H.shape
        T = T1 - 1
        dz = _ACTIVATIONS[ctx.act][2](H[1:].clone())  # [T, B, D] act'(z_t), then dz_t in place
        dz_steps = dz.unbind(0)
        g_steps = g_out.unbind(0) if g_out is not None else (None,) * T
        dh = g_final if g_final is not None else H.new_zeros(B, D)
        if g_steps[-1] is not None:
            dh = dh + g_steps[-1]
        W_hT = W_h.t()
        for t in range(T - 1, 0, -1):
            dz_t = dz_steps[t].mul_(dh)
            g = g_steps[t - 1]
            dh = torch.mm(dz_t, W_hT) if g is None else torch.addmm(g, dz_t, W_hT)
        dh0 = torch.mm(dz_steps[0].mul_(dh), W_hT)
        dW_h = H[:-1].reshape(T * B, D).t() @ dz.view(T * B, D)  # [D, D], one matmul for all steps
        return dz, dW_h, dh0, None


def final_state(cell: nn.Module, inputs: Tensor, initial_state: Tensor | None = None) -> Tensor:
    """``dynamic_rnn(cell, inputs, initial_state)[1]`` without keeping the outputs: the
    forecasting network's last layer only reads the final state.

    In inference (no gradient needed) with a ``BasicRNNCell`` the state lives in two ``[B, D]``
    buffers that stay in cache, and the input half is projected a few steps at a time, so no
    ``[T, B, D]`` tensor is written (for 1,000 series of 104 steps that is 27 MB, and writing
    it took as long as the recurrence). The same kernels run in the same order on the same
    values as in ``dynamic_rnn``, so the state is the same to the bit (tested). When a gradient
    is needed, for another cell, or for an empty batch or sequence, it returns
    ``dynamic_rnn(...)[1]``.

    Args:
        cell, inputs ``[B, T, F]``, initial_state ``[B, D]``: as for ``dynamic_rnn``.

    Returns:
        ``final_state [B, D]``.
    """
    fast = (isinstance(cell, BasicRNNCell) and cell.activation in _ACTIVATIONS
            and inputs.dim() == 3 and inputs.shape[0] > 0 and inputs.shape[1] > 0
            and inputs.shape[2] == cell.input_size
            and not (torch.is_grad_enabled() and any(
                t is not None and t.requires_grad
                for t in (inputs, cell.kernel, cell.bias, initial_state))))
    if not fast:
        return dynamic_rnn(cell, inputs, initial_state)[1]
    B, T, F = inputs.shape
    D = cell.hidden_size
    h = inputs.new_zeros(B, D)
    if initial_state is not None:
        h.copy_(initial_state)  # dtype and broadcasting as in dynamic_rnn
    buffers = itertools.cycle((torch.empty_like(h), h))  # each step writes the other one
    chunk = max(1, min(T, _FINAL_STATE_CHUNK // (B * D)))  # steps projected at once
    xw = inputs.new_empty(chunk * B * D)
    x_tm = inputs.transpose(0, 1)  # [T, B, F] (a view)
    for t0 in range(0, T, chunk):
        xw_c = cell.project_inputs(x_tm[t0:t0 + chunk], out=xw)  # [c, B, D]
        h = _steps(xw_c, cell.kernel[F:], h, buffers, cell.activation)
    return h


_FINAL_STATE_CHUNK = 1 << 18  # elements of projected inputs kept at once (1 MB in float32)


def dynamic_rnn(
    cell: nn.Module,
    inputs: Tensor,
    initial_state: Tensor | None = None,
    sequence_length: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Unroll ``cell`` over a batch-major sequence, as ``tf.nn.dynamic_rnn(time_major=False)``.

    Args:
        cell: a ``BasicRNNCell`` (fast path) or any module with ``cell(x_t, state) ->
            (output, new_state)`` and a ``hidden_size`` attribute.
        inputs: ``[B, T, F]``.
        initial_state: ``[B, D]``; zeros when omitted.
        sequence_length: ``[B]`` integer lengths. Outputs at steps ``t >= length`` are zeros and
            the final state is the state after the sequence's last valid step (the initial state
            for a length of 0).

    Returns:
        ``(outputs [B, T, D], final_state [B, D])``.
    """
    if inputs.dim() != 3:
        raise ValueError(f"inputs must be [batch, steps, features], got shape {tuple(inputs.shape)}")
    B, T, F = inputs.shape
    h = initial_state
    if h is None:
        h = inputs.new_zeros(B, cell.hidden_size)
    if T == 0:
        return inputs.new_zeros(B, 0, cell.hidden_size), h

    if isinstance(cell, BasicRNNCell):
        if F != cell.input_size:
            raise ValueError(f"inputs have {F} features but the cell expects {cell.input_size}")
        W_h = cell.kernel[F:]  # [D, D]
        if sequence_length is None and cell.activation in _ACTIVATIONS:
            xw = cell.project_inputs(inputs.transpose(0, 1))  # [T, B, D]
            if torch.is_grad_enabled() and (xw.requires_grad or h.requires_grad):
                outputs, h = _Recurrence.apply(xw, W_h, h, cell.activation)  # [T, B, D], [B, D]
            else:  # inference: no autograd node to build
                H = _recurrence_forward(xw, W_h, h, cell.activation)  # [T+1, B, D]
                outputs, h = H[1:], H[-1]
            return outputs.transpose(0, 1), h  # [B, T, D]
        steps, act = cell.project_inputs(inputs).unbind(1), cell.act  # T x [B, D]

        def step(xw_t: Tensor, h: Tensor) -> Tensor:
            return act(torch.addmm(xw_t, h, W_h))

    else:
        steps = inputs.unbind(1)  # T x [B, F]

        def step(x_t: Tensor, h: Tensor) -> Tensor:
            return cell(x_t, h)[1]

    outputs = []
    if sequence_length is None:
        for x_t in steps:
            h = step(x_t, h)
            outputs.append(h)
        return torch.stack(outputs, 1), h  # [B, T, D]

    lengths = torch.as_tensor(sequence_length, device=inputs.device).reshape(B, 1)
    if (lengths < 0).any() or (lengths > T).any():
        raise ValueError(f"sequence_length must lie in [0, {T}], got {lengths.flatten().tolist()}")
    for t, x_t in enumerate(steps):
        valid = lengths > t  # [B, 1]
        h_new = step(x_t, h)
        outputs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
        h = torch.where(valid, h_new, h)
    return torch.stack(outputs, 1), h
