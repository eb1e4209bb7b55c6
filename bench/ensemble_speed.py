"""Training K ensemble members side by side on each batch (what ``pipelines.train`` does)
against K separate trainings, each gathering its own batches: training steps per second,
interleaved in one process so machine noise hits both alike.

    python bench/ensemble_speed.py [--members 4] [--steps 30]

Both run the same members (the M4 Hourly experiment's: input 336, lags 24 and 168, a 48-step
cell, with the linear path) on batches of 256 windows of a random-walk panel.

A third row fuses the members' recurrences into one (issue 26, "members that cost one"): the
kernels stacked ``[K, F + D, D]``, one batched matmul ``[K, B, D] @ [K, D, D]`` per step and one
hand-written BPTT backward for all K (``_StackedRecurrence`` below, the same equations as
``forecaster.nn.cell._Recurrence``). It lives here, not in the product, because it was slower
than the members' own recurrences side by side (``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecaster.data import FeatureSpec, build_datasets, window_loader  # noqa: E402
from forecaster.models import ForecastLoss  # noqa: E402
from forecaster.models.ensemble import member_configs  # noqa: E402
from forecaster.models.module import ForecastModule  # noqa: E402
from forecaster.nn import build_net  # noqa: E402


class _StackedRecurrence(torch.autograd.Function):
    """``h_t = tanh(xw_t + h_{t-1} @ W_h[k])`` for K cells at once: ``xw`` ``[T, K, B, D]``,
    ``W_h`` ``[K, D, D]``; returns the final states ``[K, B, D]``."""

    @staticmethod
    def forward(ctx, xw, W_h):
        T, K, B, D = xw.shape
        H = xw.new_zeros(T + 1, K, B, D)
        for t in range(T):
            torch.tanh_(torch.baddbmm(xw[t], H[t], W_h, out=H[t + 1]))
        ctx.save_for_backward(W_h, H)
        return H[-1].clone()

    @staticmethod
    def backward(ctx, g):
        W_h, H = ctx.saved_tensors
        dz = 1 - H[1:] * H[1:]  # tanh' from the outputs, then dz_t in place
        dh, W_hT = g, W_h.transpose(1, 2)
        for t in range(H.shape[0] - 2, -1, -1):
            dz[t].mul_(dh)
            dh = torch.bmm(dz[t], W_hT)
        return dz, torch.einsum("tkbd,tkbe->kde", H[:-1], dz)


def stacked_forward_members(net, x):
    """``net.forward_members(x)`` with the members' (one-layer, same-shape) recurrences fused."""
    parts = [m.normalise(x) for m in net.members]
    u = torch.stack([m.cell_inputs(xk, nk) for m, (xk, nk, _, _) in zip(net.members, parts)])
    K, B, T, F = u.shape
    kernel = torch.stack([m.cells[0].kernel for m in net.members])  # [K, F + D, D]
    bias = torch.stack([m.cells[0].bias for m in net.members])  # [K, D]
    xw = torch.baddbmm(bias[:, None], u.transpose(1, 2).reshape(K, T * B, F), kernel[:, :F])
    xw = xw.view(K, T, B, -1).transpose(0, 1).contiguous()  # [T, K, B, D]
    states = _StackedRecurrence.apply(xw, kernel[:, F:])
    return torch.stack([m.decode(*p, s, None, None) for m, p, s in zip(net.members, parts, states)])


def panel(n_series: int = 200, length: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(length)
    y = 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(size=(n_series, length)).cumsum(1)
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], length),
                         "ds": np.tile(t, n_series), "y": y.reshape(-1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--segment", type=int, default=0,
                        help="24: the cell reads a day per step (model.segment)")
    args = parser.parse_args()
    spec = FeatureSpec(input_size=336, horizon=48, scaler="none")
    data = build_datasets(panel(), spec, val_size=0, test_size=48, stride=4)
    base = dict(n_features=1, horizon=48, hidden_size=64, season_length=24, base="seasonal",
                level="season")
    configs = member_configs(base, input_sizes=[336], linear=[True], seeds=args.members,
                             lags=[24, 168], rnn_steps=None, segment=args.segment)

    def module(members):
        torch.manual_seed(0)
        return ForecastModule(build_net({"members": members}), ForecastLoss("mae"),
                              lambda params: torch.optim.Adam(params, lr=1e-3))

    joint = module(configs)
    separate = [module([c]) for c in configs]
    fused = module(configs)
    fused.net.forward_members = lambda x, futr=None, static=None: stacked_forward_members(
        fused.net, x)

    def steps(modules, n) -> float:
        """Seconds for ``n`` training steps of every module, each on its own batches."""
        opts = [m.optimizer_factory(params=m.parameters()) for m in modules]
        loaders = [iter(window_loader(data.train, batch_size=256, shuffle=True, seed=k))
                   for k in range(len(modules))]
        start = time.perf_counter()
        for _ in range(n):
            for m, opt, batches in zip(modules, opts, loaders):
                loss, _ = m.compute_loss(next(batches))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return time.perf_counter() - start

    steps([joint], 2), steps(separate, 2), steps([fused], 2)  # warm-up
    times = {"side by side": [], "separate": [], "fused": []}
    for _ in range(3):  # interleaved rounds
        times["side by side"].append(steps([joint], args.steps))
        times["separate"].append(steps(separate, args.steps))
        times["fused"].append(steps([fused], args.steps))
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"{args.members} members, {args.steps} steps of batch 256, torch threads "
          f"{torch.get_num_threads()}")
    for k, v in med.items():
        print(f"  {k:13s} {args.steps / v:6.2f} steps/s (median of 3)")
    print(f"  ratio side by side / separate: {med['separate'] / med['side by side']:.2f}x the speed")
    print(f"  ratio fused / side by side: {med['side by side'] / med['fused']:.2f}x the speed")


if __name__ == "__main__":
    main()
