"""One epoch of training and one evaluation pass: the float BNN's two basic loops.

Used by the continual-learning runner and by anyone who needs a small trained BNN quickly (the
RTL and co-simulation tests). Loss: softmax cross-entropy on the output BatchNorm, as in
Laborieux et al., Nat. Commun. 12, 2549 (2021).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def _check_batch(x: torch.Tensor, y: torch.Tensor, batch_size: int, field: str) -> None:
    if batch_size < 2:
        raise ValueError(
            f"{field} must be >= 2 (BatchNorm uses batch statistics), got {batch_size}"
        )
    if x.dim() != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected x [N, D] and y [N], got {tuple(x.shape)} and {tuple(y.shape)}")


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> float:
    """Train ``model`` for one epoch over ``(x, y)`` in a seeded random order.

    Parameters
    ----------
    model : nn.Module
        Maps float32 ``[B, D]`` to logits ``[B, C]``; put in train mode here.
    optimizer : torch.optim.Optimizer
        Stepped once per batch (``AdamMeta`` for the paper's rule).
    x, y : torch.Tensor
        float32 ``[N, D]`` inputs and int64 ``[N]`` labels.
    batch_size : int
        >= 2. A last batch smaller than 2 is dropped (batch-statistics BatchNorm needs two).
    generator : torch.Generator, optional
        Source of the shuffle; the same generator state gives the same batches.
    penalty : callable, optional
        Extra loss term added to the cross-entropy of every batch (EWC).

    Returns
    -------
    float
        Mean cross-entropy (without penalty) over the batches.

    Raises
    ------
    ValueError
        If ``batch_size < 2`` or shapes disagree.
    """
    _check_batch(x, y, batch_size, "batch_size")
    model.train()
    order = torch.randperm(x.shape[0], generator=generator)
    total, batches = 0.0, 0
    for idx in torch.split(order, batch_size):
        if idx.numel() < 2:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        full = loss + penalty() if penalty is not None else loss
        full.backward()
        optimizer.step()
        total += float(loss.detach())
        batches += 1
    return total / max(batches, 1)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Accuracy (fraction in ``[0, 1]``) of ``model`` on ``(x, y)``, batches in order.

    BatchNorm uses the statistics of each test batch (paper: test batch 1000). A last batch of
    one sample is merged into the previous one.

    Raises
    ------
    ValueError
        If ``batch_size < 2`` or shapes disagree.
    """
    _check_batch(x, y, batch_size, "test_batch_size")
    if x.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty set")
    model.eval()
    bounds = list(range(0, x.shape[0], batch_size)) + [x.shape[0]]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 2:
        bounds.pop(-2)
    correct = 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        correct += int((model(x[a:b]).argmax(dim=1) == y[a:b]).sum())
    return correct / x.shape[0]
