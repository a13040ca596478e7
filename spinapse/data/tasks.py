"""Continual-learning task streams: permuted pixels, split classes, and data-set sequences.

Sources: permuted MNIST (Goodfellow et al. 2013; Kirkpatrick et al. 2017) and the protocols of
Laborieux et al., Nat. Commun. 12, 2549 (2021): permuted MNIST, and MNIST then Fashion-MNIST.

A :class:`Task` is a view of an :class:`ImageSet` (a pixel permutation and/or a class subset) that
is materialised on demand, so long streams of large sets do not hold every copy in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spinapse.data.image_set import ImageSet


@dataclass(frozen=True)
class Task:
    """One task of a stream.

    Attributes
    ----------
    name : str
        ``"permuted-3"``, ``"classes-4-5"``, ``"fashion"``...
    images : ImageSet
        The underlying set.
    permutation : torch.Tensor or None
        int64 ``[D]``: input pixel ``i`` of the task is pixel ``permutation[i]`` of the image.
    classes : tuple of int or None
        Only images of these labels (labels keep their original values, ``n_classes`` outputs).
    """

    name: str
    images: ImageSet
    permutation: torch.Tensor | None = None
    classes: tuple[int, ...] | None = None

    def _view(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.classes is not None:
            keep = torch.isin(y, torch.tensor(self.classes, dtype=torch.int64))
            x, y = x[keep], y[keep]
        if self.permutation is not None:
            x = x[:, self.permutation]
        return x.contiguous(), y.contiguous()

    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs float32 ``[N, D]`` and labels int64 ``[N]`` of this task."""
        return self._view(self.images.x_train, self.images.y_train)

    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Test inputs float32 ``[M, D]`` and labels int64 ``[M]`` of this task."""
        return self._view(self.images.x_test, self.images.y_test)


def pixel_permutation(n_pixels: int, seed: int, task: int) -> torch.Tensor:
    """The seeded pixel permutation of task ``task`` (int64 ``[n_pixels]``).

    Task 0 is the identity. Task ``k > 0`` draws from ``numpy.random.default_rng([seed, k])``,
    so each permutation depends on ``(seed, k)`` only, not on how many tasks are built.

    Raises
    ------
    ValueError
        If ``n_pixels < 1``, ``seed < 0`` or ``task < 0``.
    """
    if n_pixels < 1:
        raise ValueError(f"n_pixels must be >= 1, got {n_pixels}")
    if seed < 0 or task < 0:
        raise ValueError(f"seed and task must be >= 0, got seed={seed}, task={task}")
    if task == 0:
        return torch.arange(n_pixels, dtype=torch.int64)
    perm = np.random.default_rng([seed, task]).permutation(n_pixels)
    return torch.from_numpy(perm.astype(np.int64))


def permuted_tasks(images: ImageSet, count: int, seed: int) -> list[Task]:
    """``count`` permuted-pixel tasks over ``images``, named ``permuted-1`` ... ``permuted-<count>``
    (numbered from 1, as every table prints them); the first is unpermuted.

    Raises
    ------
    ValueError
        If ``count < 1``.
    """
    if count < 1:
        raise ValueError(f"tasks.count must be >= 1, got {count}")
    return [
        Task(
            f"permuted-{k + 1}",
            images,
            None if k == 0 else pixel_permutation(images.in_features, seed, k),
        )
        for k in range(count)
    ]


def split_class_tasks(images: ImageSet, count: int) -> list[Task]:
    """Split the classes into ``count`` consecutive groups (10 classes, 5 tasks: 0-1, 2-3, ...).

    Labels keep their original values. Groups differ in size by at most one class.

    Raises
    ------
    ValueError
        If ``count`` is not in ``[1, n_classes]``.
    """
    if not 1 <= count <= images.n_classes:
        raise ValueError(
            f"tasks.count must be in [1, {images.n_classes}] for split classes, got {count}"
        )
    groups = np.array_split(np.arange(images.n_classes), count)
    return [
        Task(
            "classes-" + "-".join(str(int(c)) for c in g), images, classes=tuple(int(c) for c in g)
        )
        for g in groups
    ]


def sequence_tasks(sets: Sequence[ImageSet]) -> list[Task]:
    """One unpermuted task per set, in order (MNIST then Fashion-MNIST).

    Raises
    ------
    ValueError
        If the list is empty or the sets differ in input width or number of classes.
    """
    if not sets:
        raise ValueError("a data-set sequence needs at least one set")
    first = sets[0]
    for s in sets[1:]:
        if (s.in_features, s.n_classes) != (first.in_features, first.n_classes):
            raise ValueError(
                f"sets of a sequence must share input width and classes: {first.name} has "
                f"({first.in_features}, {first.n_classes}), {s.name} has "
                f"({s.in_features}, {s.n_classes})"
            )
    return [Task(s.name, s) for s in sets]
