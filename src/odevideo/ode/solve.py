"""The solver wrapper: the only module that imports torchdiffeq.

``solve(field, z0, t)`` integrates dz/dt = field(t, z) from ``z0`` and returns the states at the times ``t``
in odevideo's batch-first layout, with the number of function evaluations (NFE). Times are shared by the batch,
(T,), or given per sample, (B, T). Inputs are checked, options are validated, the NFE is bounded (a solve fails
loudly, never loops forever) and every failure is a :class:`~odevideo.errors.SolverError` that says what to
change. :class:`SolverConfig` holds the solver's options and their defaults, the only place they are defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from odevideo.errors import ConfigError, SolverError
from odevideo.times import batch_times

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
METHODS = ADAPTIVE + FIXED


@dataclass
class SolverConfig:
    """ODE solver options, passed to :func:`solve`.

    Attributes:
        method: a torchdiffeq method: fixed-step ``rk4``, ``euler``, ``midpoint``, ...; adaptive ``dopri5``, ...
        rtol: relative tolerance of adaptive methods.
        atol: absolute tolerance of adaptive methods.
        step_size: step of fixed-step methods, in time units (a frame is one unit); ``None`` steps from one
            requested time to the next.
        adjoint: backpropagate with the adjoint method (memory constant in the number of steps, more compute).
        max_nfe: function evaluations allowed per solve; beyond it the solve fails with ``SolverError``.
    """

    method: str = "midpoint"
    rtol: float = 1e-3
    atol: float = 1e-4
    step_size: float | None = 1.0
    adjoint: bool = False
    max_nfe: int = 10_000

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"solver.method={self.method!r} is not one of {sorted(METHODS)}")
        if not (self.rtol > 0 and self.atol > 0 and self.max_nfe >= 1):
            raise ConfigError(f"solver.rtol and solver.atol must be > 0 and solver.max_nfe >= 1, got "
                              f"{self.rtol}, {self.atol}, {self.max_nfe}")
        if self.step_size is not None and not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ConfigError(f"solver.step_size must be a positive number or null, got {self.step_size}")


@dataclass
class ODESolution:
    """Result of :func:`solve`.

    Attributes:
        z: states, (B, T, *state_shape): ``z[b, i]`` is sample b's state at ``t[b, i]``.
        t: the times, (B, T).
        nfe: function evaluations of the forward solve.
    """

    z: torch.Tensor
    t: torch.Tensor
    nfe: int


class _Counted(nn.Module):
    """Wraps a field to count evaluations, remember where the solver was (for error messages) and stop the
    solve once ``max_nfe`` is spent."""

    def __init__(self, field: nn.Module, max_nfe: int) -> None:
        super().__init__()
        self.field, self.max_nfe, self.nfe = field, max_nfe, 0
        self.recent: list[torch.Tensor] = []  # the last evaluation times, kept as tensors (no device sync)

    def where(self) -> str:
        """Where the solve was: the last evaluation time and the gap to the one before it that differs."""
        times = [float(t) for t in self.recent]
        if not times:
            return "before the first evaluation"
        earlier = [u for u in times[:-1] if u != times[-1]]
        return f"at t={times[-1]:.6g}" + (f", dt={times[-1] - earlier[-1]:.3g}" if earlier else "")

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        self.recent = [*self.recent[-5:], t.detach()]
        if self.nfe > self.max_nfe:
            raise SolverError(
                f"ODE solve exceeded max_nfe={self.max_nfe} function evaluations {self.where()}; "
                "the dynamics may be stiff: raise solver.max_nfe, loosen solver.rtol/atol, "
                "or use a fixed-step method (solver.method=rk4)")
        return self.field(t, z)


def solve(field: nn.Module, z0: torch.Tensor, t: torch.Tensor, *, t0: torch.Tensor | float | None = None,
          method: str = SolverConfig.method, rtol: float = SolverConfig.rtol, atol: float = SolverConfig.atol,
          step_size: float | None = SolverConfig.step_size, adjoint: bool = SolverConfig.adjoint,
          max_nfe: int = SolverConfig.max_nfe) -> ODESolution:
    """Integrate dz/dt = field(t, z) from z0 and return the states at the times ``t``: the public call, which
    checks its options and times, then runs :func:`integrate`.

    Args:
        field: an ``nn.Module`` called as ``field(t, z)`` with ``t`` a scalar tensor and ``z`` (B, *state).
        z0: initial states, (B, *state).
        t: output times, (T,) shared by the batch or (B, T) per sample, each row strictly increasing.
        t0: the time of ``z0``: a number, or one per sample, (B,); default the first time of each row of ``t``.
            Every output time must be >= its sample's ``t0``.
        method, rtol, atol, step_size, adjoint, max_nfe: see :class:`SolverConfig` (the defaults are its own).

    Returns:
        ODESolution with ``z`` of shape (B, T, *state).

    Raises:
        SolverError: bad options or times, NFE budget exceeded, step-size underflow, non-finite state.
    """
    try:
        config = SolverConfig(method=method, rtol=rtol, atol=atol, step_size=step_size, adjoint=adjoint,
                              max_nfe=max_nfe)
    except ConfigError as exc:
        raise SolverError(str(exc).replace("solver.", "")) from None
    b = z0.shape[0]
    t = batch_times(t, b)
    start = t[:, 0] if t0 is None else torch.as_tensor(t0, dtype=t.dtype, device=t.device).expand(b)
    if not torch.isfinite(start).all():
        raise SolverError(f"t0 holds NaN or infinite times: {start.tolist()}")
    if (t < start[:, None]).any():
        raise SolverError("every output time must be >= its sample's t0")
    return integrate(field, z0, t, start, config)


def integrate(field: nn.Module, z0: torch.Tensor, t: torch.Tensor, t0: torch.Tensor, config: SolverConfig
              ) -> ODESolution:
    """:func:`solve` for times already checked (a model's, by :func:`odevideo.times.check_times`): ``t``
    (B, T) strictly increasing per row, ``t0`` (B,) at or before each row's first time.

    Each sample is integrated from its own ``t0``. When all samples share one ``t0`` the field sees the real
    time; when they differ, the batch is solved in one pass in each sample's own clock, ``t - t0``, so the
    field is called with the time since the start (exact for autonomous fields, which ignore t, like every
    field in :mod:`odevideo.ode.fields`). A fixed-step method steps on the grid t0, t0 + h, t0 + 2h, ... and
    states between grid points are interpolated linearly, so a sample's states do not depend on which other
    times, or which other samples, are requested. An adaptive method (or ``step_size=None``) solves once over
    the sorted union of every sample's times; it picks its steps from the whole batch's error, so results
    then agree with solving alone only to the tolerance.
    """
    # Times in at least float32, whatever the states are: in bf16 (mixed precision) a time of 20 would round
    # to a multiple of 1/8.
    tdtype = torch.promote_types(z0.dtype, torch.float32)
    t, t0 = t.to(device=z0.device, dtype=tdtype), t0.to(device=z0.device, dtype=tdtype)
    rel = t - t0[:, None]  # (B, T): each sample's own clock
    shared = bool((t0 == t0[0]).all())
    base = t0[0] if shared else t0.new_zeros(())  # the real time where the clocks start
    fixed = config.method in FIXED and config.step_size is not None
    if fixed:
        n = max(1, math.ceil(round(float(rel.max()) / config.step_size, 6)))
        grid = torch.arange(n + 1, device=z0.device, dtype=tdtype) * config.step_size
    else:
        grid = torch.unique(torch.cat([rel.new_zeros(1), rel.flatten()]))  # sorted
    z, nfe = _odeint(field, z0, base + grid, config, {"step_size": config.step_size} if fixed else {})
    z = z.movedim(0, 1)  # torchdiffeq is time-first: (T_grid, B, ...) -> (B, T_grid, ...)
    rows = torch.arange(z0.shape[0], device=z0.device)[:, None]
    if not fixed:
        return ODESolution(z=z[rows, torch.searchsorted(grid, rel.contiguous())], t=t, nfe=nfe)
    pos = rel / config.step_size
    index = pos.floor().long().clamp(0, n - 1)  # (B, T): the grid step each time falls in
    frac = (pos - index).view(*rel.shape, *[1] * (z.ndim - 2)).to(z.dtype)
    lo, hi = z[rows, index], z[rows, index + 1]
    return ODESolution(z=lo + frac * (hi - lo), t=t, nfe=nfe)


def _odeint(field: nn.Module, z0: torch.Tensor, times: torch.Tensor, config: SolverConfig, options: dict
            ) -> tuple[torch.Tensor, int]:
    """torchdiffeq's solve at ``times`` (time-first output) with its method ``options``, and its NFE, with
    every failure a ``SolverError``."""
    import torchdiffeq

    counted = _Counted(field, config.max_nfe)
    kwargs = {"rtol": config.rtol, "atol": config.atol, "method": config.method, "options": options}
    try:
        if config.adjoint:
            z = torchdiffeq.odeint_adjoint(counted, z0, times, adjoint_params=tuple(field.parameters()), **kwargs)
        else:
            z = torchdiffeq.odeint(counted, z0, times, **kwargs)
    except AssertionError as exc:  # torchdiffeq signals step-size underflow with an assert
        raise SolverError(f"ODE solve failed ({exc}) {counted.where()}, nfe={counted.nfe}; the dynamics may be "
                          "stiff or diverging: lower the learning rate, loosen solver.rtol/atol or use a "
                          "fixed-step method") from None
    nfe = counted.nfe
    counted.nfe = 0  # the adjoint backward pass gets its own budget
    if not torch.isfinite(z[-1]).all():
        raise SolverError(f"ODE solve produced non-finite states by t={float(times[-1]):.4g} ({config.method}, "
                          f"nfe={nfe}, last evaluation {counted.where()}); lower the learning rate or the step "
                          "size, or clip gradients")
    return z, nfe
