"""The binarized multilayer perceptron of the metaplasticity paper, with task-dependent BatchNorm.

Source: Laborieux et al., Nat. Commun. 12, 2549 (2021): fully connected 784-4096-4096-10; each
layer is a binarized linear layer (no bias) followed by BatchNorm1d(affine=True); hidden layers
end in a sign activation; the output layer ends at BatchNorm (softmax cross-entropy in the loss).
The first layer's input is not binarized.

BatchNorm trains on batch statistics; what it uses at test time is ``test_statistics``
(:mod:`spinapse.golden.float_model.batchnorm`): by default the population statistics of a task's
training set, stored after training it with :meth:`BNN.store_statistics`, so that a prediction
does not depend on the other samples of its test batch. The authors' code evaluates with the
statistics of each test batch (``test_statistics = "batch"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from spinapse.golden.float_model.batchnorm import TaskBatchNorm, TestStatistics, merge_statistics
from spinapse.golden.float_model.binarized import BinaryLinear, binarize, sign_ste


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
        BatchNorm epsilon, > 0 (PyTorch default and the authors' code: 1e-5).
    bn_momentum : float
        Running-average factor in (0, 1] for ``test_statistics = "running"`` (PyTorch: 0.1).
    bn_gamma_init : float
        Initial BatchNorm scale ``gamma`` (PyTorch default and the authors' code: 1.0).
    test_statistics : {"population", "running", "batch"}
        Statistics used at test time (see :mod:`spinapse.golden.float_model.batchnorm`).

    Shapes
    ------
    ``forward(x)``: ``x`` float ``[batch, in_features]`` (pixels in [0, 1]) -> logits
    ``[batch, out_features]``. Training needs ``batch >= 2`` (batch statistics); evaluation
    with population or running statistics takes any batch, one sample included.

    Raises
    ------
    ValueError
        If any width is smaller than 1 or a BatchNorm setting is out of range.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (4096, 4096),
        out_features: int = 10,
        init_width: float = 0.05,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        bn_gamma_init: float = 1.0,
        test_statistics: TestStatistics = "population",
    ) -> None:
        super().__init__()
        widths = [int(in_features), *[int(h) for h in hidden], int(out_features)]
        if any(w < 1 for w in widths):
            raise ValueError(f"BNN widths must all be >= 1, got {widths}")
        self.widths = tuple(widths)
        self.test_statistics = test_statistics
        self.linears = nn.ModuleList(
            BinaryLinear(a, b, init_width=init_width) for a, b in zip(widths[:-1], widths[1:])
        )
        self.bns = nn.ModuleList(
            TaskBatchNorm(b, bn_eps, bn_momentum, bn_gamma_init, test_statistics)
            for b in widths[1:]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.linears)
        for i, (lin, bn) in enumerate(zip(self.linears, self.bns)):
            x = bn(lin(x))
            if i < n - 1:
                x = sign_ste(x)
        return x

    @torch.no_grad()
    def store_statistics(
        self,
        x: torch.Tensor,
        weights: Sequence[torch.Tensor] | None = None,
        chunk: int = 4096,
    ) -> None:
        """Store each layer's population statistics over ``x`` in its BatchNorm buffers.

        Layer after layer: layer ``l``'s mean and biased variance are those of its
        pre-activations over all of ``x``, with the earlier layers already normalised by the
        statistics stored for them (what evaluation with ``"population"`` then computes).
        float64 accumulation (Chan et al.'s pairwise merge over chunks), stored as float32.

        Parameters
        ----------
        x : torch.Tensor
            float32 ``[N, in_features]``, ``N >= 2`` (a task's training set).
        weights : sequence of torch.Tensor, optional
            The ``W_b`` of each layer (``[out, in]``, values +-1) when they are not
            ``sign(W_h)``: the weights a device array actually holds.
        chunk : int
            Rows per matrix product, >= 1 (memory only; the result does not depend on it
            beyond float64 rounding).

        Raises
        ------
        ValueError
            If ``x`` has fewer than two rows or the wrong width.
        """
        if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] != self.widths[0]:
            raise ValueError(
                f"statistics need x of shape [N >= 2, {self.widths[0]}], got {tuple(x.shape)}"
            )
        ws = [lin.binary_weight() for lin in self.linears] if weights is None else list(weights)
        h = x
        n = len(self.linears)
        for i, (w, bn) in enumerate(zip(ws, self.bns)):
            count = 0
            mean = torch.zeros(w.shape[0], dtype=torch.float64)
            m2 = torch.zeros(w.shape[0], dtype=torch.float64)
            for a in range(0, h.shape[0], chunk):
                pre = F.linear(h[a : a + chunk].to(w.dtype), w)
                count, mean, m2 = merge_statistics(count, mean, m2, pre)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(m2 / count)
            bn.stats_samples.fill_(count)
            if i < n - 1:
                # +-1 activations kept as int8: a 60000 x 4096 layer is 246 MB, not 983 MB.
                nxt = torch.empty(h.shape[0], w.shape[0], dtype=torch.int8)
                for a in range(0, h.shape[0], chunk):
                    pre = F.linear(h[a : a + chunk].to(w.dtype), w)
                    z = F.batch_norm(
                        pre, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
                    )
                    nxt[a : a + chunk] = binarize(z).to(torch.int8)
                h = nxt

    def weight_parameters(self) -> list[nn.Parameter]:
        """Hidden weights ``W_h`` of each layer, input side first (metaplastic parameters)."""
        return [lin.weight for lin in self.linears]

    def bn_parameters(self) -> list[nn.Parameter]:
        """BatchNorm ``gamma`` and ``beta`` of every layer (trained with plain Adam)."""
        return [p for bn in self.bns for p in bn.parameters()]

    def bn_state(self) -> list[dict[str, torch.Tensor]]:
        """A detached copy of every layer's BatchNorm state (task-dependent BN): ``weight``
        (gamma), ``bias`` (beta) and the stored statistics."""
        return [{k: v.detach().clone() for k, v in bn.state_dict().items()} for bn in self.bns]

    def load_bn_state(self, state: Sequence[dict[str, torch.Tensor]]) -> None:
        """Load BatchNorm state saved by :meth:`bn_state`.

        Raises
        ------
        ValueError
            If the number of layers differs.
        """
        if len(state) != len(self.bns):
            raise ValueError(f"bn state has {len(state)} layers, model has {len(self.bns)}")
        for bn, s in zip(self.bns, state):
            bn.load_state_dict(s)
