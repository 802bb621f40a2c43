"""``predict_file``: context frames from a file -> generated frames at the requested times -> a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from odevideo.data.videos import read_frames
from odevideo.errors import DataError
from odevideo.evaluate import generate
from odevideo.models import VideoModel
from odevideo.visualize import write_frames


def query_times(n_context: int, *, n_future: int | None = None,
                times: Sequence[float] | None = None) -> torch.Tensor:
    """The times to generate: ``n_future`` frames after the context (t = n_context, n_context + 1, ...), or
    explicit real ``times`` (context frame i sits at t = i). Exactly one of the two must be given."""
    if (n_future is None) == (times is None):
        raise DataError("give exactly one of --n-future N or --times t1,t2,...")
    if n_future is not None:
        if n_future < 1:
            raise DataError(f"--n-future must be >= 1, got {n_future}")
        return torch.arange(n_context, n_context + n_future, dtype=torch.float32)
    t = torch.tensor(list(times), dtype=torch.float32)
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise DataError(f"--times must be finite numbers, got {list(times)}")
    if t.numel() > 1 and not (t[1:] > t[:-1]).all():
        raise DataError(f"--times must be strictly increasing, got {t.tolist()}")
    if float(t[0]) < 0:
        raise DataError(f"--times must be >= 0 (the first context frame is t=0), got {float(t[0])}")
    return t


def predict_file(model: VideoModel, input_path: str | Path, out_path: str | Path, *, n_context: int | None = None,
                 n_future: int | None = None, times: Sequence[float] | None = None, fps: float = 4.0) -> Path:
    """Condition on the first ``n_context`` frames of ``input_path`` and write the generated frames.

    Args:
        model: a latent ODE.
        input_path: ``.npy`` (T, H, W) or (T, C, H, W), uint8 or float in [0, 1], or a ``.gif``/``.mp4``.
        out_path: ``.npy``, ``.gif`` or ``.mp4``, chosen by extension.
        n_context: context frames (default: all frames of the input).
        n_future: frames to generate after the context, or
        times: real times to generate (context frame i is at t = i).
        fps: frame rate of a video output.
    """
    out_suffix = Path(out_path).suffix.lower()
    if out_suffix not in (".npy", ".gif", ".mp4"):
        raise DataError(f"unsupported output type {out_suffix!r} for {out_path}; use .npy, .gif or .mp4")
    frames = read_frames(input_path, channels=model.channels)  # (T, C, H, W)
    n_context = frames.shape[0] if n_context is None else n_context
    if not 1 <= n_context <= frames.shape[0]:
        raise DataError(f"--n-context {n_context} must be between 1 and the {frames.shape[0]} frames of {input_path}")
    expected = (model.channels, model.size, model.size)
    if tuple(frames.shape[1:]) != expected:
        raise DataError(f"{input_path}: frames are {tuple(frames.shape[1:])} (C, H, W) but the model expects "
                        f"{expected}")
    t_query = query_times(n_context, n_future=n_future, times=times)
    t_context = torch.arange(n_context, dtype=torch.float32)
    out = generate(model, frames[None, :n_context], t_context, t_query)
    return write_frames(out_path, out.frames[0], fps=fps)
