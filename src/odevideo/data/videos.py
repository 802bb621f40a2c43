"""Reading users' clips: video files, GIFs, folders of frames and arrays, into (T, C, H, W) frames with the
real time of each frame.

Times are in units of the clip's nominal frame interval, counted from its first frame: a clip that plays at
its nominal rate has times 0, 1, 2, ...; a dropped frame leaves a gap (0, 1, 3, ...) and a variable frame rate
gives fractional times. Videos and GIFs take them from the container's presentation times (PyAV); frame
folders and arrays are regular unless an ``.npz`` holds a ``times`` array.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from odevideo.data.examples import EXAMPLES, example_clip
from odevideo.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".ogv", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
MAX_BYTES = 2 * 1024**3  # frames read into memory at most (decoded); more is refused with a clear error
CHUNK = 32  # frames decoded before they are resized, so a long high-resolution video never sits in memory whole
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class Clip(NamedTuple):
    """Frames uint8 (T, C, H, W) and their times float64 (T,), in nominal frame intervals from the first."""

    frames: np.ndarray
    times: np.ndarray


def is_clip(path: Path) -> bool:
    """Whether ``path`` is something :func:`read_clip` reads: a video, an array, or a folder of frames."""
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file())
    return path.suffix.lower() in VIDEO_SUFFIXES + ARRAY_SUFFIXES


def read_clip(path: str | Path, *, channels: int, size: int | None = None,
              max_frames: int | None = None) -> Clip:
    """Read a clip as uint8 frames (T, channels, H, W) with their times.

    Args:
        path: a video (mp4, webm, avi, mov, mkv, gif), a folder of png/jpg/pgm/ppm/bmp frames (sorted by name), or an
            array: ``.npy`` (T, H, W) or (T, C, H, W), uint8 or float in [0, 1]; ``.npz`` with ``frames`` (or its
            only array) and optionally ``times``; or, where nothing exists at that path, the name of an example
            clip (:mod:`odevideo.data.examples`).
        channels: 1 (colour is turned to grey by luma) or 3 (grey is repeated).
        size: resize the shorter side to ``size`` and centre-crop to ``size`` x ``size``; ``None`` keeps the size.
        max_frames: read only the first this many frames.

    Raises:
        DataError: missing, empty, truncated, corrupt, too large or ill-shaped file.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise DataError(f"max_frames must be >= 1, got {max_frames}")

    def prepare(chunk: np.ndarray) -> np.ndarray:  # (T, C, H, W) uint8 -> the asked channels and size
        chunk = to_channels(chunk, channels)
        return chunk if size is None else fit(chunk, size)

    if path.is_dir():
        frames = _read_image_folder(path, prepare, max_frames)
        times = np.arange(len(frames), dtype=np.float64)
    elif not path.exists() and str(path) in EXAMPLES:
        frames = prepare(example_clip(str(path))[:max_frames])
        times = np.arange(len(frames), dtype=np.float64)
    elif not path.is_file():
        raise DataError(f"{path} does not exist (nor is it an example clip: {', '.join(EXAMPLES)})")
    elif path.suffix.lower() == ".gif":
        frames, times = _read_gif(path, prepare, max_frames)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        frames, times = _read_video(path, prepare, max_frames)
    elif path.suffix.lower() in ARRAY_SUFFIXES:
        array, times = read_array(path, max_frames)
        if array.dtype != np.uint8:
            array = np.rint(_checked_float(array, path) * 255).astype(np.uint8)
        frames = prepare(array)
    else:
        raise DataError(f"{path}: unsupported type {path.suffix!r}; use a video ({', '.join(VIDEO_SUFFIXES)}), "
                        f"an array (.npy, .npz) or a folder of {'/'.join(IMAGE_SUFFIXES)} frames")
    if len(frames) == 0:
        raise DataError(f"{path} holds no frames")
    return Clip(np.ascontiguousarray(frames), np.asarray(times, np.float64))


def read_frames(path: str | Path, channels: int = 1, max_frames: int | None = None) -> torch.Tensor:
    """Read a clip as float32 (T, C, H, W) in [0, 1] at its own size (the input of ``predict``).

    Accepts what :func:`read_clip` accepts; a float array keeps its precision. Only the first ``max_frames``
    frames are read when given (an .npy is memory-mapped, a video decoded frame by frame), so a long clip costs
    only what is used; more than ``MAX_BYTES`` of decoded frames is refused.

    Raises:
        DataError: as :func:`read_clip`, and for float pixels outside [0, 1] or not finite.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() in ARRAY_SUFFIXES:
        if max_frames is not None and max_frames < 1:
            raise DataError(f"max_frames must be >= 1, got {max_frames}")
        array, _ = read_array(path, max_frames)
        if array.dtype != np.uint8:
            array = to_channels(_checked_float(array, path), channels)
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        array = to_channels(array, channels)
    elif not path.exists():
        raise DataError(f"input {path} does not exist")
    else:
        array = read_clip(path, channels=channels, max_frames=max_frames).frames
    if len(array) == 0:
        raise DataError(f"{path} holds no frames")
    return torch.from_numpy(np.ascontiguousarray(array)).float().div_(255.0)


def to_channels(frames: np.ndarray, channels: int) -> np.ndarray:
    """(T, C, H, W) with C in {1, 3, 4} as ``channels`` 1 (luma) or 3 (grey repeated; alpha dropped); uint8
    stays uint8 (rounded), float stays float."""
    if frames.shape[1] == 4:
        frames = frames[:, :3]
    if frames.shape[1] == channels:
        return frames
    if channels == 1 and frames.shape[1] == 3:
        grey = np.tensordot(frames.astype(np.float32), LUMA, axes=([1], [0]))[:, None]
        return np.rint(grey).clip(0, 255).astype(np.uint8) if frames.dtype == np.uint8 else grey
    if channels == 3 and frames.shape[1] == 1:
        return np.repeat(frames, 3, axis=1)
    raise DataError(f"cannot turn frames with {frames.shape[1]} channels into {channels}")


def fit(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, C, H, W) -> (T, C, size, size): the shorter side resized to ``size`` (bilinear, antialiased),
    then the centre cropped."""
    t, c, h, w = frames.shape
    if (h, w) == (size, size):
        return frames
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    return x.round_().clamp_(0, 255).to(torch.uint8).numpy()


def _undecodable(path: Path, exc: Exception) -> DataError:
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return DataError(f"cannot decode {path}: {type(exc).__name__}: {first_line}")


def _check_size(nbytes: int, path: Path) -> None:
    if nbytes > MAX_BYTES:
        raise DataError(f"{path}: {nbytes / 1024**3:.1f} GiB of frames is more than the {MAX_BYTES / 1024**3:.0f} GiB "
                        "odevideo reads at once; pass --n-context to read only the first frames")


def _read_video(path: Path, prepare: Callable[[np.ndarray], np.ndarray],
                max_frames: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Decode with PyAV: frames (T, C, H, W) prepared chunk by chunk, and times from the presentation times."""
    import av

    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    seconds: list[float] = []
    nbytes = 0

    def flush() -> None:
        nonlocal nbytes
        if pending:
            try:
                out.append(prepare(np.stack(pending)))
            except ValueError:
                raise DataError(f"{path}: frames of different sizes") from None
            nbytes += out[-1].nbytes
            pending.clear()
            _check_size(nbytes, path)

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream")
            stream = container.streams.video[0]
            # guessed before base: an MPEG-1 stream reports its field rate (50) as its base rate at 25 frames a second
            rate = stream.guessed_rate or stream.average_rate or stream.base_rate
            for index, frame in enumerate(container.decode(stream)):
                rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3)
                pending.append(np.moveaxis(rgb, -1, 0))
                seconds.append(float(frame.time) if frame.time is not None else float(index / rate if rate else index))
                if len(pending) == CHUNK:
                    flush()
                if max_frames is not None and len(seconds) >= max_frames:
                    break
            flush()
    except DataError:
        raise
    except Exception as exc:  # PyAV raises many types for broken files
        raise _undecodable(path, exc) from None
    if not seconds:
        raise DataError(f"{path} holds no frames")
    t = np.asarray(seconds, np.float64)
    interval = 1.0 / float(rate) if rate else float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    if not interval > 0:
        interval = 1.0
    order = np.argsort(t, kind="stable")  # presentation order (B-frames decode out of it)
    frames = np.concatenate(out)[order]
    return frames, (t[order] - t[order][0]) / interval


def _read_gif(path: Path, prepare: Callable[[np.ndarray], np.ndarray],
              max_frames: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a GIF with Pillow (which notices a truncated file); times from the frame durations, in units of
    the most common duration."""
    from PIL import Image, ImageSequence

    out, durations, nbytes = [], [], 0
    try:
        with Image.open(path) as image:
            for frame in ImageSequence.Iterator(image):
                rgb = np.asarray(frame.convert("RGB"))
                out.append(prepare(np.moveaxis(rgb, -1, 0)[None]))
                durations.append(float(frame.info.get("duration") or 0.0))
                nbytes += out[-1].nbytes
                _check_size(nbytes, path)
                if max_frames is not None and len(out) >= max_frames:
                    break
    except DataError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise _undecodable(path, exc) from None
    if not out:
        raise DataError(f"{path} holds no frames")
    d = np.asarray(durations)
    if (d > 0).all():
        values, counts = np.unique(d, return_counts=True)
        times = np.concatenate([[0.0], np.cumsum(d[:-1])]) / values[np.argmax(counts)]
    else:  # no durations recorded: one frame per interval
        times = np.arange(len(d), dtype=np.float64)
    return np.concatenate(out), times


def _read_image_folder(path: Path, prepare: Callable[[np.ndarray], np.ndarray],
                       max_frames: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path} holds no {'/'.join(IMAGE_SUFFIXES)} frames")
    out, nbytes = [], 0
    for file in files[:max_frames]:
        try:
            with Image.open(file) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"cannot read frame {file}: {type(exc).__name__}: {exc}") from None
        out.append(prepare(np.moveaxis(rgb, -1, 0)[None]))
        if out[-1].shape != out[0].shape:
            raise DataError(f"{path}: frames of different sizes ({file.name})")
        nbytes += out[-1].nbytes
        _check_size(nbytes, path)
    return np.concatenate(out)


def read_array(path: Path, max_frames: int | None) -> tuple[np.ndarray, np.ndarray]:
    """An .npy/.npz file as (T, C, H, W) (uint8, or float with its values unchecked) and its times."""
    times = None
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                key = "frames" if "frames" in names else names[0] if len(names) == 1 else None
                if key is None:
                    raise DataError(f"{path}: an .npz needs a 'frames' array (and optionally 'times'); has {names}")
                array = archive[key][:max_frames]
                if "times" in names:
                    times = np.asarray(archive["times"], np.float64)[:max_frames]
        else:
            array = np.load(path, mmap_mode="r", allow_pickle=False)[:max_frames]  # data read on demand
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"cannot read {path} as a {path.suffix} array: {exc}") from None
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim != 4:
        raise DataError(f"{path}: expected (T, H, W) or (T, C, H, W), got shape {array.shape}")
    if array.shape[1] not in (1, 3, 4):
        raise DataError(f"{path}: expected 1, 3 or 4 channels on axis 1, got shape {array.shape}")
    if array.dtype != np.uint8 and array.dtype.kind != "f":
        raise DataError(f"{path}: pixels must be uint8 (0..255) or float (0..1), got {array.dtype}")
    _check_size(array.nbytes, path)
    array = np.array(array)
    if times is None:
        times = np.arange(len(array), dtype=np.float64)
    elif times.shape != (len(array),) or not np.isfinite(times).all() or np.any(np.diff(times) <= 0):
        raise DataError(f"{path}: 'times' must be {len(array)} increasing finite numbers, one per frame")
    return array, times - times[0] if len(times) else times


def _checked_float(array: np.ndarray, path: Path) -> np.ndarray:
    x = np.asarray(array, np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: pixels hold NaN or infinite values")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise DataError(f"{path}: float pixels must lie in [0, 1], got [{x.min():.3g}, {x.max():.3g}]; "
                        "scale them, or save uint8")
    return x
