"""Time handling: every time a user, a model or the solver is given passes through here, and is checked once.

Times are real numbers in units of input frame intervals (frame k of a regular clip is at t = k). Inside the
package they are float tensors: shared by the batch, (T,), or per sample, (B, T), each row strictly increasing.

    user input  --as_times / parse_times / context_times / query_times-->  tensors
    a model's entry  --check_times-->  per-sample (B, M) and (B, Tq), validated       (the only validation)
    the solver  --ode.solve.integrate-->  trusts them; ``ode.solve.solve`` (the public call) checks first
    discrete models  --grid_steps-->  indices on the frame grid
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from odevideo.errors import DataError, SolverError

GRID_TOLERANCE = 1e-4  # a time this close to a whole step is on the frame grid


# ------------------------------------------------------------------------------------------------- input
def as_times(values: Sequence[float] | Sequence[Sequence[float]] | torch.Tensor) -> torch.Tensor:
    """Times as float32, (T,) or (B, T); a scalar becomes (1,). Checked where a model receives them."""
    t = torch.as_tensor(values, dtype=torch.float32)
    return t.reshape(-1) if t.ndim < 2 else t


def parse_times(values: Sequence[float], name: str) -> torch.Tensor:
    """A user's list of times -> (T,) float32; ``DataError`` (naming ``name``, e.g. ``--times``) unless they
    are finite, strictly increasing and >= 0."""
    t = torch.tensor(list(values), dtype=torch.float32)
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise DataError(f"{name} must be finite numbers, got {list(values)}")
    if t.numel() > 1 and not (t[1:] > t[:-1]).all():
        raise DataError(f"{name} must be strictly increasing, got {t.tolist()}")
    if float(t[0]) < 0:
        raise DataError(f"{name} must be >= 0 (the first context frame is at t=0 by default), got {float(t[0])}")
    return t


def context_times(n_context: int, times: Sequence[float] | None = None) -> torch.Tensor:
    """Times of the context frames: ``times`` (one per frame, strictly increasing, >= 0; irregular spacing is
    fine) or 0, 1, ..., n_context - 1."""
    if times is None:
        return torch.arange(n_context, dtype=torch.float32)
    t = parse_times(times, "--context-times")
    if t.numel() != n_context:
        raise DataError(f"--context-times gives {t.numel()} times for {n_context} context frames")
    return t


def query_times(t_context: torch.Tensor, *, n_future: int | None = None, horizon: float | None = None,
                times: Sequence[float] | None = None, fps_factor: int = 1,
                include_context: bool = False) -> torch.Tensor:
    """The times to generate, (Tq,), in units of input frame intervals.

    Either explicit real ``times``, or a frame grid with ``fps_factor`` frames per input interval (K = 4 is a
    4x higher frame rate, or 4x slow motion at the input's playback rate) running ``n_future`` frame intervals
    (or a real ``horizon``) past the last context time; ``include_context`` starts the grid at the first
    context time instead, so the context window is re-rendered at the new rate too.
    """
    if times is not None:
        if n_future is not None or horizon is not None or fps_factor != 1 or include_context:
            raise DataError("--times lists the times itself: drop --n-future/--horizon/--fps-factor/--include-context")
        t = parse_times(times, "--times")
        if float(t[0]) < float(t_context[0]):
            raise DataError(f"--times must be at or after the first context time ({float(t_context[0]):g}), "
                            f"got {float(t[0]):g}")
        return t
    if (n_future is None) == (horizon is None):
        raise DataError("give exactly one of --n-future N, --horizon H or --times t1,t2,...")
    if fps_factor < 1:
        raise DataError(f"--fps-factor must be a whole number >= 1, got {fps_factor}")
    span = float(n_future) if n_future is not None else float(horizon)  # type: ignore[arg-type]
    if not (math.isfinite(span) and span > 0):
        raise DataError(f"--n-future/--horizon must be > 0, got {n_future if n_future is not None else horizon}")
    first, last = float(t_context[0]), float(t_context[-1])
    start = first if include_context else last
    steps = torch.arange(0 if include_context else 1, int(round((last - start + span) * fps_factor, 6)) + 1)
    return start + steps.to(torch.float64).div(fps_factor).to(torch.float32)


# ------------------------------------------------------------------------------------------------- checks
def batch_times(t: torch.Tensor, batch: int, name: str = "t") -> torch.Tensor:
    """``t`` (T,) or (B, T) -> (B, T), after checking that it is a float tensor whose rows are finite and
    strictly increasing; ``SolverError`` otherwise."""
    if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
        raise SolverError(f"{name} must be a float tensor of times, got {getattr(t, 'dtype', type(t).__name__)}")
    if t.ndim == 1:
        t = t.expand(batch, -1)
    if t.ndim != 2 or t.shape[0] != batch or t.shape[1] < 1:
        raise SolverError(f"{name} must be (T,) or (B={batch}, T) with T >= 1, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise SolverError(f"{name} holds NaN or infinite times: {t.tolist()}")
    bad = (t[:, 1:] <= t[:, :-1]).any(dim=1).nonzero()
    if bad.numel():
        row = int(bad[0])
        raise SolverError(f"{name} must be strictly increasing, got {t[row].tolist()}"
                          + (f" (sample {row})" if batch > 1 else ""))
    return t


def check_times(t_context: torch.Tensor, t_query: torch.Tensor, batch: int, n_context: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A model's times, checked once: -> per sample, (B, M) and (B, Tq), in ``t_context``'s dtype.

    Raises ``DataError``/``SolverError`` unless both increase (per sample), there are ``n_context`` context
    times, and no query precedes its sample's first context time.
    """
    t_context = batch_times(t_context, batch, "t_context")
    t_query = batch_times(t_query, batch, "t_query")
    if t_context.shape[1] != n_context:
        raise DataError(f"{n_context} context frames but {t_context.shape[1]} context times")
    early = (t_query[:, 0] < t_context[:, 0]).nonzero()
    if early.numel():
        row = int(early[0])
        raise DataError(f"query times must be >= the first context time {float(t_context[row, 0])}, "
                        f"got {float(t_query[row, 0])}" + (f" (sample {row})" if batch > 1 else ""))
    return t_context, t_query.to(t_context)


# ------------------------------------------------------------------------------------------------- the frame grid
def grid_steps(t_query: torch.Tensor, t0: torch.Tensor, model: str, *,
               t_context: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (B, Tq) of the query times (B, Tq) on each sample's frame grid t0, t0 + 1, ... (t0: (B, 1)), for
    a model that steps once per frame (``model`` names it in errors); ``DataError`` for times off the grid.

    With ``t_context`` (B, M), the context frames must be consecutive too (one step apart): for models that
    read them frame after frame."""
    if t_context is not None:
        gaps = t_context[:, 1:] - t_context[:, :-1]
        if gaps.numel() and not torch.allclose(gaps, torch.ones_like(gaps)):
            raise DataError(f"{model} needs consecutive context frames one step apart, got {t_context.tolist()}")
    steps = t_query - t0
    if not torch.allclose(steps, steps.round(), atol=GRID_TOLERANCE):
        raise DataError(f"{model} generates frames at whole steps after the first context time, got times "
                        f"{t_query.tolist()} after {t0.flatten().tolist()}")
    return steps.round().long()
