"""Moving MNIST (Srivastava et al., 2015): digits bouncing in a square canvas.

Each digit starts at a uniform random position with a uniform random direction and moves 0.1 of the free
range (canvas - digit) per frame, reflecting off the walls; digits are combined with a pixel-wise max. The
motion is computed in closed form (a triangle wave folds the straight line back into [0, 1]), so a sequence
can be rendered at any real time; integer times give the usual frames.

A sequence is a pure function of ``(seed, stream, index)``: the digits and motion of sequence ``index``
come from ``numpy.random.default_rng([seed, stream, index])``, never from a global RNG. Rendering is
vectorised over the batch, frames and digits (no Python loop over sequences or frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from odevideo.data.clips import ClipsConfig, as_float_frames
from odevideo.data.digits import Split, split_digits
from odevideo.errors import ConfigError, DataError
from odevideo.options import check_positive


class Protocol(NamedTuple):
    """The standard Moving MNIST protocol: frame side, digit side, frames per sequence, context frames."""

    size: int
    digit_size: int
    n_frames: int
    n_context: int


STANDARD = Protocol(size=64, digit_size=28, n_frames=20, n_context=10)  # 64x64, 28x28 digits, 10 -> 10
STEP = 0.1  # fraction of the free range travelled per frame (Srivastava et al.)
STREAMS = {"train": 0, "val": 1, "test": 2}


@dataclass
class MovingMNISTConfig(ClipsConfig):
    """Moving MNIST sequences (``kind: moving_mnist``).

    Attributes:
        digits: digits per sequence (1..K).
        digit_size: digit side in pixels (MNIST digits are 28x28; other sizes are resampled).
        mnist_dir: folder with the MNIST IDX files; ``None`` uses the digits shipped in the package.
    """

    kind: Literal["moving_mnist"] = "moving_mnist"
    digits: int = 1
    digit_size: int = STANDARD.digit_size
    mnist_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "data", "digits", "digit_size")
        if self.digit_size > self.size:
            raise ConfigError(f"digit_size {self.digit_size} is larger than the canvas {self.size}")

    @property
    def object_size(self) -> int | None:
        """The digits' side in pixels."""
        return self.digit_size

    def open(self, split: Split, progress: bool = False) -> MovingMNIST:
        """The generator of one split (rendered on demand: nothing to show progress for)."""
        return MovingMNIST(split, digits=self.digits, size=self.size, digit_size=self.digit_size,
                           n_frames=self.n_frames, seed=self.seed, mnist_dir=self.mnist_dir)


def reflect(x: np.ndarray) -> np.ndarray:
    """Fold positions on a straight line into [0, 1] as a ball bouncing between walls at 0 and 1."""
    x = np.mod(x, 2.0)
    return np.where(x > 1.0, 2.0 - x, x)


def render(digits: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """Paste digits onto blank canvases, combining overlaps with max.

    Args:
        digits: uint8 (B, K, d, d), the K digit images of each sequence.
        corners: int (B, T, K, 2), top-left (row, col) of each digit in each frame, in [0, size - d].
        size: canvas side.

    Returns:
        uint8 (B, T, size, size).
    """
    b, t, k, _ = corners.shape
    d = digits.shape[-1]
    canvas = np.zeros((b * t, size, size), np.uint8)
    # Writable (B*T, size-d+1, size-d+1, d, d) view: windows[n, r, c] is the d x d patch at (r, c) of frame n.
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (d, d), axis=(1, 2), writeable=True)
    frame = np.arange(b * t)
    seq = frame // t
    flat = corners.reshape(b * t, k, 2)
    for j in range(k):  # K is tiny (1..3); frames and sequences are vectorised
        rows, cols = flat[:, j, 0], flat[:, j, 1]
        patch = windows[frame, rows, cols]  # (B*T, d, d) copy
        np.maximum(patch, digits[seq, j], out=patch)
        windows[frame, rows, cols] = patch
    return canvas.reshape(b, t, size, size)


def _resize_digits(images: np.ndarray, digit_size: int) -> np.ndarray:
    if images.shape[-1] == digit_size:
        return images
    x = torch.from_numpy(images).float()[:, None]  # (N, 1, 28, 28)
    x = torch.nn.functional.interpolate(x, size=(digit_size, digit_size), mode="area")
    return x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


class MovingMNIST:
    """A deterministic Moving MNIST generator for one split: a source of endless sequences
    (:mod:`odevideo.data.clips`).

    Args:
        split: ``train``, ``val`` or ``test``; each draws from its own disjoint set of MNIST digits and its own
            random stream.
        digits: digits per sequence (1 and 2 are the usual benchmarks).
        size: canvas side in pixels.
        digit_size: digit side in pixels.
        n_frames: frames per sequence at the default times 0, 1, ..., n_frames - 1.
        seed: seed; sequence ``i`` is a pure function of ``(seed, split, i)``.
        mnist_dir: MNIST IDX folder; ``None`` uses the digits shipped in the package.
        images: digit images to use instead of the split's (uint8 (N, 28, 28)), e.g. in tests.
    """

    def __init__(self, split: Split, *, digits: int, size: int = STANDARD.size,
                 digit_size: int = STANDARD.digit_size, n_frames: int = STANDARD.n_frames, seed: int = 0,
                 mnist_dir: str | Path | None = None,
                 images: np.ndarray | None = None) -> None:
        if split not in STREAMS:
            raise DataError(f"split must be one of {list(STREAMS)}, got {split!r}")
        if digits < 1 or n_frames < 1 or not 0 < digit_size <= size:
            raise DataError(f"need digits >= 1, n_frames >= 1 and 0 < digit_size <= size; "
                            f"got digits={digits}, n_frames={n_frames}, digit_size={digit_size}, size={size}")
        self.split, self.n_digits, self.size, self.digit_size = split, digits, size, digit_size
        self.n_frames, self.seed = n_frames, seed
        self.channels, self.continuous, self.count = 1, True, None
        self.images = _resize_digits(split_digits(split, mnist_dir) if images is None else images, digit_size)

    def motion(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The random draws of each sequence: digit ids (B, K), start (B, K, 2) in [0, 1], unit velocity (B, K, 2)."""
        k = self.n_digits
        draws = np.empty((len(indices), 4 * k))
        for row, index in enumerate(indices):
            draws[row] = np.random.default_rng([self.seed, STREAMS[self.split], int(index)]).random(4 * k)
        ids = (draws[:, :k] * len(self.images)).astype(np.int64)
        start = draws[:, k:3 * k].reshape(-1, k, 2)
        theta = 2 * np.pi * draws[:, 3 * k:]
        velocity = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
        return ids, start, velocity

    def positions(self, indices: Sequence[int] | np.ndarray, times: np.ndarray) -> np.ndarray:
        """Digit positions in [0, 1], float (B, T, K, 2) (row, col), at real ``times`` (T,) or (B, T)."""
        return self._draw(indices, times)[1]

    def _draw(self, indices: Sequence[int] | np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, start, velocity = self.motion(indices)
        times = np.broadcast_to(np.asarray(times, np.float64), (len(indices), np.shape(times)[-1]))
        return ids, reflect(start[:, None] + STEP * velocity[:, None] * times[:, :, None, None])

    def render_uint8(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Sequences as uint8 (B, T, H, W) at ``times`` (default 0, 1, ..., n_frames - 1)."""
        times = np.arange(self.n_frames, dtype=np.float64) if times is None else np.asarray(times, np.float64)
        ids, pos = self._draw(indices, times)
        corners = np.rint(pos * (self.size - self.digit_size)).astype(np.intp)
        return render(self.images[ids], corners, self.size)

    def batch(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None, *,
              as_float: bool = True) -> dict[str, torch.Tensor]:
        """A batch: ``frames`` (B, T, 1, H, W) and ``times`` float (B, T).

        Frames are float32 in [0, 1], or uint8 with ``as_float=False``: the training stream ships uint8 (4x
        less memory traffic) and the training step converts it with :func:`as_float_frames` on the device.
        """
        times = np.arange(self.n_frames, dtype=np.float32) if times is None else np.asarray(times, np.float32)
        frames = torch.from_numpy(self.render_uint8(indices, times)[:, :, None])
        times_b = np.broadcast_to(times, (len(indices), times.shape[-1])).copy()
        return {"frames": as_float_frames(frames) if as_float else frames, "times": torch.from_numpy(times_b)}


def load_standard(path: str | Path) -> np.ndarray:
    """Read a file in the layout of Srivastava's ``mnist_test_seq.npy``: (T, N, H, W) uint8, time first.

    Returns:
        uint8 (N, T, 1, H, W), the canonical layout (memory-mapped, so large files load lazily).

    Raises:
        DataError: missing, unreadable or ill-shaped file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"test file {path} does not exist")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} as a .npy array: {exc}") from None
    if array.ndim != 4:
        raise DataError(f"{path}: expected (T, N, H, W) like mnist_test_seq.npy, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8 pixels like mnist_test_seq.npy, got {array.dtype}")
    return np.swapaxes(array, 0, 1)[:, :, None]  # (T, N, H, W) -> (N, T, 1, H, W)


def save_standard(path: str | Path, frames: np.ndarray) -> None:
    """Write uint8 (N, T, 1, H, W) or (N, T, H, W) sequences in the (T, N, H, W) layout of mnist_test_seq.npy."""
    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = frames[:, :, 0]
    np.save(path, np.ascontiguousarray(np.swapaxes(frames, 0, 1)).astype(np.uint8))
