"""Input checks shared by every model at its public entry: frame layout, times, the frame grid."""

from __future__ import annotations

import torch

from odevideo.errors import DataError
from odevideo.ode.solve import check_times


def check_inputs(frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *, channels: int,
                 size: int) -> None:
    """Raise ``DataError``/``SolverError`` unless frames are (B, M, channels, size, size) with M increasing
    context times and increasing query times that start no earlier than the first context time."""
    if frames.ndim != 5 or tuple(frames.shape[2:]) != (channels, size, size):
        raise DataError(f"context frames must be (B, M, {channels}, {size}, {size}), got {tuple(frames.shape)}")
    check_times(t_context, "t_context")
    check_times(t_query, "t_query")
    if t_context.numel() != frames.shape[1]:
        raise DataError(f"{frames.shape[1]} context frames but {t_context.numel()} context times")
    if float(t_query[0]) < float(t_context[0]):
        raise DataError(f"query times must be >= the first context time {float(t_context[0])}, "
                        f"got {float(t_query[0])}")


def whole_steps(t_query: torch.Tensor, t0: torch.Tensor, model: str) -> torch.Tensor:
    """Indices of ``t_query`` on the frame grid t0, t0 + 1, ...; ``DataError`` for times off the grid."""
    steps = t_query - t0
    if not torch.allclose(steps, steps.round(), atol=1e-4):
        raise DataError(f"{model} generates frames at whole steps after t0={float(t0)}, got times {t_query.tolist()}")
    return steps.round().long()
