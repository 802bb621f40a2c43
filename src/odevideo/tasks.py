"""Continuous-time evaluation tasks with exact ground truth.

Moving MNIST and bouncing balls render any real time exactly (digits move on straight lines and reflect at the
walls; balls collide elastically, simulated event by event), so frames between and far beyond the observed
ones have a true answer. Each task fixes the context times and the query
times; a model and the time-aware baselines are scored at every query time:

- ``interpolation``: context at the even times 0, 2, ..., 18; generate the odd times 1, 3, ..., 17.
- ``fruc_x2`` / ``fruc_x4``: frame-rate up-conversion inside the context window: context at 0, 1, ..., 9;
  generate the times k/2 (k/4) in (0, 9) that are not context times.
- ``extrapolation_30``: context at 0, 1, ..., 9; predict 10, 11, ..., 39.
- ``irregular_context``: context at 10 times per sequence, 0, eight sorted uniform times in (0, 9) and 9;
  predict 10, 11, ..., 19. Every sequence has its own context times.

Baselines use only the context frames and their times: ``nearest`` (the context frame nearest in time),
``linear`` (a linear blend of the two context frames around the query time; the nearest end frame outside the
context window) and ``zeros`` (black frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from odevideo import metrics
from odevideo.data.clips import Source, as_float_frames
from odevideo.errors import DataError
from odevideo.inference import generate
from odevideo.models import VideoModel

TIME_BASELINES = ("nearest", "linear", "zeros")
TASK_METRICS = {"mse": metrics.mse, "ssim": metrics.ssim}


@dataclass
class Task:
    """Context and query times of one task: ``times(indices) -> (t_context (B, M), t_query (B, Tq))``."""

    name: str
    description: str
    times: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _shared(t_context: np.ndarray, t_query: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def times(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = len(indices)
        return np.tile(t_context, (b, 1)), np.tile(t_query, (b, 1))

    return times


def _fruc(k: int) -> np.ndarray:
    grid = np.arange(9 * k + 1) / k
    return grid[grid != np.round(grid)]


def _irregular(indices: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t_context = np.empty((len(indices), 10))
    for row, index in enumerate(indices):
        inner = np.sort(np.random.default_rng([seed, 4, int(index)]).uniform(0.0, 9.0, 8))
        t_context[row] = np.concatenate([[0.0], inner, [9.0]])
    return t_context, np.tile(np.arange(10.0, 20.0), (len(indices), 1))


TASKS: dict[str, Task] = {
    "interpolation": Task("interpolation", "context at 0, 2, ..., 18; generate 1, 3, ..., 17",
                          _shared(np.arange(0.0, 19.0, 2.0), np.arange(1.0, 18.0, 2.0))),
    "fruc_x2": Task("fruc_x2", "context at 0..9; generate the half times 0.5, 1.5, ..., 8.5",
                    _shared(np.arange(10.0), _fruc(2))),
    "fruc_x4": Task("fruc_x4", "context at 0..9; generate the quarter times in (0, 9) between frames",
                    _shared(np.arange(10.0), _fruc(4))),
    "extrapolation_30": Task("extrapolation_30", "context at 0..9; predict 10..39",
                             _shared(np.arange(10.0), np.arange(10.0, 40.0))),
    "irregular_context": Task("irregular_context", "context at 0, 8 random times in (0, 9), 9; predict 10..19",
                              _irregular),
}


def time_baseline(name: str, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor) -> torch.Tensor:
    """Baseline frames (B, Tq, C, H, W) at ``t_query`` (B, Tq) from ``context`` (B, M, C, H, W) at ``t_context``
    (B, M); see the module docstring."""
    if name == "zeros":
        return context.new_zeros(context.shape[0], t_query.shape[1], *context.shape[2:])
    m = context.shape[1]
    right = torch.searchsorted(t_context.contiguous(), t_query.contiguous()).clamp(max=m - 1)  # first >= t, or last
    left = (right - 1).clamp(min=0)
    t_left, t_right = t_context.gather(1, left), t_context.gather(1, right)
    rows = torch.arange(context.shape[0])[:, None]
    if name == "nearest":
        pick = torch.where((t_query - t_left).abs() <= (t_right - t_query).abs(), left, right)
        return context[rows, pick]
    if name == "linear":
        span = (t_right - t_left).clamp(min=1e-12)
        w = ((t_query - t_left) / span).clamp(0.0, 1.0)  # outside the window: the nearest end frame
        w = w.view(*w.shape, 1, 1, 1)
        return (1 - w) * context[rows, left] + w * context[rows, right]
    raise ValueError(f"unknown baseline {name!r}; choose from {TIME_BASELINES}")


def task_data(task: Task, source: Source, n: int) -> dict[str, torch.Tensor]:
    """The task's test sequences: ``context`` (N, M, C, H, W) and ``target`` (N, Tq, C, H, W) uint8, rendered
    by ``source`` (a test split that renders any real time, e.g. ``MovingMNIST("test", digits=1)`` or
    ``BouncingBalls("test")``) at ``t_context`` (N, M) and ``t_query`` (N, Tq)."""
    if not source.continuous:
        raise DataError("continuous-time tasks need a dataset that renders any real time (moving_mnist, "
                        "bouncing_balls): a folder's clips exist only at their recorded times")
    indices = np.arange(n)
    t_context, t_query = task.times(indices)
    return {"context": source.batch(indices, t_context, as_float=False)["frames"],
            "target": source.batch(indices, t_query, as_float=False)["frames"],
            "t_context": torch.from_numpy(t_context).float(), "t_query": torch.from_numpy(t_query).float()}


def evaluate_task(data: dict[str, torch.Tensor], model: VideoModel | None = None, *, methods: tuple[str, ...] = (),
                  batch_size: int = 64) -> dict[str, dict[str, object]]:
    """Score ``model`` (as method ``model``) and the baselines ``methods`` on a task's data.

    Returns:
        {method: {"mse": mean, "ssim": mean, "per_time": {"t": [...], "mse": [...], "ssim": [...]}}}, the curves
        averaged over sequences at each query index (``t`` is the mean query time there: the times themselves
        when shared by all sequences).
    """
    names = (["model"] if model is not None else []) + list(methods)
    if not names:
        raise DataError("nothing to evaluate: give a model or baseline methods")
    scores: dict[str, dict[str, list[torch.Tensor]]] = {k: {m: [] for m in TASK_METRICS} for k in names}
    n = data["context"].shape[0]
    for i in range(0, n, batch_size):
        context = as_float_frames(data["context"][i:i + batch_size])
        target = as_float_frames(data["target"][i:i + batch_size])
        t_ctx, t_q = data["t_context"][i:i + batch_size], data["t_query"][i:i + batch_size]
        for name in names:
            pred = (generate(model, context, t_ctx, t_q).frames.cpu() if name == "model"
                    else time_baseline(name, context, t_ctx, t_q))
            for metric, fn in TASK_METRICS.items():
                scores[name][metric].append(fn(pred, target))
    t_mean = [round(float(t), 4) for t in data["t_query"].double().mean(0)]
    out: dict[str, dict[str, object]] = {}
    for name in names:
        summary = metrics.summarize(scores[name])
        per_step = summary.pop("per_step")
        out[name] = {**summary, "per_time": {"t": t_mean, **per_step}}  # type: ignore[dict-item]
    return out
