"""``predict_file``: context frames from a file -> generated frames at the requested times -> a file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from odevideo import times as timing
from odevideo.data.videos import ARRAY_SUFFIXES, read_array, read_clip, read_frames
from odevideo.errors import DataError
from odevideo.inference import generate, sample_futures
from odevideo.models import VideoModel
from odevideo.visualize import write_frames


def read_context(path: str | Path, channels: int, size: int,
                 max_frames: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's first frames as float (T, channels, size, size), with their recorded times (T,).

    Frames of another size are resized (shorter side) and centre-cropped to ``size``, as a folder dataset's
    are; an array already at the model's size keeps its values exactly (a float array its precision)."""
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES and path.is_file():
        frames = read_frames(path, channels=channels, max_frames=max_frames)
        if tuple(frames.shape[2:]) == (size, size):
            return frames, torch.as_tensor(read_array(path, max_frames)[1], dtype=torch.float32)
    clip = read_clip(path, channels=channels, size=size, max_frames=max_frames)
    return torch.from_numpy(clip.frames).float().div_(255.0), torch.as_tensor(clip.times, dtype=torch.float32)


def predict_file(model: VideoModel, input_path: str | Path, out_path: str | Path, *, n_context: int | None = None,
                 n_future: int | None = None, horizon: float | None = None, times: Sequence[float] | None = None,
                 fps_factor: int = 1, include_context: bool = False, context_times: Sequence[float] | None = None,
                 fps: float = 4.0, samples: int = 1, generator: torch.Generator | None = None) -> Path | list[Path]:
    """Condition on the first ``n_context`` frames of ``input_path`` and write the generated frames.

    Args:
        model: a trained video model.
        input_path: a video (mp4, webm, avi, mov, mkv, gif, ...), a folder of frames, or an array: ``.npy``
            (T, H, W) or (T, C, H, W), uint8 or float in [0, 1], ``.npz`` with ``frames`` and optional ``times``;
            or the name of an example clip (:mod:`odevideo.data.examples`: ``digits1``, ``digits2``, ...).
            Frames are brought to the model's size (shorter side resized, centre cropped).
        out_path: ``.npy``, ``.gif``, ``.mp4`` or ``.webm``, chosen by extension.
        n_context: context frames (default: all frames of the input).
        n_future, horizon, times, fps_factor, include_context: what to generate, see
            :func:`odevideo.times.query_times`.
        context_times: times of the context frames, for irregularly sampled inputs; default: the times the
            file recorded (presentation times of a video, GIF durations, an .npz's ``times``; else 0, 1, ...).
        fps: frame rate of a video output (with ``fps_factor`` K, the input's rate times K plays in real time).
        samples: with K > 1, draw K futures from a stochastic model (reproducible with ``generator``) and write
            each to ``OUT_s0``, ``OUT_s1``, ... beside ``out_path``; the list of paths is returned.
    """
    out_suffix = Path(out_path).suffix.lower()
    if out_suffix not in (".npy", ".gif", ".mp4", ".webm"):
        raise DataError(f"unsupported output type {out_suffix!r} for {out_path}; use .npy, .gif, .mp4 or .webm")
    if not (math.isfinite(fps) and fps > 0):
        raise DataError(f"--fps must be > 0, got {fps}")
    if n_context is not None and n_context < 1:
        raise DataError(f"--n-context must be >= 1, got {n_context}")
    frames, recorded = read_context(input_path, model.channels, model.size, n_context)  # (T, C, H, W), (T,)
    n_context = frames.shape[0] if n_context is None else n_context
    if not 1 <= n_context <= frames.shape[0]:
        raise DataError(f"--n-context {n_context} must be between 1 and the {frames.shape[0]} frames of {input_path}")
    t_context = recorded[:n_context] if context_times is None else timing.context_times(n_context, context_times)
    t_query = timing.query_times(t_context, n_future=n_future, horizon=horizon, times=times, fps_factor=fps_factor,
                          include_context=include_context)
    if samples > 1:
        draws = sample_futures(model, frames[None, :n_context], t_context, t_query, samples, generator=generator)[0]
        out_path = Path(out_path)
        return [write_frames(out_path.with_name(f"{out_path.stem}_s{i}{out_path.suffix}"), draw.cpu(), fps=fps)
                for i, draw in enumerate(draws)]
    out = generate(model, frames[None, :n_context], t_context, t_query)
    return write_frames(out_path, out.frames[0].cpu(), fps=fps)
