"""Training throughput of the float metaplastic BNN against a plain implementation of the paper.

For each network (the paper's 784-4096-4096-10, Laborieux et al., Nat. Commun. 12, 2549, 2021,
and the default 784-512-512-10 of ``spinapse run``), in one process, at batch 100, m = 1.35 and
the same random digits-shaped inputs, two trainers are timed in alternating rounds:

- ``spinapse``: :class:`spinapse.golden.float_model.bnn.BNN` with ``bnn_optimizer`` (the fused
  Adam_meta update that also writes the ``W_b`` buffers; eager when no C++ compiler is found);
- ``plain``: written below, operation for operation as the paper describes the algorithm
  (Methods and its Adam_meta pseudo-code): ``W_b = sign(W_h)`` built in every forward pass,
  BatchNorm on batch statistics, and an Adam_meta step written out term by term (moments,
  bias corrections, ``f_meta``, the condition ``W_b m_t > 0``, the two branches) with no fusion.

Both train the same network on the same batches from the same initial weights. Printed: samples
per second of each (median of the rounds) and their ratio. The first fused step (compilation)
is done before timing. Throughput does not depend on the input values.

Usage: ``.venv/bin/python benchmarks/train_throughput.py [--threads N] [--steps N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from spinapse.golden.float_model.adam_meta import bnn_optimizer
from spinapse.golden.float_model.bnn import BNN

META = 1.35
BATCH = 100


# --- the plain implementation -------------------------------------------------------------------
class _PlainSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class _PlainWeightSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, g):
        return g


class PlainBNN(nn.Module):
    """The paper's MLP: linear on sign(W_h) -> BatchNorm1d (batch statistics) -> sign."""

    def __init__(self, hidden: list[int], init: BNN) -> None:
        super().__init__()
        widths = [784, *hidden, 10]
        self.w = nn.ParameterList(nn.Parameter(lin.weight.detach().clone()) for lin in init.linears)
        self.bns = nn.ModuleList(nn.BatchNorm1d(b, track_running_stats=False) for b in widths[1:])

    def forward(self, x):
        for i, (w, bn) in enumerate(zip(self.w, self.bns)):
            x = bn(F.linear(x, _PlainWeightSign.apply(w)))
            if i < len(self.w) - 1:
                x = _PlainSign.apply(x)
        return x


class PlainAdamMeta:
    """Adam_meta as written in the paper: every term its own tensor operation."""

    def __init__(self, weights, bn_params, lr=0.005, betas=(0.9, 0.999), eps=1e-8, wd=1e-7):
        self.groups = [(list(weights), META), (list(bn_params), 0.0)]
        self.lr, self.betas, self.eps, self.wd, self.t = lr, betas, eps, wd, 0
        self.m = {id(p): torch.zeros_like(p) for ps, _ in self.groups for p in ps}
        self.v = {id(p): torch.zeros_like(p) for ps, _ in self.groups for p in ps}

    @torch.no_grad()
    def step(self):
        b1, b2 = self.betas
        self.t += 1
        for params, meta in self.groups:
            for p in params:
                g = p.grad + self.wd * p
                m, v = self.m[id(p)], self.v[id(p)]
                m.mul_(b1).add_((1 - b1) * g)
                v.mul_(b2).add_((1 - b2) * g * g)
                m_hat = m / (1 - b1**self.t)
                v_hat = v / (1 - b2**self.t)
                step = m_hat / (torch.sqrt(v_hat) + self.eps)
                if meta > 0:
                    w_b = torch.where(p >= 0, torch.ones_like(p), -torch.ones_like(p))
                    f_meta = torch.ones_like(p) - torch.tanh(meta * torch.abs(p)) ** 2
                    step = torch.where(w_b * m > 0, f_meta * step, step)
                p.sub_(self.lr * step)

    def zero_grad(self):
        for params, _ in self.groups:
            for p in params:
                p.grad = None


# --- timing -------------------------------------------------------------------------------------
def _train(model, opt, x, y, steps: int) -> float:
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return BATCH * steps / (time.perf_counter() - start)


def compare(hidden: list[int], steps: int, rounds: int) -> tuple[float, float]:
    """Median samples/s of (spinapse, plain) over ``rounds`` alternating rounds."""
    torch.manual_seed(0)
    ours = BNN(784, hidden, 10)
    plain = PlainBNN(hidden, ours)
    opt_ours = bnn_optimizer(ours, [META] * (len(hidden) + 1), lr=0.005, weight_decay=1e-7)
    opt_plain = PlainAdamMeta(plain.w, [p for bn in plain.bns for p in bn.parameters()])
    x = torch.rand(BATCH * steps, 784)
    y = torch.randint(0, 10, (x.shape[0],))
    _train(ours, opt_ours, x, y, 2)  # warm-up: compilation, moments, allocations
    _train(plain, opt_plain, x, y, 2)
    a, b = [], []
    for _ in range(rounds):
        a.append(_train(ours, opt_ours, x, y, steps))
        b.append(_train(plain, opt_plain, x, y, steps))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--steps", type=int, default=5, help="batches per round on the 4096 net (512: 20x)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = {
        "784-4096-4096-10": ([4096, 4096], args.steps),
        "784-512-512-10": ([512, 512], 20 * args.steps),
    }
    print(f"training throughput, batch {BATCH}, m = {META}, {args.threads} thread(s)")
    print(f"{'network':20s}{'spinapse':>12s}{'plain':>12s}{'ratio':>8s}   (samples/s)")
    for name, (hidden, steps) in nets.items():
        ours, plain = compare(hidden, steps, args.rounds)
        print(f"{name:20s}{ours:12.0f}{plain:12.0f}{ours / plain:8.2f}", flush=True)


if __name__ == "__main__":
    main()
