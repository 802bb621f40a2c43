"""What the web page does, without the web: read a clip, generate at the asked times, and gather what the page
shows (videos, the error curve where the truth is known, the latent view, samples). The server
(:mod:`odevideo.web.app`) only moves requests and files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from odevideo.data.videos import Clip, fit, to_channels
from odevideo.errors import DataError
from odevideo.inference import Checkpoint, generate, sample_futures
from odevideo.models import LatentView
from odevideo.times import query_times
from odevideo.visualize import to_uint8_rgb

BASE_FPS = 4.0  # the input plays at 4 frames a second; a frame-rate factor K plays K times as many
TIME_MATCH = 1e-4  # a generated time this close to a recorded frame's is compared with that frame


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: uploads are refused beyond these, with a message."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_input_frames: int = 300
    max_output_frames: int = 400
    max_samples: int = 8
    max_fps_factor: int = 16


@dataclass
class Request:
    """What to generate: see :func:`~odevideo.predict.query_times` for the frame grid."""

    n_context: int | None = None  # default: the model's
    fps_factor: int = 1
    horizon: float | None = None  # in input frame intervals past the last context time; default: the model's
    times: list[float] | None = None  # explicit real times instead of the grid
    samples: int = 1
    seed: int = 0


@dataclass
class Result:
    """Everything the page shows for one request."""

    context: torch.Tensor  # (M, C, S, S) in [0, 1], at the model's size
    t_context: torch.Tensor  # (M,)
    t_query: torch.Tensor  # (Tq,)
    frames: torch.Tensor  # (Tq, C, S, S)
    truth: torch.Tensor | None  # the clip's frames after the context, at the model's size, (Tt, C, S, S)
    t_truth: torch.Tensor | None  # their times, (Tt,)
    errors: list[dict[str, float]]  # per generated time that is a recorded frame: t, the model's and copy-last's MSE
    latent: dict[str, object]  # the latent view: object tracks or principal components, at t_query
    draws: list[torch.Tensor] = field(default_factory=list)  # K samples, each (Tq, C, S, S)
    notes: list[str] = field(default_factory=list)


def run(ckpt: Checkpoint, clip: Clip, request: Request, limits: Limits) -> Result:
    """Generate from ``clip`` (any size and channels: brought to the model's) as ``request`` asks, within
    ``limits``.

    Raises:
        DataError: a request the model or the clip cannot serve, with what to change.
    """
    model, data = ckpt.model, ckpt.config.data
    notes = []
    frames = to_channels(clip.frames, model.channels)
    if frames.shape[-2:] != (model.size, model.size):
        notes.append(f"the clip's {frames.shape[-1]}x{frames.shape[-2]} frames were resized and cropped to the "
                     f"model's {model.size}x{model.size}")
        frames = fit(frames, model.size)
    video = torch.from_numpy(frames).float().div_(255.0)
    times = torch.as_tensor(clip.times, dtype=torch.float32)
    n_context = request.n_context or min(data.n_context, len(video))
    if not 1 <= n_context <= len(video):
        raise DataError(f"context frames must be between 1 and the clip's {len(video)}, got {n_context}")
    if not 1 <= request.fps_factor <= limits.max_fps_factor:
        raise DataError(f"the frame-rate factor must be a whole number from 1 to {limits.max_fps_factor}, "
                        f"got {request.fps_factor}")
    if not 1 <= request.samples <= limits.max_samples:
        raise DataError(f"samples must be from 1 to {limits.max_samples}, got {request.samples}")
    t_context = times[:n_context]
    if request.times:
        t_query = query_times(t_context, times=request.times)
    else:
        horizon = request.horizon if request.horizon is not None else float(data.n_frames - data.n_context)
        if not (math.isfinite(horizon) and horizon > 0):
            raise DataError(f"the horizon must be a number of frames > 0, got {horizon}")
        if horizon * request.fps_factor > limits.max_output_frames:
            raise DataError(f"{horizon:g} frames at {request.fps_factor}x is more than the "
                            f"{limits.max_output_frames} frames a request may generate")
        t_query = query_times(t_context, horizon=horizon, fps_factor=request.fps_factor)
    if len(t_query) > limits.max_output_frames:
        raise DataError(f"{len(t_query)} times is more than the {limits.max_output_frames} a request may generate")
    context = video[:n_context]
    # one solve through the context times and the asked ones: the frames are the asked ones, the latent view
    # shows the whole path
    t_all = torch.unique(torch.cat([t_context, t_query]))  # sorted; every time is >= the first context time
    out = generate(model, context[None].to(ckpt.device), t_context, t_all)
    generated = out.frames[0].float().cpu()[torch.searchsorted(t_all, t_query)]
    truth = video[n_context:] if len(video) > n_context else None
    t_truth = times[n_context:] if truth is not None else None
    draws = []
    if request.samples > 1:
        if not model.stochastic:
            notes.append("this model is deterministic: one future per context, so no samples")
        else:
            generator = torch.Generator(device=ckpt.device).manual_seed(request.seed)
            drawn = sample_futures(model, context[None], t_context, t_query, request.samples, generator=generator)
            draws = [d.float().cpu() for d in drawn[0]]
    return Result(context=context, t_context=t_context, t_query=t_query, frames=generated, truth=truth,
                  t_truth=t_truth, errors=_errors(generated, t_query, truth, t_truth, context[-1]),
                  latent=latent_json(model.latent_view(out), model.size, t_all, t_context), draws=draws,
                  notes=notes)


def _errors(generated: torch.Tensor, t_query: torch.Tensor, truth: torch.Tensor | None,
            t_truth: torch.Tensor | None, last: torch.Tensor) -> list[dict[str, float]]:
    """MSE (sum over pixels, per frame, as everywhere in odevideo) of the model and of copy-last, at each
    generated time that is also a recorded frame's."""
    if truth is None or t_truth is None:
        return []
    found = []
    for i, t in enumerate(t_query.tolist()):
        j = int(torch.argmin((t_truth - t).abs()))
        if abs(float(t_truth[j]) - t) <= TIME_MATCH:
            found.append({"t": t, "mse": float((generated[i] - truth[j]).pow(2).sum()),
                          "copy_last_mse": float((last - truth[j]).pow(2).sum())})
    return found


def latent_json(view: LatentView | None, size: int, times: torch.Tensor, t_context: torch.Tensor
                ) -> dict[str, object]:
    """The page's latent view of one sequence at ``times`` (T,), through the context and on: each object's
    centre (``tracks``, row and col in pixels, (K, T, 2)), the first two principal components (``pca``, (T, 2)),
    or ``none`` for a model without a latent state. ``observed`` counts the times up to the last context frame."""
    base = {"times": times.tolist(), "observed": int((times <= t_context[-1]).sum())}
    if view is None:
        return {"kind": "none", **base}
    if view.kind == "tracks":
        return {"kind": "tracks", **base, "size": size, "tracks": view.points[0].float().cpu().transpose(0, 1).tolist()}
    return {"kind": "pca", **base, "points": view.points[0].tolist(), "explained": view.explained}


def frame_at(ckpt: Checkpoint, context: torch.Tensor, t_context: torch.Tensor, t: float) -> torch.Tensor:
    """The frame (C, S, S) at one real time ``t`` (at or after the first context time)."""
    if not math.isfinite(t) or t < float(t_context[0]):
        raise DataError(f"t must be a number at or after the first context time {float(t_context[0]):g}, got {t}")
    out = generate(ckpt.model, context[None].to(ckpt.device), t_context, torch.tensor([float(t)]))
    return out.frames[0, 0].float().cpu()


def png_bytes(frame: torch.Tensor, scale: int = 1) -> bytes:
    """One frame (C, H, W) in [0, 1] as PNG bytes, each pixel repeated ``scale`` times each way."""
    import io

    import imageio.v3 as iio

    image = to_uint8_rgb(frame[None])[0]
    if scale > 1:
        image = image.repeat(scale, 0).repeat(scale, 1)
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    return buffer.getvalue()
