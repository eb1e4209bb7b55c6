"""Training-step and forward-latency speed of ``dynamic_rnn(BasicRNNCell)`` vs ``torch.nn.RNN``.

Both models hold the same weights and the same dense head; their runs are interleaved in one
process so machine noise hits both alike. Prints medians and the ratio ours / nn.RNN
(targets: training step <= 0.9, batch-1 forward <= 1.0).

    python bench/rnn_speed.py [--batch 256 --steps 48 --hidden 64 --repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from forecaster.nn import cell_from_torch_rnn, dynamic_rnn


class Ours(nn.Module):
    def __init__(self, rnn: nn.RNN, head: nn.Linear):
        super().__init__()
        self.cell = cell_from_torch_rnn(rnn)
        self.head = nn.Linear(head.in_features, head.out_features)
        self.head.load_state_dict(head.state_dict())

    def forward(self, x):
        _, h = dynamic_rnn(self.cell, x)  # [B, D]
        return self.head(h)


class Reference(nn.Module):
    def __init__(self, rnn: nn.RNN, head: nn.Linear):
        super().__init__()
        self.rnn, self.head = rnn, head

    def forward(self, x):
        _, h = self.rnn(x)  # [1, B, D]
        return self.head(h[-1])


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(batch: int, steps: int, features: int, hidden: int, horizon: int, repeats: int) -> dict:
    torch.manual_seed(0)
    rnn = nn.RNN(features, hidden, batch_first=True)
    head = nn.Linear(hidden, horizon)
    models = {"ours": Ours(rnn, head), "nn.RNN": Reference(rnn, head)}
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    x = torch.randn(batch, steps, features)
    y = torch.randn(batch, horizon)
    x1 = torch.randn(1, steps, features)

    def train_step(name):
        opts[name].zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(models[name](x), y)
        loss.backward()
        opts[name].step()

    def forward(name, inp):
        with torch.inference_mode():
            models[name](inp)

    times = {(k, w): [] for k in models for w in ("train", "fwd1", "fwd256")}
    for name in models:  # warm-up
        for _ in range(3):
            train_step(name)
            forward(name, x1)
            forward(name, x)
    for _ in range(repeats):
        for name in models:  # interleaved
            times[name, "train"].append(_timed(lambda: train_step(name)))
            times[name, "fwd1"].append(
                min(_timed(lambda: forward(name, x1)) for _ in range(5))
            )
            times[name, "fwd256"].append(_timed(lambda: forward(name, x)))
    return {key: statistics.median(v) for key, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--features", type=int, default=1)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--horizon", type=int, default=48)
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args()
    med = run(a.batch, a.steps, a.features, a.hidden, a.horizon, a.repeats)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"B={a.batch} T={a.steps} F={a.features} D={a.hidden}, {a.repeats} interleaved repeats")
    print(f"{'measure':<28}{'ours (ms)':>12}{'nn.RNN (ms)':>14}{'ratio':>8}{'target':>9}")
    rows = [("train step (fwd+bwd+Adam)", "train", 0.9), ("forward, batch 1", "fwd1", 1.0),
            (f"forward, batch {a.batch}", "fwd256", None)]
    for label, key, target in rows:
        ours, ref = med["ours", key] * 1e3, med["nn.RNN", key] * 1e3
        tgt = f"<= {target}" if target else ""
        print(f"{label:<28}{ours:>12.3f}{ref:>14.3f}{ours / ref:>8.2f}{tgt:>9}")


if __name__ == "__main__":
    main()
