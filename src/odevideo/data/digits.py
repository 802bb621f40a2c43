"""MNIST digits: the compact set shipped in the package, or the original IDX files.

Splits: training sequences use MNIST's training digits; validation and test sequences use MNIST's test
digits, the first half for validation and the second half for test, so the three splits share no digit.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from odevideo.errors import DataError

Split = Literal["train", "val", "test"]

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
}


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an IDX3 image file (gzip or raw) into a uint8 array (N, rows, cols).

    Raises:
        DataError: the file is missing, truncated or not an IDX3 uint8 file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read MNIST file {path}: {exc}") from None
    if len(raw) < 16 or raw[:4] != b"\x00\x00\x08\x03":
        raise DataError(f"{path} is not an IDX3 uint8 image file (bad magic number)")
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    if len(raw) != 16 + n * rows * cols:
        raise DataError(f"{path} is truncated: header says {n}x{rows}x{cols}, "
                        f"file holds {len(raw) - 16} pixel bytes")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)


def _find_idx(mnist_dir: Path, part: str) -> Path:
    for stem in _IDX_NAMES[part]:
        for name in (stem + ".gz", stem):
            if (mnist_dir / name).is_file():
                return mnist_dir / name
    raise DataError(f"no MNIST {part} images in {mnist_dir}: expected {_IDX_NAMES[part][0]}[.gz]")


def mnist_images(part: Literal["train", "test"], mnist_dir: str | Path | None = None) -> np.ndarray:
    """MNIST's ``train`` or ``test`` images as uint8 (N, 28, 28): from ``mnist_dir`` or the shipped subset."""
    if mnist_dir is None:
        with resources.files("odevideo").joinpath("data/mnist_subset.npz").open("rb") as f:
            return np.load(f)[f"{part}_images"]
    mnist_dir = Path(mnist_dir)
    if not mnist_dir.is_dir():
        raise DataError(f"--mnist-dir {mnist_dir} is not a directory")
    return read_idx_images(_find_idx(mnist_dir, part))


def split_digits(split: Split, mnist_dir: str | Path | None = None) -> np.ndarray:
    """The digits a split draws from, uint8 (N, 28, 28); the three splits are disjoint."""
    if split == "train":
        return mnist_images("train", mnist_dir)
    test = mnist_images("test", mnist_dir)
    half = len(test) // 2
    return test[:half] if split == "val" else test[half:]
