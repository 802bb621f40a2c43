"""Input checks shared by every model at its public entry: frame layout, times, the frame grid.

Times may be shared by the batch, shaped (T,), or given per sample, shaped (B, T); the checks return them
per sample, so a model handles one layout.
"""

from __future__ import annotations

import torch

from odevideo.errors import DataError
from odevideo.ode.solve import batch_times


def check_inputs(frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *, channels: int,
                 size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a model's inputs and return the times per sample, (B, M) and (B, Tq).

    Raises ``DataError``/``SolverError`` unless frames are (B, M, channels, size, size), the M context times
    and the query times increase (per sample), and no query precedes its sample's first context time.
    """
    if frames.ndim != 5 or tuple(frames.shape[2:]) != (channels, size, size):
        raise DataError(f"context frames must be (B, M, {channels}, {size}, {size}), got {tuple(frames.shape)}")
    b = frames.shape[0]
    t_context = batch_times(t_context, b, "t_context")
    t_query = batch_times(t_query, b, "t_query")
    if t_context.shape[1] != frames.shape[1]:
        raise DataError(f"{frames.shape[1]} context frames but {t_context.shape[1]} context times")
    early = (t_query[:, 0] < t_context[:, 0]).nonzero()
    if early.numel():
        row = int(early[0])
        raise DataError(f"query times must be >= the first context time {float(t_context[row, 0])}, "
                        f"got {float(t_query[row, 0])}" + (f" (sample {row})" if b > 1 else ""))
    return t_context, t_query.to(t_context)


def whole_steps(t_query: torch.Tensor, t0: torch.Tensor, model: str) -> torch.Tensor:
    """Indices (B, Tq) of the query times (B, Tq) on each sample's frame grid t0, t0 + 1, ... (t0: (B, 1));
    ``DataError`` for times off the grid."""
    steps = t_query - t0
    if not torch.allclose(steps, steps.round(), atol=1e-4):
        raise DataError(f"{model} generates frames at whole steps after the first context time, got times "
                        f"{t_query.tolist()} after {t0.flatten().tolist()}")
    return steps.round().long()


def frame_grid_steps(t_context: torch.Tensor, t_query: torch.Tensor, model: str) -> torch.Tensor:
    """For a model that reads consecutive frames: ``DataError`` unless the context times (B, M) are one step
    apart, then the indices (B, Tq) of the query times on each sample's frame grid (:func:`whole_steps`)."""
    gaps = t_context[:, 1:] - t_context[:, :-1]
    if gaps.numel() and not torch.allclose(gaps, torch.ones_like(gaps)):
        raise DataError(f"{model} needs consecutive context frames one step apart, got {t_context.tolist()}")
    return whole_steps(t_query, t_context[:, :1], model)
