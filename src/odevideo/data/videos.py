"""Users' clips: read a .npy array, a GIF or an MP4 into the canonical (T, C, H, W) float layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from odevideo.errors import DataError

VIDEO_SUFFIXES = (".gif", ".mp4")


def read_frames(path: str | Path, channels: int = 1) -> torch.Tensor:
    """Read a clip as float32 (T, C, H, W) in [0, 1].

    Accepted: ``.npy`` (T, H, W) or (T, C, H, W), uint8 (0..255) or float (0..1); ``.gif``/``.mp4`` (colour is
    converted to grey when ``channels`` is 1).

    Raises:
        DataError: missing, empty, corrupt or ill-shaped file, unsupported dtype or values out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"cannot read {path} as a .npy array: {exc}") from None
        if array.ndim == 3:
            array = array[:, None]
        elif array.ndim != 4:
            raise DataError(f"{path}: expected (T, H, W) or (T, C, H, W), got shape {array.shape}")
    elif suffix in VIDEO_SUFFIXES:
        array = _read_video(path)  # (T, H, W, 3 or 4) uint8
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


def _read_video(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        if path.suffix.lower() == ".mp4":
            array = iio.imread(path, plugin="pyav", index=None)
        else:
            array = iio.imread(path, index=None)
    except Exception as exc:  # imageio/PyAV raise many types for broken files
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot decode {path}: {type(exc).__name__}: {first_line}") from None
    array = np.asarray(array)
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
