"""BasicRNNCell and dynamic_rnn against torch.nn.RNN, finite differences and TF's semantics."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from forecaster.nn import (
    BasicRNNCell,
    cell_from_torch_rnn,
    dynamic_rnn,
    final_state,
    from_keras,
    from_tf1,
    from_torch,
    load_into_torch_rnn,
    to_keras,
    to_tf1,
    to_torch,
)


def test_worked_shapes():
    cell = BasicRNNCell(3, 7)
    outputs, state = dynamic_rnn(cell, torch.randn(6, 5, 3))
    assert outputs.shape == (6, 5, 7)
    assert state.shape == (6, 7)
    assert torch.equal(outputs[:, -1], state)


def test_exactly_two_variables_with_tf_shapes():
    cell = BasicRNNCell(3, 7)
    shapes = {name: tuple(p.shape) for name, p in cell.named_parameters()}
    assert shapes == {"kernel": (10, 7), "bias": (7,)}


def test_step_is_the_tf_equation():
    torch.manual_seed(0)
    cell = BasicRNNCell(4, 5).double()
    with torch.no_grad():
        cell.bias.normal_()
    x, h = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    out, new_state = cell(x, h)
    expected = torch.tanh(torch.cat([x, h], 1) @ cell.kernel + cell.bias)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert out is new_state


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_torch_rnn_float64(nonlinearity, seed):
    g = torch.Generator().manual_seed(seed)
    B, T, F, D = (int(v) for v in torch.randint(1, 9, (4,), generator=g))
    rnn = nn.RNN(F, D, nonlinearity=nonlinearity, batch_first=True).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    cell = cell_from_torch_rnn(rnn)
    x = torch.randn(B, T, F, generator=g, dtype=torch.float64)
    h0 = torch.randn(B, D, generator=g, dtype=torch.float64)
    ref_out, ref_h = rnn(x, h0[None])
    out, h = dynamic_rnn(cell, x, h0)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-6)
    torch.testing.assert_close(h, ref_h[0], rtol=0, atol=1e-6)
    # and the gradients of BPTT agree with nn.RNN's
    (out.square().sum() + h.sum()).backward()
    (ref_out.square().sum() + ref_h.sum()).backward()
    grads = from_torch(rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad)
    torch.testing.assert_close(cell.kernel.grad, grads["kernel"], rtol=0, atol=1e-6)
    torch.testing.assert_close(cell.bias.grad, grads["bias"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
def test_gradcheck_through_time(activation):
    torch.manual_seed(1)
    cell = BasicRNNCell(3, 4, activation).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    kernel = cell.kernel.detach().clone().requires_grad_()
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)

    unroll = _Unroll(cell)

    def run(x, h0, kernel, bias):
        params = {"cell.kernel": kernel, "cell.bias": bias}
        return torch.func.functional_call(unroll, params, (x, h0))

    assert torch.autograd.gradcheck(run, (x, h0, kernel, bias))


class _Unroll(nn.Module):
    """dynamic_rnn as a module, so functional_call can swap the cell's parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h0):
        return dynamic_rnn(self.cell, x, h0)


def test_gradcheck_with_sequence_length():
    torch.manual_seed(2)
    cell = BasicRNNCell(2, 3).double()
    x = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 2, 0])
    assert torch.autograd.gradcheck(lambda x: dynamic_rnn(cell, x, sequence_length=lengths), (x,))


def test_sequence_length_semantics():
    torch.manual_seed(3)
    cell = BasicRNNCell(2, 4)
    x = torch.randn(3, 6, 2)
    h0 = torch.randn(3, 4)
    lengths = torch.tensor([6, 3, 0])
    out, h = dynamic_rnn(cell, x, h0, sequence_length=lengths)
    full_out, _ = dynamic_rnn(cell, x, h0)
    torch.testing.assert_close(out[0], full_out[0])
    torch.testing.assert_close(out[1, :3], full_out[1, :3])
    assert torch.all(out[1, 3:] == 0) and torch.all(out[2] == 0)
    torch.testing.assert_close(h[0], full_out[0, -1])
    torch.testing.assert_close(h[1], full_out[1, 2])
    torch.testing.assert_close(h[2], h0[2])
    with pytest.raises(ValueError, match="sequence_length"):
        dynamic_rnn(cell, x, sequence_length=torch.tensor([7, 1, 1]))


def test_zero_initial_state_by_default():
    cell = BasicRNNCell(2, 3)
    x = torch.randn(4, 5, 2)
    torch.testing.assert_close(dynamic_rnn(cell, x)[0], dynamic_rnn(cell, x, torch.zeros(4, 3))[0])


def test_generic_cell_path_agrees_with_fast_path():
    torch.manual_seed(4)
    cell = BasicRNNCell(2, 3)
    x = torch.randn(4, 5, 2)

    class Wrapped(nn.Module):  # not a BasicRNNCell: takes the step-by-step path
        hidden_size = 3

        def forward(self, x, h):
            return cell(x, h)

    for a, b in zip(dynamic_rnn(Wrapped(), x), dynamic_rnn(cell, x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
@pytest.mark.parametrize("B,T,F,D", [(1, 1, 1, 4), (3, 7, 2, 5), (1000, 104, 1, 64),
                                     (4100, 9, 3, 64), (2, 300, 8, 16), (1000, 103, 64, 64)])
def test_final_state_is_dynamic_rnns_final_state_to_the_bit(activation, B, T, F, D):
    """Inference keeps only the state (two [B, D] buffers, inputs projected a few steps at a
    time: several chunks for the large shapes, the last one partial for T=103); same kernels,
    same order, same bits. The last case reads a second layer's strided outputs."""
    torch.manual_seed(B + T)
    cell = BasicRNNCell(F, D, activation)
    with torch.no_grad():
        cell.bias.normal_()
    x, h0 = torch.randn(B, T, F), torch.randn(B, D)
    if F == 64:  # a first layer's outputs: a [B, T, D] view of a time-major buffer
        x = dynamic_rnn(BasicRNNCell(3, F), torch.randn(B, T, 3))[0].detach()
    h0_before = h0.clone()
    with torch.inference_mode():
        for init in (None, h0):
            assert torch.equal(final_state(cell, x, init), dynamic_rnn(cell, x, init)[1])
    assert torch.equal(h0, h0_before)  # the initial state is not written to


def test_final_state_trains_through_dynamic_rnn():
    torch.manual_seed(5)
    cell = BasicRNNCell(2, 3).double()
    x = torch.randn(4, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: final_state(cell, x), (x,))
    final_state(cell, x).sum().backward()
    assert cell.kernel.grad is not None and x.grad is not None
    assert torch.equal(final_state(cell, torch.zeros(4, 0, 2, dtype=torch.float64)),
                       torch.zeros(4, 3, dtype=torch.float64))  # no steps: the initial state
    assert final_state(cell, torch.zeros(0, 5, 2, dtype=torch.float64)).shape == (0, 3)


@pytest.mark.parametrize("trainable", ["kernel", "bias", "initial_state", "nothing"])
def test_final_state_keeps_the_gradient_of_whatever_needs_one(trainable):
    """Frozen kernel with a trainable bias (or initial state) still gets its gradient; with
    nothing to train, under grad mode, the fast path runs and matches dynamic_rnn."""
    torch.manual_seed(6)
    cell = BasicRNNCell(2, 3).double()
    x = torch.randn(4, 6, 2, dtype=torch.float64)
    h0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=trainable == "initial_state")
    cell.kernel.requires_grad_(trainable == "kernel")
    cell.bias.requires_grad_(trainable == "bias")
    h = final_state(cell, x, h0)
    assert torch.equal(h.detach(), dynamic_rnn(cell, x, h0)[1].detach())
    if trainable == "nothing":
        assert not h.requires_grad
        return
    h.sum().backward()
    grad = {"kernel": cell.kernel.grad, "bias": cell.bias.grad, "initial_state": h0.grad}[trainable]
    assert grad is not None and grad.abs().sum() > 0


def test_final_state_takes_the_initial_state_like_dynamic_rnn():
    cell = BasicRNNCell(2, 3)
    x = torch.randn(4, 5, 2)
    with torch.no_grad():
        for h0 in (torch.randn(1, 3), torch.randn(4, 3, dtype=torch.float64)):  # broadcast, cast
            assert torch.equal(final_state(cell, x, h0), dynamic_rnn(cell, x, h0.float().expand(4, 3))[1])


def test_callable_activation():
    """A callable activation is the one applied: the unrolled output is the hand-written
    recurrence with softsign, and differs from tanh's."""
    torch.manual_seed(0)
    cell = BasicRNNCell(2, 3, activation=torch.nn.functional.softsign)
    x = torch.randn(2, 4, 2) * 3
    out, state = dynamic_rnn(cell, x)
    h = torch.zeros(2, 3)
    for t in range(4):
        h = torch.nn.functional.softsign(torch.cat([x[:, t], h], 1) @ cell.kernel + cell.bias)
        torch.testing.assert_close(out[:, t], h)
    torch.testing.assert_close(state, h)
    tanh = BasicRNNCell(2, 3)
    tanh.load_state_dict(cell.state_dict())
    assert not torch.allclose(dynamic_rnn(tanh, x)[0], out)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation='gelu'"):
        BasicRNNCell(2, 3, activation="gelu")
    with pytest.raises(ValueError, match="3 features but the cell expects 2"):
        dynamic_rnn(BasicRNNCell(2, 3), torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match=r"\[batch, steps, features\]"):
        dynamic_rnn(BasicRNNCell(2, 3), torch.randn(4, 2))


def test_initialiser_statistics():
    torch.manual_seed(5)
    F, D = 40, 200
    cell = BasicRNNCell(F, D)
    limit = math.sqrt(6 / (F + 2 * D))
    k = cell.kernel.detach()
    assert k.abs().max() <= limit
    assert k.abs().max() > 0.99 * limit
    # uniform(-a, a): mean 0, variance a^2 / 3
    assert abs(k.mean().item()) < 0.01 * limit
    assert abs(k.var().item() / (limit**2 / 3) - 1) < 0.05
    assert torch.count_nonzero(cell.bias) == 0


@pytest.mark.parametrize("as_numpy", [False, True])
def test_weight_format_round_trips(as_numpy):
    torch.manual_seed(6)
    F, D = 3, 5
    kernel, bias = torch.randn(F + D, D), torch.randn(D)
    if as_numpy:
        kernel, bias = kernel.numpy(), bias.numpy()
    eq = np.testing.assert_array_equal if as_numpy else torch.testing.assert_close

    tf1 = to_tf1(kernel, bias)
    eq(from_tf1(**tf1)["kernel"], kernel)
    keras = to_keras(kernel, bias, F)
    assert tuple(keras["kernel"].shape) == (F, D)
    assert tuple(keras["recurrent_kernel"].shape) == (D, D)
    back = from_keras(**keras)
    eq(back["kernel"], kernel)
    eq(back["bias"], bias)
    tt = to_torch(kernel, bias, F)
    assert tuple(tt["weight_ih"].shape) == (D, F) and tuple(tt["weight_hh"].shape) == (D, D)
    back = from_torch(**tt)
    eq(back["kernel"], kernel)
    eq(back["bias"], bias)
    with pytest.raises(ValueError, match="input_size=4"):
        to_keras(kernel, bias, 4)


def test_torch_rnn_round_trip_and_split_biases():
    torch.manual_seed(7)
    rnn = nn.RNN(3, 4, batch_first=True)
    cell = cell_from_torch_rnn(rnn)
    torch.testing.assert_close(cell.bias, rnn.bias_ih_l0 + rnn.bias_hh_l0)
    other = nn.RNN(3, 4, batch_first=True)
    load_into_torch_rnn(cell, other)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(other(x)[0], rnn(x)[0])
    rnn_cell = nn.RNNCell(3, 4)
    load_into_torch_rnn(cell, rnn_cell)
    torch.testing.assert_close(rnn_cell(x[:, 0]), cell(x[:, 0], torch.zeros(2, 4))[0])
    torch.testing.assert_close(cell_from_torch_rnn(rnn_cell).kernel, cell.kernel)


def test_keras_layout_computes_the_same_function():
    """Keras: h = act(x @ kernel + h @ recurrent_kernel + bias), written out in numpy."""
    rng = np.random.default_rng(8)
    F, D, B, T = 2, 3, 4, 5
    k, rk, b = rng.normal(size=(F, D)), rng.normal(size=(D, D)), rng.normal(size=D)
    x = rng.normal(size=(B, T, F))
    h = np.zeros((B, D))
    for t in range(T):
        h = np.tanh(x[:, t] @ k + h @ rk + b)
    cell = BasicRNNCell(F, D).double()
    cell.load_state_dict({key: torch.from_numpy(v) for key, v in from_keras(k, rk, b).items()})
    _, state = dynamic_rnn(cell, torch.from_numpy(x))
    np.testing.assert_allclose(state.detach().numpy(), h, atol=1e-12)
