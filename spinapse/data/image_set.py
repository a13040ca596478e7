"""A labelled image set split into train and test tensors: what every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageSet:
    """Train and test images with integer labels.

    Attributes
    ----------
    name : str
        Short name (``"digits"``, ``"mnist"``, ``"fashion"``).
    x_train, x_test : torch.Tensor
        float32 ``[N, D]``, pixels scaled to ``[0, 1]`` (raw value / 255), rows flattened
        row-major from ``28 x 28`` images for the digit sets.
    y_train, y_test : torch.Tensor
        int64 ``[N]``, class labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes (10 for all the digit and clothing sets).

    Raises
    ------
    ValueError
        When shapes, dtypes or label ranges are inconsistent (the message names the field).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int = 10

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.dim() != 2:
                raise ValueError(
                    f"{self.name}: x_{split} must be float32 [N, D], got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"{self.name}: y_{split} must be int64 [{x.shape[0]}], got "
                    f"{y.dtype} {tuple(y.shape)}"
                )
            if y.numel() and not (0 <= int(y.min()) and int(y.max()) < self.n_classes):
                raise ValueError(
                    f"{self.name}: y_{split} labels must lie in [0, "
                    f"{self.n_classes}), got [{int(y.min())}, {int(y.max())}]"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                f"{self.name}: x_train and x_test widths differ: "
                f"{self.x_train.shape[1]} != {self.x_test.shape[1]}"
            )

    @property
    def in_features(self) -> int:
        """Input width ``D`` (784 for 28 x 28 images)."""
        return int(self.x_train.shape[1])
