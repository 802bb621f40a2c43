"""What every dataset shares: the options common to all kinds, the batch layout, and the streams that feed
training and validation.

A dataset kind (:data:`odevideo.data.DATASETS`) opens one *source* per split. A source hands out batches by
index: ``source.batch(indices, times=None, as_float=True)`` returns ``frames`` (B, T, C, H, W) (uint8, or
float32 in [0, 1]) and ``times`` float32 (B, T), the real time of every frame in frame units. Synthetic sources
(Moving MNIST, bouncing balls) render any index at any real ``times`` and never run out (``source.count`` is
``None``); a folder of videos holds ``count`` clips, each with the times its file recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from odevideo.errors import ConfigError
from odevideo.options import check_choices, check_positive

TIMES_STREAM = 3  # the random stream of irregular sampling times
MIN_GAP = 1e-3  # irregular times are kept at least this far apart (frames), so each sequence's times are distinct


@dataclass
class ClipsConfig:
    """Options every dataset kind has.

    Attributes:
        kind: the dataset: ``moving_mnist``, ``bouncing_balls`` or ``folder`` (a directory of the user's videos).
        size: frame side in pixels (frames are square).
        n_frames: frames per sequence (context + target).
        n_context: conditioning frames; the rest are targets.
        batch_size: sequences per training step.
        val_size: sequences in the fixed validation set (a folder uses at most this many of its validation clips).
        seed: seed of the data streams (training stream, validation and test sets, file split).
        irregular: fraction of training sequences sampled at irregular real times (context at random times in
            the context window, targets at random times in the whole sequence) instead of 0, 1, 2, ...; > 0
            teaches the model the continuum between frames. Validation stays on the frame grid. Synthetic
            datasets only: a folder's clips carry the times their files recorded.
        irregular_span: the longest context window of irregular sequences, in frames; each such sequence
            then draws its window length uniformly between ``n_context - 1`` and this (up to ``n_frames - 1``),
            so the model also learns contexts spread over a longer time, with gaps to fill between them.
            ``None``: the standard window, ``n_context - 1``.
    """

    kind: str = "moving_mnist"
    size: int = 64
    n_frames: int = 20
    n_context: int = 10
    batch_size: int = 32
    val_size: int = 256
    seed: int = 0
    irregular: float = 0.0
    irregular_span: float | None = None

    def __post_init__(self) -> None:
        check_choices(self, "data")
        check_positive(self, "data", "size", "n_frames", "n_context", "batch_size", "val_size")
        if not 0.0 <= self.irregular <= 1.0:
            raise ConfigError(f"data.irregular must be a fraction in [0, 1], got {self.irregular}")
        if self.irregular_span is not None and not self.n_context - 1 <= self.irregular_span <= self.n_frames - 1:
            raise ConfigError(f"data.irregular_span must be between n_context - 1 = {self.n_context - 1} and "
                              f"n_frames - 1 = {self.n_frames - 1} frames, got {self.irregular_span}")
        if self.n_context >= self.n_frames:
            raise ConfigError(f"n_context {self.n_context} must be smaller than n_frames {self.n_frames}")

    @property
    def channels(self) -> int:
        """Image channels of the frames (1 grey, 3 colour)."""
        return 1

    @property
    def off_grid(self) -> bool:
        """Whether the clips' times can leave the frame grid 0, 1, 2, ... (irregular sampling)."""
        return self.irregular > 0

    @property
    def object_size(self) -> int | None:
        """The side in pixels of the objects every clip shows, where the dataset fixes one; else ``None``."""
        return None


class Source(Protocol):
    """One split of a dataset: batches by index (see the module docstring). Every dataset config opens one with
    ``config.open(split, progress=False)``; ``progress`` shows the work of opening where there is any (a folder
    decoding its files into the cache)."""

    n_frames: int
    channels: int
    size: int
    continuous: bool  # renders any real time (synthetic data); False: each clip has its own recorded times
    count: int | None  # sequences in the split; None: endless (synthetic)

    def batch(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None, *,
              as_float: bool = True) -> dict[str, torch.Tensor]: ...


def as_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """Frames as float32 in [0, 1]: uint8 is scaled by 1/255, float passes through."""
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32).mul_(1.0 / 255.0)
    return frames.float()


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


class TrainStream(torch.utils.data.IterableDataset):
    """An endless stream of training batches: batch ``i`` holds the source's indices ``i*B .. i*B+B-1``.

    The stream is split into ``world_size * num_workers`` shards; at its local step ``j`` shard ``s`` yields
    batch ``j * n_shards + s``, so DDP ranks and DataLoader workers never duplicate a sequence. ``start`` is
    the local step to begin with, so a resumed run continues the stream instead of replaying it (exactly so
    with ``num_workers=0``). With ``irregular`` > 0 (synthetic sources only) that fraction of sequences comes
    at irregular times (:func:`irregular_times`), per sample in the batch's ``times`` (B, T).
    """

    def __init__(self, source: Source, batch_size: int, start: int = 0, rank: int = 0,
                 world_size: int = 1, *, irregular: float = 0.0, n_context: int = 10,
                 irregular_span: float | None = None, seed: int = 0) -> None:
        super().__init__()
        if irregular > 0 and not source.continuous:
            raise ConfigError("data.irregular > 0 needs a dataset that renders any real time (moving_mnist, "
                              "bouncing_balls); a folder's clips carry their own times")
        self.source, self.batch_size, self.start = source, batch_size, start
        self.rank, self.world_size = rank, world_size
        self.irregular, self.n_context, self.irregular_span, self.seed = irregular, n_context, irregular_span, seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, n_shards = self.rank * n_workers + worker, self.world_size * n_workers
        for step in itertools.count(self.start):
            first = (step * n_shards + shard) * self.batch_size
            indices = np.arange(first, first + self.batch_size)
            times = None
            if self.irregular > 0:
                times = irregular_times(indices, n_frames=self.source.n_frames, n_context=self.n_context,
                                        fraction=self.irregular, seed=self.seed, span=self.irregular_span)
            yield self.source.batch(indices, times, as_float=False)


class FixedSet(torch.utils.data.Dataset):
    """The first ``n`` sequences of a source (validation or test), read once; items hold uint8 frames.

    A finite source (a folder's split) gives at most all it has."""

    def __init__(self, source: Source, n: int) -> None:
        n = n if source.count is None else min(n, source.count)
        batch = source.batch(np.arange(n), as_float=False)
        self.frames, self.times = batch["frames"], batch["times"]  # (N, T, C, H, W) uint8, (N, T)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"frames": self.frames[i], "times": self.times[i]}
