"""The binarized multilayer perceptron of the metaplasticity paper, with task-dependent BatchNorm.

Source: Laborieux et al., Nat. Commun. 12, 2549 (2021): fully connected 784-4096-4096-10; each
layer is a binarized linear layer (no bias) followed by BatchNorm1d(affine=True); hidden layers
end in a sign activation; the output layer ends at BatchNorm (softmax cross-entropy in the loss).
The first layer's input is not binarized. BatchNorm uses batch statistics at train and test time
(``track_running_stats=False``), as the authors' current code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spinapse.golden.float_model.binarized import BinaryLinear, sign_ste


class BNN(nn.Module):
    """Binarized MLP ``in_features -> hidden[0] -> ... -> out_features``.

    Parameters
    ----------
    in_features : int
        Input size (784 for 28x28 digits).
    hidden : sequence of int
        Hidden layer widths, e.g. ``(4096, 4096)`` in the paper.
    out_features : int
        Number of classes.
    init_width : float
        Hidden weights start uniform in ``(-init_width, init_width)`` (paper: 0.05).
    bn_eps : float
        BatchNorm epsilon (PyTorch default 1e-5).

    Shapes
    ------
    ``forward(x)``: ``x`` float ``[batch, in_features]`` (pixels in [0, 1]) -> logits
    ``[batch, out_features]``. Batch statistics are used, so ``batch >= 2``.

    Raises
    ------
    ValueError
        If any width is smaller than 1.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (4096, 4096),
        out_features: int = 10,
        init_width: float = 0.05,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        widths = [int(in_features), *[int(h) for h in hidden], int(out_features)]
        if any(w < 1 for w in widths):
            raise ValueError(f"BNN widths must all be >= 1, got {widths}")
        self.widths = tuple(widths)
        self.linears = nn.ModuleList(
            BinaryLinear(a, b, init_width=init_width) for a, b in zip(widths[:-1], widths[1:])
        )
        self.bns = nn.ModuleList(
            nn.BatchNorm1d(b, eps=bn_eps, affine=True, track_running_stats=False)
            for b in widths[1:]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.linears)
        for i, (lin, bn) in enumerate(zip(self.linears, self.bns)):
            x = bn(lin(x))
            if i < n - 1:
                x = sign_ste(x)
        return x

    def weight_parameters(self) -> list[nn.Parameter]:
        """Hidden weights ``W_h`` of each layer, input side first (metaplastic parameters)."""
        return [lin.weight for lin in self.linears]

    def bn_parameters(self) -> list[nn.Parameter]:
        """BatchNorm ``gamma`` and ``beta`` of every layer (trained with plain Adam)."""
        return [p for bn in self.bns for p in bn.parameters()]

    def bn_state(self) -> list[dict[str, torch.Tensor]]:
        """A detached copy of every layer's BatchNorm parameters (task-dependent BN)."""
        return [{k: v.detach().clone() for k, v in bn.state_dict().items()} for bn in self.bns]

    def load_bn_state(self, state: Sequence[dict[str, torch.Tensor]]) -> None:
        """Load BatchNorm parameters saved by :meth:`bn_state`.

        Raises
        ------
        ValueError
            If the number of layers differs.
        """
        if len(state) != len(self.bns):
            raise ValueError(f"bn state has {len(state)} layers, model has {len(self.bns)}")
        for bn, s in zip(self.bns, state):
            bn.load_state_dict(s)
