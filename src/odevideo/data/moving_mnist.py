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

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from odevideo.data.digits import Split, split_digits
from odevideo.errors import DataError


class Protocol(NamedTuple):
    """The standard Moving MNIST protocol: frame side, digit side, frames per sequence, context frames."""

    size: int
    digit_size: int
    n_frames: int
    n_context: int


STANDARD = Protocol(size=64, digit_size=28, n_frames=20, n_context=10)  # 64x64, 28x28 digits, 10 -> 10
STEP = 0.1  # fraction of the free range travelled per frame (Srivastava et al.)
STREAMS = {"train": 0, "val": 1, "test": 2}
TIMES_STREAM = 3  # the random stream of irregular sampling times
MIN_GAP = 1e-3  # irregular times are kept at least this far apart (frames), so each sequence's times are distinct


def irregular_times(indices: Sequence[int] | np.ndarray, *, n_frames: int, n_context: int, fraction: float,
                    seed: int = 0, span: float | None = None) -> np.ndarray:
    """Sampling times (B, n_frames) for training on a continuum instead of the integer grid.

    With probability ``fraction`` a sequence is irregular: its first ``n_context`` times (the context) are 0
    and ``n_context - 1`` sorted uniform times in [0, W]; the other ``n_frames - n_context`` (the targets) are
    sorted uniform times in [0, n_frames - 1], so they fall between context frames as well as after them. The
    window W is ``n_context - 1``, or, with ``span``, uniform in [n_context - 1, span]. Other sequences keep
    0, 1, ..., n_frames - 1. All times of a sequence are distinct; targets may interleave with the context
    (sort them before querying). A pure function of ``(seed, index)``.
    """
    out = np.tile(np.arange(n_frames, dtype=np.float64), (len(indices), 1))
    for row, index in enumerate(indices):
        rng = np.random.default_rng([seed, TIMES_STREAM, int(index)])
        if rng.random() >= fraction:
            continue
        window = n_context - 1 if span is None else rng.uniform(n_context - 1, span)
        while True:
            context = np.sort(rng.uniform(0, window, n_context - 1))
            targets = np.sort(rng.uniform(0, n_frames - 1, n_frames - n_context))
            times = np.concatenate([[0.0], context, targets])
            if np.diff(np.sort(times)).min() >= MIN_GAP:
                out[row] = times
                break
    return out


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
    """A deterministic Moving MNIST generator for one split.

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


def as_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """Frames as float32 in [0, 1]: uint8 is scaled by 1/255, float passes through."""
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32).mul_(1.0 / 255.0)
    return frames.float()


class TrainStream(torch.utils.data.IterableDataset):
    """An endless stream of fresh training batches: batch ``i`` holds sequences ``i*B .. i*B+B-1``.

    The stream is split into ``world_size * num_workers`` shards; at its local step ``j`` shard ``s`` yields
    batch ``j * n_shards + s``, so DDP ranks and DataLoader workers never duplicate a sequence. ``start`` is
    the local step to begin with, so a resumed run continues the stream instead of replaying it (exactly so
    with ``num_workers=0``). With ``irregular`` > 0 that fraction of sequences comes at irregular times
    (:func:`irregular_times`), per sample in the batch's ``times`` (B, T).
    """

    def __init__(self, generator: MovingMNIST, batch_size: int, start: int = 0, rank: int = 0,
                 world_size: int = 1, *, irregular: float = 0.0, n_context: int = 10,
                 irregular_span: float | None = None) -> None:
        super().__init__()
        self.generator, self.batch_size, self.start = generator, batch_size, start
        self.rank, self.world_size = rank, world_size
        self.irregular, self.n_context, self.irregular_span = irregular, n_context, irregular_span

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, n_shards = self.rank * n_workers + worker, self.world_size * n_workers
        for step in itertools.count(self.start):
            first = (step * n_shards + shard) * self.batch_size
            indices = np.arange(first, first + self.batch_size)
            times = None
            if self.irregular > 0:
                times = irregular_times(indices, n_frames=self.generator.n_frames, n_context=self.n_context,
                                        fraction=self.irregular, seed=self.generator.seed,
                                        span=self.irregular_span)
            yield self.generator.batch(indices, times, as_float=False)


class FixedSet(torch.utils.data.Dataset):
    """A fixed set of ``n`` sequences (validation or test), rendered once; items hold uint8 frames."""

    def __init__(self, generator: MovingMNIST, n: int) -> None:
        self.frames = generator.render_uint8(np.arange(n))[:, :, None]  # (N, T, 1, H, W) uint8
        self.times = torch.arange(generator.n_frames, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"frames": torch.from_numpy(self.frames[i]), "times": self.times}


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
