"""The solver wrapper against exact solutions, its layout, gradients and failure modes."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from odevideo.errors import SolverError
from odevideo.ode import ConvField, MLPField, SolverConfig, solve


class Linear(nn.Module):
    """dz/dt = A z with a learnable A."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t, z):
        return z @ self.a.T


ROTATION = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize("method,kw,tol", [("dopri5", {"rtol": 1e-9, "atol": 1e-10}, 1e-7),
                                           ("rk4", {"step_size": 0.01}, 1e-7),
                                           ("euler", {"step_size": 1e-3}, 1e-3)])
def test_exponential_decay_matches_exact_solution(method, kw, tol):
    k = torch.tensor([[-0.7]], dtype=torch.float64)
    z0 = torch.tensor([[1.0], [2.0], [-3.0]], dtype=torch.float64)  # (B, 1)
    t = torch.tensor([0.0, 0.5, 1.3, 2.0], dtype=torch.float64)
    sol = solve(Linear(k), z0, t, method=method, **kw)
    exact = z0[:, None, :] * torch.exp(-0.7 * t)[None, :, None]  # (B, T, 1)
    assert sol.z.shape == (3, 4, 1)
    torch.testing.assert_close(sol.z, exact, atol=tol, rtol=0)


def test_rotation_is_exact_and_time_starts_at_t0():
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([2.0, 2.0 + math.pi / 2, 2.0 + math.pi], dtype=torch.float64)
    sol = solve(Linear(ROTATION), z0, t, method="dopri5", rtol=1e-10, atol=1e-12)
    expected = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(sol.z, expected, atol=1e-8, rtol=0)
    assert sol.nfe > 0


def test_rk4_converges_with_fourth_order():
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 3.0], dtype=torch.float64)
    exact = torch.tensor([math.cos(3.0), math.sin(3.0)], dtype=torch.float64)
    steps = [0.2, 0.1, 0.05]
    errors = [(solve(Linear(ROTATION), z0, t, method="rk4", step_size=h).z[0, -1] - exact).norm().item()
              for h in steps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 3.7 < slope < 4.3


def test_per_sample_times_and_starts_match_the_exact_solution():
    k = torch.tensor([[-0.7]], dtype=torch.float64)
    z0 = torch.tensor([[1.0], [2.0], [-3.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.5, 1.3], [2.0, 2.25, 4.0], [0.1, 3.0, 3.5]], dtype=torch.float64)  # (B, T)
    t0 = torch.tensor([0.0, 1.0, 0.1], dtype=torch.float64)  # sample 1 starts before its first output time
    for kw in ({"method": "rk4", "step_size": 0.01}, {"method": "dopri5", "rtol": 1e-9, "atol": 1e-10}):
        sol = solve(Linear(k), z0, t, t0=t0, **kw)
        exact = z0[:, None, :] * torch.exp(-0.7 * (t - t0[:, None]))[..., None]  # (B, T, 1)
        torch.testing.assert_close(sol.z, exact, atol=1e-7, rtol=0)


def test_fixed_step_states_do_not_depend_on_the_other_requested_times():
    field = MLPField(dim=3, hidden=8, layers=2)
    z0 = torch.randn(2, 3)
    full = solve(field, z0, torch.tensor([[0.0, 0.3, 1.7, 4.0], [1.0, 1.5, 2.0, 9.0]]), method="rk4",
                 step_size=0.5)
    part = solve(field, z0, torch.tensor([[0.0, 1.7], [1.0, 2.0]]), method="rk4", step_size=0.5)
    torch.testing.assert_close(part.z, full.z[:, [0, 2]], atol=1e-6, rtol=1e-5)


def test_output_times_before_t0_are_refused():
    with pytest.raises(SolverError, match=">= its sample's t0"):
        solve(MLPField(2, 4, 1), torch.zeros(2, 2), torch.tensor([0.0, 1.0]), t0=torch.tensor([0.0, 0.5]))


def test_the_defaults_of_solve_are_those_of_solver_config():
    import inspect

    params = inspect.signature(solve).parameters
    for name, value in vars(SolverConfig()).items():
        assert params[name].default == value, name


def test_batch_first_layout_for_spatial_states():
    field = ConvField(dim=3, hidden=4, layers=1)
    z0 = torch.randn(2, 3, 5, 5)
    t = torch.linspace(0, 1, 7)
    sol = solve(field, z0, t, method="rk4", step_size=0.25)
    assert sol.z.shape == (2, 7, 3, 5, 5)
    torch.testing.assert_close(sol.z[:, 0], z0)
    # each sample is solved independently of the others in the batch
    alone = solve(field, z0[1:], t, method="rk4", step_size=0.25)
    torch.testing.assert_close(alone.z[0], sol.z[1], atol=1e-6, rtol=1e-5)


def test_adjoint_and_direct_gradients_agree():
    torch.manual_seed(1)
    field = MLPField(dim=3, hidden=8, layers=2).double()
    z0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        z0.grad = None
        sol = solve(field, z0, t, method="dopri5", rtol=1e-10, atol=1e-10, adjoint=adjoint)
        sol.z.pow(2).sum().backward()
        grads.append([z0.grad.clone()] + [p.grad.clone() for p in field.parameters()])
    for direct, adj in zip(*grads, strict=False):
        torch.testing.assert_close(direct, adj, atol=1e-6, rtol=1e-5)


def test_direct_gradient_passes_gradcheck():
    field = Linear(torch.tensor([[-0.3, 0.2], [0.1, -0.5]], dtype=torch.float64))
    t = torch.tensor([0.0, 0.7], dtype=torch.float64)

    def fn(z0):
        return solve(field, z0, t, method="rk4", step_size=0.1).z

    assert torch.autograd.gradcheck(fn, (torch.randn(2, 2, dtype=torch.float64, requires_grad=True),))


def test_max_nfe_stops_the_solve_with_a_typed_error():
    stiff = Linear(torch.tensor([[-1e6]], dtype=torch.float64))
    with pytest.raises(SolverError, match=r"max_nfe=50 function evaluations at t=[0-9.e-]+, dt=[0-9.e-]+; .*stiff"):
        solve(stiff, torch.ones(1, 1, dtype=torch.float64), torch.tensor([0.0, 10.0], dtype=torch.float64),
              method="dopri5", rtol=1e-12, atol=1e-12, max_nfe=50)


@pytest.mark.parametrize("t,match", [([0.0, 1.0, 1.0], "strictly increasing"), ([0.0, 2.0, 1.0], "strictly"),
                                     ([0.0, float("nan")], "NaN"), ([[[0.0, 1.0]]], r"\(T,\) or \(B=1, T\)"),
                                     ([[0.0, 1.0], [0.0, 2.0]], r"\(B=1, T\)")])
def test_bad_times_are_refused(t, match):
    with pytest.raises(SolverError, match=match):
        solve(MLPField(2, 4, 1), torch.zeros(1, 2), torch.tensor(t), method="rk4")


def test_bad_options_are_refused():
    with pytest.raises(SolverError, match="method=.magic. is not one of"):
        solve(MLPField(2, 4, 1), torch.zeros(1, 2), torch.tensor([0.0, 1.0]), method="magic")
    with pytest.raises(SolverError, match="step_size"):
        solve(MLPField(2, 4, 1), torch.zeros(1, 2), torch.tensor([0.0, 1.0]), method="rk4", step_size=-1.0)


def test_diverging_dynamics_raise_non_finite_error():
    blowup = Linear(torch.tensor([[1e5]], dtype=torch.float32))
    with pytest.raises(SolverError, match=r"non-finite states by t=10 .*at t=[0-9.]+, dt=0.5\); lower"):
        solve(blowup, torch.ones(1, 1), torch.tensor([0.0, 10.0]), method="euler", step_size=0.5)


def test_a_singular_field_fails_quickly_naming_t_and_dt():
    class Singular(torch.nn.Module):  # dz/dt = 1 / (1 - t): blows up at t = 1
        def forward(self, t, z):
            return z / (1 - t)

    # dopri5 shrinks its step towards t = 1 until the NFE budget (or, in some versions, dt underflow) stops it
    with pytest.raises(SolverError, match=r"at t=(1|0\.99\d*), dt=[0-9.e-]+[;,].*stiff"):
        solve(Singular(), torch.ones(1, 1, dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64),
              method="dopri5", rtol=1e-10, atol=1e-10, max_nfe=5000)


def test_bf16_states_keep_float32_times():
    z0 = torch.ones(2, 1, dtype=torch.bfloat16)
    t = torch.tensor([[20.0, 20.3], [20.0, 20.6]])  # bf16 would round 20.3 and 20.6 to 20.25 and 20.5
    sol = solve(Linear(torch.tensor([[0.0]])).to(torch.bfloat16), z0, t, method="rk4", step_size=0.5)
    assert sol.t.dtype == torch.float32 and torch.equal(sol.t, t)
    assert sol.z.dtype == torch.bfloat16
