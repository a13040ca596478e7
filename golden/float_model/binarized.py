"""Binarization with the straight-through estimator, and the binarized linear layer.

Source: Laborieux et al., "Synaptic metaplasticity in binarized neural networks",
Nat. Commun. 12, 2549 (2021), Methods; Courbariaux/Hubara et al. (2016) for the estimator.

Conventions used everywhere in spinapse (golden, integer models, RTL):

- ``sign`` maps to {-1, +1} with ``sign(0) = +1`` (hardware stores one bit: 1 means +1).
- The hidden weight ``W_h`` is the stored float parameter; the forward pass uses
  ``W_b = sign(W_h)`` with no scaling factor.
- Activations: forward ``sign(x)``, backward passes the gradient where ``|x| <= 1`` (the STE mask).
- Weights: the gradient with respect to ``W_b`` is applied to ``W_h`` unchanged (no mask).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Return ``sign(x)`` in {-1, +1} with ``sign(0) = +1``, same shape and dtype as ``x``."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class SignSTE(torch.autograd.Function):
    """Sign activation; backward is the straight-through estimator masked to ``|x| <= 1``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return binarize(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


class BinarizeWeight(torch.autograd.Function):
    """``W_b = sign(W_h)`` forward; the gradient reaches ``W_h`` unchanged (identity backward)."""

    @staticmethod
    def forward(ctx, w_h: torch.Tensor) -> torch.Tensor:
        return binarize(w_h)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Sign activation with the masked straight-through estimator (see :class:`SignSTE`)."""
    return SignSTE.apply(x)


class BinaryLinear(nn.Linear):
    """Linear layer without bias whose forward uses ``W_b = sign(W_h)``.

    Parameters
    ----------
    in_features, out_features : int
        Layer size; ``weight`` (the hidden weight ``W_h``) has shape
        ``[out_features, in_features]``.
    init_width : float
        ``W_h`` is initialised uniform in ``(-init_width, init_width)``; the paper uses 0.05.

    Raises
    ------
    ValueError
        If a size is not positive or ``init_width`` is not positive.
    """

    def __init__(self, in_features: int, out_features: int, init_width: float = 0.05) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"BinaryLinear sizes must be >= 1, got in={in_features}, out={out_features}"
            )
        if not init_width > 0:
            raise ValueError(f"init_width must be > 0, got {init_width}")
        super().__init__(in_features, out_features, bias=False)
        self.init_width = init_width
        with torch.no_grad():
            self.weight.uniform_(-init_width, init_width)

    def binary_weight(self) -> torch.Tensor:
        """``W_b``: shape ``[out_features, in_features]``, values in {-1, +1}, weight's dtype."""
        return binarize(self.weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, BinarizeWeight.apply(self.weight))
