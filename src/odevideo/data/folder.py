"""A folder of the user's videos as a dataset: splits by file, clips with their real times, a decoded cache.

Layout: ``train/``, ``val/`` and ``test/`` subfolders when present (a missing ``val/`` is split off ``train/``
by file); otherwise every clip under the root is assigned to a split by a seeded draw per file, never per
clip, so no test clip has a neighbour in training. A clip source is a video (:data:`VIDEO_SUFFIXES`), a
folder of frames or an array (:func:`odevideo.data.videos.read_clip`).

Each file is decoded once, at the dataset's ``size`` and ``channels``, into a uint8 cache: ``KEY.frames.npy``
(T, C, S, S), ``KEY.times.npy`` and a manifest ``KEY.json``, where KEY hashes the file's path, size and
modification time and the options. Later runs memory-map the cache, so epochs read at memory speed and a
dataset larger than memory works. A file that cannot be decoded is recorded as bad in its manifest, named in
a warning and skipped; it is tried again only when it changes.

Sequences are windows of ``n_frames`` frames taken every ``stride`` frames. Their times are the frames'
recorded times divided by ``stride``, counted from the window's first frame: a regular window has times
0, 1, ..., n_frames - 1, and a dropped frame leaves a gap. Training draws every window of every training file
once per epoch, in a seeded order; validation and test take non-overlapping windows in order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from odevideo.data.clips import ClipsConfig, as_float_frames
from odevideo.data.videos import IMAGE_SUFFIXES, is_clip, read_clip
from odevideo.errors import ConfigError, DataError, OdevideoError
from odevideo.options import check_positive, user_cache

log = logging.getLogger("odevideo.data")
SPLITS = ("train", "val", "test")
CACHE_VERSION = 2  # bump when decoding changes: old entries are then ignored (2: MPEG-1 times, PGM frames)
SPLIT_STREAM = 4  # the random stream of the split by file
AUGMENT_STREAM = 5  # the random stream of training clips' augmentations
_WARNED: set[str] = set()  # bad files already named in a warning by this process


@dataclass
class FolderConfig(ClipsConfig):
    """A folder of videos (``kind: folder``).

    Attributes:
        path: the folder: ``train/``, ``val/`` and ``test/`` subfolders, or clips anywhere below it (the
            shipped folder configs leave it empty: give it with ``--data PATH``).
        channels: 1 (grey) or 3 (colour).
        stride: take every this many frames of a file (2 halves the frame rate).
        timestamps: use each frame's recorded time (gaps and variable rates included); ``false`` numbers the
            frames 0, 1, 2, ... as the discrete baselines need.
        val_fraction, test_fraction: shares of the files drawn for validation and test when the folder has no
            split subfolders (at least one file each).
        cache_dir: where decoded clips are kept; ``None``: ``$XDG_CACHE_HOME/odevideo`` (``~/.cache/odevideo``).
        crop_min: random crops of training clips: each is cut to a square of ``crop_min`` to 1 times the frame
            side, at a random place, and resized back to ``size`` (1: no crops).
        flip: mirror half the training clips left to right.
        reverse: play half the training clips backwards (their times run 0 ... T again, gaps reversed).
        max_stride: random temporal strides: each training clip takes every k-th frame of its window, k drawn
            from 1 to ``max_stride`` (times are stretched to match: 0, k, 2k, ... with ``timestamps``; a window
            that would run past its file takes the largest k that fits). 1: off.
    """

    kind: Literal["folder"] = "folder"
    path: str = ""
    channels: int = 1
    stride: int = 1
    timestamps: bool = True
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str | None = None
    crop_min: float = 1.0
    flip: bool = False
    reverse: bool = False
    max_stride: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "data", "stride", "max_stride")
        if not 0 < self.crop_min <= 1:
            raise ConfigError(f"data.crop_min must be in (0, 1] (1: no crops), got {self.crop_min}")
        if self.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 (grey) or 3 (colour), got {self.channels}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ConfigError("data.val_fraction and data.test_fraction must be in [0, 1) and sum below 1, got "
                              f"{self.val_fraction} and {self.test_fraction}")
        if self.irregular > 0:
            raise ConfigError("data.irregular needs a dataset that renders any real time (moving_mnist, "
                              "bouncing_balls): a folder's clips carry the times their files recorded")

    @property
    def off_grid(self) -> bool:
        """A folder's recorded times (``timestamps``) may fall between whole frames."""
        return self.timestamps

    def open(self, split: str, progress: bool = False) -> FolderClips:
        """The clips of one split (decoding into the cache what is not there yet)."""
        return FolderClips(self, split, progress=progress)


class Entry(NamedTuple):
    """A decoded file in the cache."""

    source: Path
    frames: Path  # KEY.frames.npy, uint8 (T, C, S, S)
    times: Path  # KEY.times.npy, float64 (T,)
    n_frames: int


def cache_root(config: FolderConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    return user_cache()


def find_clips(root: Path) -> list[Path]:
    """Every clip source below ``root``, sorted: video and array files, and folders holding frames."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files) and here != root:
            found.append(here)
        found.extend(here / f for f in files if not f.startswith(".") and is_clip(here / f))
    return sorted(found)


def split_entries(config: FolderConfig, progress: bool = False) -> dict[str, list[Entry]]:
    """The readable files of each split, decoded into the cache (see the module docstring). Unreadable files
    are left out before the split is drawn, so every split holds files that can be read.

    Raises:
        DataError: no folder, no readable clips, or too few files to split.
    """
    if not config.path:
        raise DataError("data.path must name the folder of videos: odevideo train --data PATH "
                        "(or --set data.path=PATH)")
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder")
    if (root / "train").is_dir():
        splits = {s: build_cache(config, find_clips(root / s) if (root / s).is_dir() else [], progress)
                  for s in SPLITS}
        if not splits["test"]:
            raise DataError(f"{root} has train/ but no readable clips in test/: add test/ (or drop the split "
                            "subfolders for a seeded split by file)")
        if not splits["val"]:
            splits["train"], splits["val"] = _draw(splits["train"], [config.val_fraction], config.seed)
    else:
        good = build_cache(config, find_clips(root), progress)
        splits = dict(zip(SPLITS, _draw(good, [config.val_fraction, config.test_fraction], config.seed),
                          strict=True))
    if not splits["train"]:
        raise DataError(f"no readable clips found for training under {root} (videos "
                        f"{', '.join(_suffixes())}, arrays .npy/.npz, or folders of png/jpg/pgm frames)")
    return splits


def _suffixes() -> tuple[str, ...]:
    from odevideo.data.videos import ARRAY_SUFFIXES, VIDEO_SUFFIXES

    return VIDEO_SUFFIXES + ARRAY_SUFFIXES


def _draw(files: list[Entry], fractions: list[float], seed: int) -> list[list[Entry]]:
    """Split ``files`` by a seeded permutation: the last parts take ``fractions`` of them (at least one file
    each when the fraction is > 0), the first part the rest."""
    need = sum(1 for f in fractions if f > 0)
    if len(files) < need + 1:
        raise DataError(f"{len(files)} readable clip file(s) cannot be split by file into training and "
                        f"{need} held-out part(s): add files, or make train/, val/ and test/ subfolders")
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(len(files))
    parts, end = [], len(files)
    for fraction in reversed(fractions):
        count = 0 if fraction == 0 else max(1, round(fraction * len(files)))
        parts.append(sorted(files[i] for i in order[end - count:end]))
        end -= count
    return [sorted(files[i] for i in order[:end]), *reversed(parts)]


def cache_key(source: Path, config: FolderConfig) -> str:
    """The cache key of a file: its resolved path, size and modification time, and the decoding options."""
    stat = source.stat()
    if source.is_dir():  # a folder of frames: its frames' names, sizes and times
        stat_text = "".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in sorted(source.iterdir()))
    else:
        stat_text = f"{stat.st_size}:{stat.st_mtime_ns}"
    text = f"{CACHE_VERSION}|{source.resolve()}|{stat_text}|{config.size}|{config.channels}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_cache(config: FolderConfig, files: Sequence[Path], progress: bool = True) -> list[Entry]:
    """Decode into the cache every file not there yet, and return the entries of the good files.

    Bad files (unreadable, truncated, corrupt) are recorded, named in one warning and left out."""
    root = cache_root(config)
    root.mkdir(parents=True, exist_ok=True)
    todo = [f for f in files if not (root / f"{cache_key(f, config)}.json").is_file()]
    if todo:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="decode videos into the cache", unit="file")
        for source in todo:
            _decode_one(source, config, root)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    entries, bad = [], []
    for source in files:
        key = cache_key(source, config)
        manifest = json.loads((root / f"{key}.json").read_text())
        if manifest.get("bad"):
            bad.append(str(manifest["bad"]))  # it names the file
            continue
        entries.append(Entry(source, root / f"{key}.frames.npy", root / f"{key}.times.npy", manifest["n_frames"]))
    news = [b for b in bad if b not in _WARNED]
    if news:
        _WARNED.update(news)
        log.warning("skipped %d file(s) that cannot be read: %s", len(news), "; ".join(news))
    return entries


def _decode_one(source: Path, config: FolderConfig, root: Path) -> None:
    key = cache_key(source, config)
    manifest: dict[str, object] = {"version": CACHE_VERSION, "source": str(source.resolve()),
                                   "size": config.size, "channels": config.channels}
    try:
        clip = read_clip(source, channels=config.channels, size=config.size)
        _atomic_save(root / f"{key}.frames.npy", clip.frames)
        _atomic_save(root / f"{key}.times.npy", clip.times)
        manifest.update(n_frames=len(clip.frames), bad=None)
    except OdevideoError as exc:
        manifest.update(n_frames=0, bad=str(exc))
    except (OSError, MemoryError, RuntimeError, ValueError) as exc:  # anything else a broken file can raise
        manifest.update(n_frames=0, bad=f"{source}: {type(exc).__name__}: {exc}")
    tmp = root / f".{key}.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / f"{key}.json")


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


class FolderClips:
    """The windows of one split of a folder dataset: a finite source (:mod:`odevideo.data.clips`).

    ``batch(indices)``: validation and test windows in order (``indices < count``); training windows in a
    seeded order that visits every window once per epoch (any index: epoch ``i // count``).
    """

    def __init__(self, config: FolderConfig, split: str, *, progress: bool = False,
                 entries: list[Entry] | None = None) -> None:
        if split not in SPLITS:
            raise DataError(f"split must be one of {list(SPLITS)}, got {split!r}")
        self.config, self.split = config, split
        self.n_frames, self.channels, self.size, self.continuous = config.n_frames, config.channels, config.size, False
        if entries is None:
            entries = split_entries(config, progress=progress)[split]
        self.entries = entries
        span = config.stride * (config.n_frames - 1) + 1  # frames of the file a window covers
        hop = 1 if split == "train" else config.stride * config.n_frames
        windows = [(e, s) for e in range(len(entries)) for s in range(0, entries[e].n_frames - span + 1, hop)]
        if not windows:
            raise DataError(f"the {split} split of {config.path} has no clip of {config.n_frames} frames at stride "
                            f"{config.stride} ({span} frames) in its {len(entries)} readable file(s)")
        self.windows = np.array(windows, np.int64)  # (count, 2): file, first frame
        self.count = len(self.windows)
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its order of the windows)

    def __getstate__(self) -> dict[str, object]:  # DataLoader workers open their own memory maps
        return {**self.__dict__, "_arrays": {}, "_order": None}

    def _array(self, file: int) -> tuple[np.ndarray, np.ndarray]:
        if file not in self._arrays:
            entry = self.entries[file]
            self._arrays[file] = (np.load(entry.frames, mmap_mode="r"), np.load(entry.times))
        return self._arrays[file]

    def window(self, index: int) -> int:
        """The window that ``index`` reads."""
        if self.split != "train":
            if not 0 <= index < self.count:
                raise DataError(f"index {index} is outside the {self.count} {self.split} clips")
            return index
        epoch, position = divmod(int(index), self.count)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.config.seed, epoch]).permutation(self.count))
        return int(self._order[1][position])

    def batch(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None, *,
              as_float: bool = True) -> dict[str, torch.Tensor]:
        """Clips ``frames`` (B, T, C, H, W) and their ``times`` (B, T); training clips augmented as the config
        asks (crops, flips, time reversal, strides), each with a generator drawn from its index, so a batch is
        the same whenever it is read."""
        if times is not None:
            raise DataError("a folder's clips carry their own times; they cannot be rendered at others")
        t = self.n_frames
        frames = np.empty((len(indices), t, self.channels, self.size, self.size), np.uint8)
        out_times = np.empty((len(indices), t), np.float32)
        for row, index in enumerate(indices):
            rng = np.random.default_rng([self.config.seed, AUGMENT_STREAM, int(index)]) if self.augments else None
            frames[row], out_times[row] = self._clip(int(index), rng)
        tensor = torch.from_numpy(frames)
        return {"frames": as_float_frames(tensor) if as_float else tensor, "times": torch.from_numpy(out_times)}

    @property
    def augments(self) -> bool:
        c = self.config
        return self.split == "train" and (c.crop_min < 1 or c.flip or c.reverse or c.max_stride > 1)

    def _clip(self, index: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """The frames (T, C, S, S) and times (T,) of the window ``index`` reads, augmented with ``rng``."""
        c, t = self.config, self.n_frames
        file, start = self.windows[self.window(index)]
        array, file_times = self._array(int(file))
        k = 1
        if rng is not None and c.max_stride > 1:  # the largest stride that fits the file caps the draw
            fits = (len(array) - 1 - start) // (c.stride * (t - 1))
            k = int(rng.integers(1, max(1, min(c.max_stride, fits)) + 1))
        step = c.stride * k
        take = slice(start, start + step * (t - 1) + 1, step)
        frames = np.asarray(array[take])
        times = (file_times[take] - file_times[take][0]) / c.stride if c.timestamps else np.arange(t, dtype=float)
        if rng is None:
            return frames, times
        if c.reverse and rng.random() < 0.5:
            frames, times = frames[::-1], times[-1] - times[::-1]
        if c.flip and rng.random() < 0.5:
            frames = frames[..., ::-1]
        if c.crop_min < 1:
            frames = random_crop(frames, rng, c.crop_min)
        return np.ascontiguousarray(frames), times


def random_crop(frames: np.ndarray, rng: np.random.Generator, crop_min: float) -> np.ndarray:
    """Frames (T, C, S, S) cut to a random square of ``crop_min`` to 1 times S, at a random place, and resized
    back to S (bilinear, antialiased), the same crop for every frame."""
    size = frames.shape[-1]
    side = int(round(size * rng.uniform(crop_min, 1.0)))
    if side >= size:
        return frames
    top, left = (int(x) for x in rng.integers(0, size - side + 1, size=2))
    x = torch.from_numpy(np.ascontiguousarray(frames[..., top:top + side, left:left + side])).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).numpy()
