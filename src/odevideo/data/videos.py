"""Users' clips: read a .npy array, a GIF or an MP4 into the canonical (T, C, H, W) float layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from odevideo.errors import DataError

VIDEO_SUFFIXES = (".gif", ".mp4")
MAX_BYTES = 2 * 1024**3  # frames read into memory at most (decoded); more is refused with a clear error


def read_frames(path: str | Path, channels: int = 1, max_frames: int | None = None) -> torch.Tensor:
    """Read a clip as float32 (T, C, H, W) in [0, 1].

    Accepted: ``.npy`` (T, H, W) or (T, C, H, W), uint8 (0..255) or float (0..1); ``.gif``/``.mp4`` (colour is
    converted to grey when ``channels`` is 1). Only the first ``max_frames`` frames are read when given (a
    .npy is memory-mapped, a video decoded frame by frame), so a long clip costs only what is used; more than
    ``MAX_BYTES`` of decoded frames is refused.

    Raises:
        DataError: missing, empty, truncated, corrupt, too large or ill-shaped file, unsupported dtype or values
            out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input {path} does not exist")
    if max_frames is not None and max_frames < 1:
        raise DataError(f"max_frames must be >= 1, got {max_frames}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header; data on demand
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"cannot read {path} as a .npy array: {exc}") from None
        if array.ndim == 3:
            array = array[:, None]
        elif array.ndim != 4:
            raise DataError(f"{path}: expected (T, H, W) or (T, C, H, W), got shape {array.shape}")
        array = array[:max_frames]
        _check_size(array.nbytes, path)
        array = np.array(array)
    elif suffix in VIDEO_SUFFIXES:
        array = _read_video(path, max_frames)  # (T, H, W, 3 or 4) uint8
        if array.shape[-1] == 4:
            array = array[..., :3]
        array = np.moveaxis(array, -1, 1)  # (T, H, W, C) -> (T, C, H, W)
        if channels == 1 and array.shape[1] == 3:
            array = np.rint(np.tensordot(array.astype(np.float32), [0.299, 0.587, 0.114], axes=([1], [0])))
            array = array.clip(0, 255).astype(np.uint8)[:, None]
    else:
        raise DataError(f"{path}: unsupported input type {suffix!r}; use .npy, .gif or .mp4")
    if array.shape[0] == 0 or array.size == 0:
        raise DataError(f"{path} holds no frames")
    return _to_float(array, path)


def _check_size(nbytes: int, path: Path) -> None:
    if nbytes > MAX_BYTES:
        raise DataError(f"{path}: {nbytes / 1024**3:.1f} GiB of frames is more than the {MAX_BYTES / 1024**3:.0f} GiB "
                        "odevideo reads at once; pass --n-context to read only the first frames")


def _read_video(path: Path, max_frames: int | None) -> np.ndarray:
    import imageio.v3 as iio

    frames: list[np.ndarray] = []
    nbytes = 0
    try:
        kwargs = {"plugin": "pyav"} if path.suffix.lower() == ".mp4" else {}
        for frame in iio.imiter(path, **kwargs):
            frames.append(np.asarray(frame))
            nbytes += frames[-1].nbytes
            _check_size(nbytes, path)
            if max_frames is not None and len(frames) >= max_frames:
                break
    except DataError:
        raise
    except Exception as exc:  # imageio/PyAV raise many types for broken files
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot decode {path}: {type(exc).__name__}: {first_line}") from None
    if not frames:
        raise DataError(f"{path} holds no frames")
    try:
        array = np.stack(frames)
    except ValueError:
        raise DataError(f"{path}: frames of different sizes") from None
    if array.ndim == 3:  # grey frames (T, H, W)
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 4:
        raise DataError(f"{path}: decoded an unexpected array of shape {array.shape}")
    return array


def _to_float(array: np.ndarray, path: Path) -> torch.Tensor:
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array)).float().div_(255.0)
    if array.dtype.kind != "f":
        raise DataError(f"{path}: pixels must be uint8 (0..255) or float (0..1), got {array.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(x).all():
        raise DataError(f"{path}: pixels hold NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{path}: float pixels must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                        "scale them, or save uint8")
    return x
