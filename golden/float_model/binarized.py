"""Binarization with the straight-through estimator, and the binarized linear layer.

Source: Laborieux et al., "Synaptic metaplasticity in binarized neural networks",
Nat. Commun. 12, 2549 (2021), Methods; Courbariaux/Hubara et al. (2016) for the estimator.

Conventions used everywhere in spinapse (golden, integer models, RTL):

- ``sign`` maps to {-1, +1} with ``sign(0) = +1`` (hardware stores one bit: 1 means +1).
- The hidden weight ``W_h`` is the stored float parameter; the forward pass uses
  ``W_b = sign(W_h)`` with no scaling factor.
- Activations: forward ``sign(x)``, backward passes the gradient where ``|x| <= 1`` (the STE mask).
- Weights: the gradient with respect to ``W_b`` is applied to ``W_h`` unchanged (no mask).

Speed: :class:`BinaryLinear` keeps ``W_b`` in a buffer instead of binarizing ``W_h`` in every
forward pass. The buffer is rebuilt when ``W_h`` has changed since it was last written (PyTorch's
in-place version counter of the parameter), and :class:`spinapse.golden.float_model.adam_meta.
AdamMeta` writes it in the same pass that updates ``W_h``, so a training step binarizes nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Return ``sign(x)`` in {-1, +1} with ``sign(0) = +1``, same shape and dtype as ``x``."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def binarize_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write ``sign(x)`` (``sign(0) = +1``) into ``out`` (same shape and dtype) and return it."""
    one = torch.ones((), dtype=out.dtype)
    return torch.where(x >= 0, one, -one, out=out)


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


class _BinaryMatmul(torch.autograd.Function):
    """``x W_b^T`` whose weight gradient ``g^T x`` goes to ``W_h`` (the identity STE)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w_h: torch.Tensor, w_b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w_b)
        return F.linear(x, w_b)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, w_b = ctx.saved_tensors
        grad_x = grad_output @ w_b if ctx.needs_input_grad[0] else None
        grad_w = grad_output.t() @ x if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


def mark_binary_written(w_h: torch.Tensor) -> None:
    """Record that the ``W_b`` buffer of ``w_h`` was just written from its current value.

    Called by an optimizer that writes ``W_b`` in its update pass (see the module docstring).
    """
    w_h._spinapse_binary_version = w_h._version


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
        # Not saved in state_dict: it is a function of W_h.
        self.register_buffer("weight_b", torch.empty_like(self.weight), persistent=False)

    def binary_weight(self) -> torch.Tensor:
        """``W_b``: shape ``[out_features, in_features]``, values in {-1, +1}, weight's dtype.

        A new tensor (the caller may keep it while ``W_h`` changes)."""
        return binarize(self.weight.detach())

    def current_binary(self) -> torch.Tensor:
        """The ``W_b`` buffer, rebuilt first if ``W_h`` changed since it was written.

        Read-only for the caller: the next update overwrites it in place. ``W_h`` changed by
        writing to ``weight.data`` directly escapes the version counter; use
        ``with torch.no_grad(): weight.copy_(...)`` instead.
        """
        w = self.weight
        if (
            getattr(w, "_spinapse_binary_version", None) != w._version
            or self.weight_b.shape != w.shape
        ):
            with torch.no_grad():
                if self.weight_b.shape != w.shape or self.weight_b.dtype != w.dtype:
                    self.weight_b = torch.empty_like(w)
                binarize_into(w.detach(), self.weight_b)
            mark_binary_written(w)
        return self.weight_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BinaryMatmul.apply(x, self.weight, self.current_binary())
