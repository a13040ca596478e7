"""MNIST or Fashion-MNIST from the four standard IDX files in a folder the user gives.

File names (raw or with ``.gz``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, as distributed by LeCun et al. (MNIST)
and Xiao et al. 2017 (Fashion-MNIST). Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from spinapse.data.idx import IdxError, read_idx
from spinapse.data.image_set import ImageSet

STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def find_idx_file(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first).

    Raises
    ------
    FileNotFoundError
        If neither exists; the message names both.
    """
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: neither {stem} nor {stem}.gz found")


def load_idx_folder(folder: str | os.PathLike[str], name: str = "mnist") -> ImageSet:
    """Load the train and test images and labels of one IDX data set.

    Returns
    -------
    ImageSet
        ``x`` float32 ``[N, rows * cols]`` = uint8 / 255; ``y`` int64 in ``[0, 9]``.

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing.
    IdxError
        If a file is malformed (see :func:`read_idx`), images are not uint8 ``[N, rows, cols]``,
        labels not uint8 ``[N]``, label values above 9, or the image and label counts differ.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: IDX data folder does not exist")
    out: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        ipath = find_idx_file(root, STEMS[f"x_{split}"])
        lpath = find_idx_file(root, STEMS[f"y_{split}"])
        images, labels = read_idx(ipath), read_idx(lpath)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise IdxError(
                f"{ipath}: images must be uint8 [N, rows, cols], got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise IdxError(f"{lpath}: labels must be uint8 [N], got {labels.dtype} {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise IdxError(
                f"{ipath} has {images.shape[0]} images but {lpath} has {labels.shape[0]} labels"
            )
        if labels.size and int(labels.max()) > 9:
            raise IdxError(f"{lpath}: label {int(labels.max())} outside [0, 9]")
        flat = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
        out[f"x_{split}"] = torch.from_numpy(flat)
        out[f"y_{split}"] = torch.from_numpy(labels.astype(np.int64))
    return ImageSet(name, out["x_train"], out["y_train"], out["x_test"], out["y_test"])
