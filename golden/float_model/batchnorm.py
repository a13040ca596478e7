"""BatchNorm of the metaplastic BNN, with the statistics used at test time chosen explicitly.

Training always normalises with the statistics of the training batch (biased variance), as in
Ioffe & Szegedy (ICML 2015) and Laborieux et al., Nat. Commun. 12, 2549 (2021). What a test sample
is normalised with is the ``test_statistics`` mode:

- ``"population"`` (the spinapse default): the mean and biased variance of each layer's
  pre-activations over a whole data set (a task's training set, after training it), stored in
  ``running_mean`` / ``running_var`` by :func:`store_population_statistics`. A prediction then
  depends on its own input only (any batch size, any order), and these are the statistics that
  the integer export folds into thresholds (FINN, Umuroglu et al., FPGA 2017, Sec. 4.2.2).
- ``"running"``: PyTorch's exponential running averages (``momentum``), updated at every training
  batch. Cheap, but a mix of the weights seen during the last ~1/momentum steps.
- ``"batch"``: the statistics of each test batch, what the authors' published code does
  (``track_running_stats=False``). A prediction then depends on the other samples of its batch
  (batches >= 2), so accuracies change with the test batch size and order.

Why population statistics by default: they are exact for the network as it stands after the task
(running averages lag behind a network whose binary weights flip), they are what the hardware's
thresholds hold, and they keep the paper's training untouched (training uses batch statistics in
every mode, so a run's weights do not depend on the mode).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

TestStatistics = Literal["population", "running", "batch"]
TEST_STATISTICS: tuple[str, ...] = ("population", "running", "batch")


class TaskBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d(affine=True)`` whose test-time statistics follow ``test_statistics``.

    Parameters
    ----------
    num_features : int
        Width of the layer, >= 1.
    eps : float
        Added to the variance, > 0 (PyTorch and the authors' code: 1e-5).
    momentum : float
        Running-average factor in ``(0, 1]`` (PyTorch default 0.1); used by ``"running"`` only.
    gamma_init : float
        Initial ``gamma`` (scale); ``beta`` starts at 0 (PyTorch and the authors' code: 1.0).
    test_statistics : {"population", "running", "batch"}
        See the module docstring.

    Attributes
    ----------
    running_mean, running_var : torch.Tensor
        float32 ``[num_features]``: the stored statistics (population or running).
    stats_samples : torch.Tensor
        int64 scalar: how many samples the stored population statistics were computed over
        (0 before :func:`store_population_statistics`).

    Shapes
    ------
    ``forward(x)``: float ``[batch, num_features]`` -> same. Training needs ``batch >= 2``; so
    does evaluation in ``"batch"`` mode. ``"population"`` and ``"running"`` evaluate any batch.

    Raises
    ------
    ValueError
        If a setting is out of range; in ``forward``, if a batch is too small for batch
        statistics, or if ``"population"`` statistics are used before they were stored.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        gamma_init: float = 1.0,
        test_statistics: TestStatistics = "population",
    ) -> None:
        if test_statistics not in TEST_STATISTICS:
            raise ValueError(
                f"test_statistics must be one of {TEST_STATISTICS}, got {test_statistics!r}"
            )
        if not eps > 0:
            raise ValueError(f"bn_eps must be > 0, got {eps}")
        if not 0 < momentum <= 1:
            raise ValueError(f"bn_momentum must be in (0, 1], got {momentum}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        self.test_statistics = test_statistics
        self.register_buffer("stats_samples", torch.zeros((), dtype=torch.long))
        with torch.no_grad():
            self.weight.fill_(float(gamma_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training or self.test_statistics == "batch"
        if batch_stats:
            if x.shape[0] < 2:
                what = "training" if self.training else "evaluation with test_statistics 'batch'"
                raise ValueError(
                    f"{what} needs batches of >= 2 samples (BatchNorm normalises with the "
                    f"statistics of the batch), got a batch of {x.shape[0]}"
                )
            track = self.training and self.test_statistics == "running"
            return F.batch_norm(
                x,
                self.running_mean if track else None,
                self.running_var if track else None,
                self.weight,
                self.bias,
                training=True,
                momentum=self.momentum,
                eps=self.eps,
            )
        if self.test_statistics == "population" and int(self.stats_samples) == 0:
            raise ValueError(
                "test_statistics 'population': no statistics stored yet; call "
                "store_population_statistics(model, x_train) after training"
            )
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


@torch.no_grad()
def layer_statistics(pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance over the rows of ``pre`` (float ``[N, C]``), float64 ``[C]``."""
    p = pre.to(torch.float64)
    mean = p.mean(dim=0)
    return mean, (p - mean).square().mean(dim=0)


def merge_statistics(
    count: int, mean: torch.Tensor, m2: torch.Tensor, pre: torch.Tensor
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Add a chunk ``pre`` (``[n, C]``) to running ``(count, mean, M2)`` (Chan et al. 1979).

    ``M2`` is the sum of squared deviations; the biased variance is ``M2 / count``. float64.
    """
    n = pre.shape[0]
    c_mean, c_var = layer_statistics(pre)
    total = count + n
    delta = c_mean - mean
    new_mean = mean + delta * (n / total)
    new_m2 = m2 + c_var * n + delta.square() * (count * n / total)
    return total, new_mean, new_m2
