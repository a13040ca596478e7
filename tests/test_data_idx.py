"""IDX files: round trip, and every kind of broken file gives an error naming file and problem."""

import gzip

import numpy as np
import pytest
import torch

from spinapse.data.idx import IdxError, read_idx, write_idx
from spinapse.data.idx_folder import load_idx_folder


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a-idx", "a-idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / name, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == (3, 4, 5)
    assert np.array_equal(a, b)


def test_header_bytes_are_the_mnist_layout(tmp_path):
    labels = np.array([7, 2, 1], dtype=np.uint8)
    raw = write_idx(tmp_path / "l", labels).read_bytes()
    # Magic 00 00 08 01, then the count 3 as big-endian uint32, then the bytes.
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    gz = write_idx(tmp_path / "l.gz", labels).read_bytes()
    assert gzip.decompress(gz) == raw


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_truncated_data(tmp_path):
    p = _write(tmp_path / "t", bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]))
    with pytest.raises(
        IdxError,
        match=r"t: truncated data \(3 bytes after the header, shape "
        r"\(5,\) needs 5\)",
    ):
        read_idx(p)


def test_truncated_header(tmp_path):
    with pytest.raises(IdxError, match="truncated header"):
        read_idx(_write(tmp_path / "h", bytes([0, 0, 8])))
    with pytest.raises(IdxError, match="need 16 for 3 dimensions"):
        read_idx(_write(tmp_path / "h3", bytes([0, 0, 8, 3, 0, 0, 0, 1])))


def test_bad_magic_and_unknown_type(tmp_path):
    with pytest.raises(IdxError, match=r"bad magic number 1f8b0801"):
        read_idx(_write(tmp_path / "m", bytes([0x1F, 0x8B, 8, 1, 0, 0, 0, 0])))
    with pytest.raises(IdxError, match="unknown data type 0x0a"):
        read_idx(_write(tmp_path / "u", bytes([0, 0, 0x0A, 1, 0, 0, 0, 0])))
    with pytest.raises(IdxError, match="zero dimensions"):
        read_idx(_write(tmp_path / "z", bytes([0, 0, 8, 0])))


def test_trailing_bytes(tmp_path):
    with pytest.raises(IdxError, match="2 unexpected bytes after the data"):
        read_idx(_write(tmp_path / "x", bytes([0, 0, 8, 1, 0, 0, 0, 1, 9, 9, 9])))


def test_gzip_corrupt_and_truncated(tmp_path):
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]) * 50)
    with pytest.raises(IdxError, match=r"c\.gz: corrupt gzip stream"):
        read_idx(_write(tmp_path / "c.gz", good[:-20]))
    with pytest.raises(IdxError, match=r"n\.gz: corrupt gzip stream"):
        read_idx(_write(tmp_path / "n.gz", b"not a gzip file at all"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such IDX file"):
        read_idx(tmp_path / "nothing")


def _mnist_folder(root, n_train=6, n_test=4, gz=False):
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    sets = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        sets[prefix] = (images, labels)
    return sets


@pytest.mark.parametrize("gz", [False, True])
def test_load_folder(tmp_path, gz):
    sets = _mnist_folder(tmp_path, gz=gz)
    s = load_idx_folder(tmp_path, "mnist")
    images, labels = sets["train"]
    assert s.x_train.shape == (6, 784) and s.x_train.dtype == torch.float32
    assert torch.equal(s.x_train, torch.from_numpy(images.reshape(6, 784) / np.float32(255)))
    assert s.y_train.tolist() == labels.tolist()
    assert s.x_test.shape == (4, 784)
    assert s.y_test.tolist() == sets["t10k"][1].tolist()


def test_count_mismatch_between_images_and_labels(tmp_path):
    _mnist_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(
        IdxError,
        match=r"t10k-images-idx3-ubyte has 4 images but .*"
        r"t10k-labels-idx1-ubyte has 3 labels",
    ):
        load_idx_folder(tmp_path)


def test_wrong_shape_label_range_and_missing_files(tmp_path):
    _mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 12, dtype=np.uint8))
    with pytest.raises(IdxError, match="label 12 outside"):
        load_idx_folder(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 784), dtype=np.uint8))
    with pytest.raises(IdxError, match=r"images must be uint8 \[N, rows, cols\]"):
        load_idx_folder(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="neither train-images-idx3-ubyte nor"):
        load_idx_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_folder(tmp_path / "nope")


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "s", np.uint8(3))
