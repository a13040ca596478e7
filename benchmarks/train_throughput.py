"""Training throughput of the float metaplastic BNN: samples per second, measured in one run.

Networks: the paper's 784-4096-4096-10 (Laborieux et al., Nat. Commun. 12, 2549, 2021) and the
default network of ``spinapse run`` (``spinapse/configs/default.toml``), both at batch 100 with
Adam_meta (m > 0) and with m = 0, on random inputs (throughput does not depend on the values).

Usage: ``.venv/bin/python benchmarks/train_throughput.py [--threads N] [--steps N]``
"""

from __future__ import annotations

import argparse
import time

import torch

from spinapse.config import load_config
from spinapse.experiments.learner import GoldenLearner
from spinapse.golden.float_model.bnn import BNN


def samples_per_second(hidden: list[int], meta: float, batch: int, steps: int) -> float:
    """Train ``steps`` batches of ``batch`` random digits-shaped inputs; return samples/s."""
    torch.manual_seed(0)
    model = BNN(784, hidden, 10)
    learner = GoldenLearner(model, [meta] * (len(hidden) + 1), batch_size=batch)
    x = torch.rand(batch * (steps + 1), 784)
    y = torch.randint(0, 10, (x.shape[0],))
    learner.start_task(0)
    gen = torch.Generator().manual_seed(0)
    learner.train_epoch(x[:batch], y[:batch], gen)  # warm-up: allocations, moments
    start = time.perf_counter()
    learner.train_epoch(x[batch:], y[batch:], gen)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--steps",
        type=int,
        default=10,
        help="timed batches per network (default 10; the default network gets 10x more)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config()
    meta = float(cfg.method.meta_per_layer(len(cfg.model.hidden) + 1)[0])
    nets = {
        "paper 784-4096-4096-10": ([4096, 4096], args.steps),
        "default 784-" + "-".join(map(str, cfg.model.hidden)) + "-10": (
            list(cfg.model.hidden),
            10 * args.steps,
        ),
    }
    rows = []
    for name, (hidden, steps) in nets.items():
        for m in (0.0, meta):
            rows.append((name, m, samples_per_second(hidden, m, 100, steps)))
    base = rows[0][2]
    print(f"training throughput, batch 100, {args.threads} thread(s)")
    print(f"{'network':30s}{'m':>8s}{'samples/s':>12s}{'x paper m=0':>14s}")
    for name, m, sps in rows:
        print(f"{name:30s}{m:8g}{sps:12.0f}{sps / base:14.2f}")


if __name__ == "__main__":
    main()
