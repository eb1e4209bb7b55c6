"""Weight interchange between ``BasicRNNCell`` and the other vanilla-RNN layouts.

All three layouts hold the same function ``h_t = act(x_t W_x + h_{t-1} W_h + b)``:

| layout | tensors |
|---|---|
| TF1 ``BasicRNNCell`` (ours) | ``kernel`` ``[F + D, D]`` = ``[W_x; W_h]``, ``bias`` ``[D]`` |
| Keras ``SimpleRNNCell`` | ``kernel`` ``[F, D]`` = ``W_x``, ``recurrent_kernel`` ``[D, D]`` = ``W_h``, ``bias`` ``[D]`` |
| ``torch.nn.RNN`` / ``RNNCell`` | ``weight_ih`` ``[D, F]`` = ``W_x^T``, ``weight_hh`` ``[D, D]`` = ``W_h^T``, ``bias_ih + bias_hh`` = ``b`` |

Functions take and return plain arrays (numpy or torch; the output type follows the input),
so no TensorFlow is needed. Going to torch, the whole bias goes to ``bias_ih`` and
``bias_hh`` is zeros.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from forecaster.nn.cell import BasicRNNCell

Array = np.ndarray | torch.Tensor


def _is_torch(a: Array) -> bool:
    return isinstance(a, torch.Tensor)


def _cat(a: Array, b: Array) -> Array:
    return torch.cat([a, b], 0) if _is_torch(a) else np.concatenate([a, b], 0)


def _t(a: Array) -> Array:
    return a.detach().T.contiguous() if _is_torch(a) else np.ascontiguousarray(a.T)


def _copy(a: Array) -> Array:
    return a.detach().clone() if _is_torch(a) else np.array(a, copy=True)


def _check_kernel(kernel: Array, input_size: int) -> int:
    rows, hidden = kernel.shape
    if rows <= input_size:
        raise ValueError(
            f"kernel has {rows} rows; with input_size={input_size} it must have "
            f"input_size + hidden_size rows"
        )
    if rows - input_size != hidden:
        raise ValueError(
            f"kernel shape {tuple(kernel.shape)} does not fit input_size={input_size}: "
            f"expected [{input_size} + {hidden}, {hidden}]"
        )
    return hidden


def from_tf1(kernel: Array, bias: Array) -> dict[str, Array]:
    """TF1 ``BasicRNNCell`` variables -> our state dict (they are the same: copied)."""
    return {"kernel": _copy(kernel), "bias": _copy(bias)}


def to_tf1(kernel: Array, bias: Array) -> dict[str, Array]:
    """Our ``kernel``/``bias`` -> TF1 ``BasicRNNCell`` variables (the same, copied)."""
    return from_tf1(kernel, bias)


def from_keras(kernel: Array, recurrent_kernel: Array, bias: Array) -> dict[str, Array]:
    """Keras ``SimpleRNNCell`` weights ``[F, D]``, ``[D, D]``, ``[D]`` -> ``kernel``, ``bias``."""
    return {"kernel": _cat(kernel, recurrent_kernel), "bias": _copy(bias)}


def to_keras(kernel: Array, bias: Array, input_size: int) -> dict[str, Array]:
    """Our ``kernel``/``bias`` -> Keras ``SimpleRNNCell`` ``kernel``, ``recurrent_kernel``, ``bias``."""
    _check_kernel(kernel, input_size)
    return {
        "kernel": _copy(kernel[:input_size]),
        "recurrent_kernel": _copy(kernel[input_size:]),
        "bias": _copy(bias),
    }


def from_torch(
    weight_ih: Array, weight_hh: Array, bias_ih: Array | None = None, bias_hh: Array | None = None
) -> dict[str, Array]:
    """``torch.nn.RNN``/``RNNCell`` weights -> ``kernel`` ``[F + D, D]`` and ``bias`` ``[D]``."""
    hidden = weight_hh.shape[0]
    zeros = torch.zeros(hidden, dtype=weight_hh.dtype) if _is_torch(weight_hh) else np.zeros(
        hidden, dtype=weight_hh.dtype
    )
    bias = (bias_ih if bias_ih is not None else zeros) + (bias_hh if bias_hh is not None else zeros)
    return {"kernel": _cat(_t(weight_ih), _t(weight_hh)), "bias": _copy(bias)}


def to_torch(kernel: Array, bias: Array, input_size: int) -> dict[str, Array]:
    """Our ``kernel``/``bias`` -> ``weight_ih``, ``weight_hh``, ``bias_ih`` (all of it), ``bias_hh`` (zeros)."""
    _check_kernel(kernel, input_size)
    zeros = torch.zeros_like(bias) if _is_torch(bias) else np.zeros_like(bias)
    return {
        "weight_ih": _t(kernel[:input_size]),
        "weight_hh": _t(kernel[input_size:]),
        "bias_ih": _copy(bias),
        "bias_hh": zeros,
    }


def cell_from_torch_rnn(rnn: nn.RNN | nn.RNNCell, layer: int = 0) -> BasicRNNCell:
    """A ``BasicRNNCell`` holding layer ``layer`` of a ``torch.nn.RNN`` (or an ``RNNCell``)."""
    sfx = f"_l{layer}" if isinstance(rnn, nn.RNN) else ""
    params = {name: getattr(rnn, f"{name}{sfx}") for name in ("weight_ih", "weight_hh")}
    for name in ("bias_ih", "bias_hh"):
        params[name] = getattr(rnn, f"{name}{sfx}", None)
    activation = rnn.nonlinearity
    weight_ih = params["weight_ih"]
    cell = BasicRNNCell(weight_ih.shape[1], weight_ih.shape[0], activation=activation)
    cell = cell.to(dtype=weight_ih.dtype, device=weight_ih.device)
    cell.load_state_dict(from_torch(**params))
    return cell


def load_into_torch_rnn(cell: BasicRNNCell, rnn: nn.RNN | nn.RNNCell, layer: int = 0) -> None:
    """Copy ``cell``'s weights into layer ``layer`` of a ``torch.nn.RNN`` (or an ``RNNCell``)."""
    sfx = f"_l{layer}" if isinstance(rnn, nn.RNN) else ""
    weights = to_torch(cell.kernel, cell.bias, cell.input_size)
    with torch.no_grad():
        for name, value in weights.items():
            target = getattr(rnn, f"{name}{sfx}", None)
            if target is None:
                if name == "bias_ih" and value.abs().max() > 0:
                    raise ValueError("the torch RNN has no bias but the cell's bias is non-zero")
                continue
            target.copy_(value)
