"""A trained digit classifier and its integer export: the real-data case of the co-simulations.

:func:`trained_digit_case` trains a float :class:`spinapse.golden.float_model.bnn.BNN` on the
embedded 3000 training digits with binarized +-1 input (plain Adam, batch 100, lr 0.005, seeded),
exports it with :func:`spinapse.golden.integer_model.inference.export_integer` (BatchNorm statistics
over the training set) and returns it with the binarized 2000 test digits. The trained state is
cached in ``sim_build/cache`` (keyed by widths, epochs and seed), so a test session trains once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from spinapse.cosim.runner import sim_build_root
from spinapse.golden.float_model.bnn import BNN
from spinapse.golden.integer_model.inference import IntegerBNN, binarize_pixels, export_integer
from spinapse.io import atomic_path


@dataclass(frozen=True)
class DigitCase:
    """A trained model on the embedded digits.

    Attributes
    ----------
    model : BNN
        The float model (BatchNorm parameters of the single digits task).
    integer : IntegerBNN
        Its integer export.
    train_x, test_x : torch.Tensor
        float32 ``[3000, 784]`` and ``[2000, 784]`` images in ``[0, 1]``.
    test_bits : numpy.ndarray
        uint8 ``[2000, 784]`` binarized test images.
    test_y : numpy.ndarray
        int64 ``[2000]`` test labels.
    """

    model: BNN
    integer: IntegerBNN
    train_x: torch.Tensor
    test_x: torch.Tensor
    test_bits: np.ndarray
    test_y: np.ndarray


def _digits():
    from spinapse.data.digits import load_digits

    return load_digits(n_train=3000, seed=0)


def train_bnn(
    hidden: Sequence[int], x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int
) -> BNN:
    """Train ``BNN(784, hidden, 10)`` with Adam (lr 0.005, batch 100) on binarized +-1 input.

    Raises
    ------
    ValueError
        If ``epochs`` is smaller than 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    model = BNN(x.shape[1], hidden, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    xb = torch.from_numpy(binarize_pixels(x)).float() * 2 - 1
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.split(torch.randperm(x.shape[0], generator=gen), 100):
            if idx.numel() < 2:
                continue
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb[idx]), y[idx]).backward()
            opt.step()
    return model


def trained_digit_case(
    hidden: Sequence[int] = (64, 64), epochs: int = 5, seed: int = 0
) -> DigitCase:
    """Train (or load from the cache) a digit classifier and export it; see the module docstring.

    Raises
    ------
    ValueError
        If a width is smaller than 1 or ``epochs`` smaller than 1.
    """
    hidden = tuple(int(h) for h in hidden)
    data = _digits()
    # v2: shuffled split and stored BatchNorm statistics in the state (issue 8).
    key = "-".join(str(w) for w in (784, *hidden, 10)) + f"_e{epochs}_s{seed}_v2"
    cache = sim_build_root() / "cache" / f"digits_{key}.pt"
    if cache.exists():
        model = BNN(784, hidden, 10)
        model.load_state_dict(torch.load(cache, weights_only=True))
    else:
        with torch.random.fork_rng():
            model = train_bnn(hidden, data.x_train, data.y_train, epochs, seed)
        with atomic_path(cache) as tmp:
            torch.save(model.state_dict(), tmp)
    model.eval()
    # The float model evaluates with the population statistics of its (+-1 coded) training set,
    # the statistics its integer export folds into thresholds.
    model.store_statistics(torch.from_numpy(binarize_pixels(data.x_train)).float() * 2 - 1)
    integer = export_integer(model, data.x_train)
    return DigitCase(
        model=model,
        integer=integer,
        train_x=data.x_train,
        test_x=data.x_test,
        test_bits=binarize_pixels(data.x_test),
        test_y=data.y_test.numpy(),
    )
