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


def _check_batch(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, field: str, smallest: int
) -> None:
    if batch_size < smallest:
        why = " (training normalises with batch statistics)" if smallest == 2 else ""
        raise ValueError(f"{field} must be >= {smallest}{why}, got {batch_size}")
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
    _check_batch(x, y, batch_size, "batch_size", 2)
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
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Classes (int64 ``[N]``, first index of the largest logit) of ``x`` in batches, in order.

    ``model`` is put in eval mode. Batches are cut as in :func:`evaluate` (a last batch of one
    sample joins the previous one, for batch statistics).

    Raises
    ------
    ValueError
        If ``batch_size < 1``, or ``x`` is not ``[N >= 1, D]``.
    """
    if batch_size < 1:
        raise ValueError(f"test_batch_size must be >= 1, got {batch_size}")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty x [N, D], got {tuple(x.shape)}")
    model.eval()
    bounds = list(range(0, x.shape[0], batch_size)) + [x.shape[0]]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 2:
        bounds.pop(-2)
    return torch.cat([model(x[a:b]).argmax(dim=1) for a, b in zip(bounds[:-1], bounds[1:])])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Accuracy (fraction in ``[0, 1]``) of ``model`` on ``(x, y)``, batches in order.

    With stored (population or running) BatchNorm statistics the result does not depend on
    ``batch_size`` (memory only). With ``test_statistics = "batch"`` each test batch is
    normalised with its own statistics (the authors' code, test batch 1000); a last batch of one
    sample is then merged into the previous one.

    Raises
    ------
    ValueError
        If ``batch_size < 1`` or shapes disagree (and, from BatchNorm, if batch statistics are
        asked of batches of one).
    """
    _check_batch(x, y, batch_size, "test_batch_size", 1)
    if x.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty set")
    return int((predict(model, x, batch_size) == y).sum()) / x.shape[0]
