"""The solver wrapper: the only module that imports torchdiffeq.

``solve(field, z0, t)`` integrates dz/dt = field(t, z) from ``t[0]`` and returns the states at every time in
``t`` in odevideo's batch-first layout, with the number of function evaluations (NFE). Inputs are checked,
options are validated, the NFE is bounded (a solve fails loudly, never loops forever) and every failure is a
:class:`~odevideo.errors.SolverError` that says what to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from odevideo.errors import SolverError

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
METHODS = ADAPTIVE + FIXED


@dataclass
class ODESolution:
    """Result of :func:`solve`.

    Attributes:
        z: states, (B, T, *state_shape): ``z[:, i]`` is the state at ``t[i]``; ``z[:, 0]`` is ``z0``.
        t: the times, (T,).
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


def check_times(t: torch.Tensor, name: str = "t") -> None:
    """Raise ``SolverError`` unless ``t`` is a 1-D, finite, strictly increasing float tensor."""
    if t.ndim != 1 or t.numel() < 1:
        raise SolverError(f"{name} must be a 1-D tensor of times, got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        raise SolverError(f"{name} must be a float tensor, got {t.dtype}")
    if not torch.isfinite(t).all():
        raise SolverError(f"{name} holds NaN or infinite times: {t.tolist()}")
    if t.numel() > 1 and not (t[1:] > t[:-1]).all():
        raise SolverError(f"{name} must be strictly increasing, got {t.tolist()}")


def solve(field: nn.Module, z0: torch.Tensor, t: torch.Tensor, *, method: str = "dopri5",
          rtol: float = 1e-3, atol: float = 1e-4, step_size: float | None = None, adjoint: bool = False,
          max_nfe: int = 10_000) -> ODESolution:
    """Integrate dz/dt = field(t, z) from z(t[0]) = z0.

    Args:
        field: an ``nn.Module`` called as ``field(t, z)`` with ``t`` a scalar tensor and ``z`` (B, *state).
        z0: initial state, (B, *state).
        t: times, (T,), strictly increasing; ``t[0]`` is the time of ``z0``.
        method: a torchdiffeq method, one of ``METHODS``.
        rtol, atol: tolerances of adaptive methods.
        step_size: step of fixed-step methods; ``None`` steps from one time in ``t`` to the next. The grid is
            anchored at ``t[0]`` (t[0], t[0] + h, ...; it runs one step past ``t[-1]`` when needed) and times
            between grid points are interpolated linearly, so the state at a time does not depend on which
            other times are requested.
        adjoint: backpropagate with the adjoint method (memory constant in the number of steps).
        max_nfe: evaluations allowed in the forward solve (and, separately, in the adjoint backward solve).

    Returns:
        ODESolution with ``z`` of shape (B, T, *state).

    Raises:
        SolverError: bad options or times, NFE budget exceeded, step size underflow, non-finite state.
    """
    import torchdiffeq

    if method not in METHODS:
        raise SolverError(f"unknown solver method {method!r}; choose one of {list(METHODS)}")
    if max_nfe < 1:
        raise SolverError(f"max_nfe must be >= 1, got {max_nfe}")
    if step_size is not None and not (step_size > 0 and math.isfinite(step_size)):
        raise SolverError(f"step_size must be a positive number or None, got {step_size}")
    check_times(t)
    t = t.to(device=z0.device, dtype=z0.dtype)
    options = {"step_size": step_size} if (method in FIXED and step_size is not None) else {}
    n_out = t.numel()
    if options and t.numel() > 1:
        # torchdiffeq ends its grid exactly at t[-1]; end it instead on the anchored grid, one step beyond
        # t[-1] if that is off the grid, so that t[-1] is interpolated like any other time.
        steps = math.ceil(round(float(t[-1] - t[0]) / step_size, 6))
        end = t[0] + steps * step_size
        if float(end) > float(t[-1]):
            t = torch.cat([t, end[None]])
    counted = _Counted(field, max_nfe)
    kwargs = {"rtol": rtol, "atol": atol, "method": method, "options": options}
    try:
        if adjoint:
            z = torchdiffeq.odeint_adjoint(counted, z0, t, adjoint_params=tuple(field.parameters()), **kwargs)
        else:
            z = torchdiffeq.odeint(counted, z0, t, **kwargs)
    except AssertionError as exc:  # torchdiffeq signals step-size underflow with an assert
        raise SolverError(f"ODE solve failed ({exc}) {counted.where()}, nfe={counted.nfe}; the dynamics may be "
                          "stiff or diverging: lower the learning rate, loosen solver.rtol/atol or use a "
                          "fixed-step method") from None
    nfe = counted.nfe
    counted.nfe = 0  # the adjoint backward pass gets its own budget
    if not torch.isfinite(z[-1]).all():
        raise SolverError(f"ODE solve produced non-finite states by t={float(t[-1]):.4g} ({method}, nfe={nfe}, "
                          f"last evaluation {counted.where()}); lower the learning rate or the step size, or "
                          "clip gradients")
    # torchdiffeq is time-first: (T, B, ...) -> (B, T, ...), without the grid-closing time if one was added
    return ODESolution(z=z[:n_out].movedim(0, 1), t=t[:n_out], nfe=nfe)
