"""Continuous time: per-sample and irregular times, batched generation, time checks."""

from __future__ import annotations

import pytest
import torch

from odevideo.errors import DataError, SolverError
from odevideo.inference import generate


def irregular_times(generator: torch.Generator, b: int, m: int, start: float, span: float) -> torch.Tensor:
    """(B, m) sorted distinct random times in [start, start + span], the first at ``start``."""
    rest = torch.rand(b, m - 1, generator=generator).sort(dim=1).values * span + start
    return torch.cat([torch.full((b, 1), start), rest + 1e-3], dim=1)


@pytest.mark.parametrize("latent", ["spatial", "vector"])
def test_querying_the_context_times_reproduces_the_reconstruction_path(tiny_config, latent):
    torch.manual_seed(0)
    model = tiny_config(latent=latent).build_model()
    frames = torch.rand(3, 5, 1, 32, 32)
    t_ctx = torch.tensor([[0.0, 0.7, 1.1, 2.5, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.0, 2.2, 2.3, 3.9]])
    recon = generate(model, frames, t_ctx, t_ctx)
    t_all = torch.cat([t_ctx, t_ctx[:, -1:] + torch.tensor([0.5, 1.0, 7.25])], dim=1)  # context + future
    full = generate(model, frames, t_ctx, t_all)
    assert torch.allclose(full.frames[:, :5], recon.frames, atol=1e-5)
    assert torch.allclose(full.z_traj[:, :5], recon.z_traj, atol=1e-5)


@pytest.mark.parametrize("extra", [{"latent": "spatial"}, {"latent": "vector"},
                                   {"output": "warp", "warp_source": "last"},
                                   {"output": "warp", "warp_source": "previous"}, {"variational": True}])
def test_per_sample_times_in_one_batch_equal_a_loop_over_samples(tiny_config, extra):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = tiny_config(**extra).build_model()
    b = 4
    frames = torch.rand(b, 6, 1, 32, 32)
    t_ctx = torch.cat([irregular_times(g, 1, 6, start, 5.0) for start in (0.0, 0.25, 3.0, 10.5)])
    t_query = t_ctx[:, :1] + torch.rand(b, 7, generator=g).sort(dim=1).values * 12 + 1e-3
    batched = generate(model, frames, t_ctx, t_query)
    for i in range(b):
        single = generate(model, frames[i:i + 1], t_ctx[i], t_query[i])
        assert torch.allclose(batched.frames[i], single.frames[0], atol=1e-5)
        assert torch.allclose(batched.z_traj[i], single.z_traj[0], atol=1e-5)


def test_warp_from_the_previous_context_frame_picks_the_latest_one_at_or_before_each_query(tiny_config):
    model = tiny_config(output="warp", warp_source="previous").build_model()
    frames = torch.arange(2 * 3, dtype=torch.float32).view(2, 3, 1, 1, 1).expand(-1, -1, 1, 32, 32)
    t_ctx = torch.tensor([[0.0, 2.0, 4.0], [1.0, 1.5, 6.0]])
    t_query = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.5], [1.0, 1.2, 1.5, 5.9, 6.0, 9.0]])
    source, gap, index = model.warp_sources(frames, t_ctx, t_query)
    assert source[..., 0, 0, 0].tolist() == [[0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5]]
    assert index.tolist() == [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]]
    assert torch.allclose(gap, torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 1.5], [0.0, 0.2, 0.0, 4.4, 0.0, 3.0]]))
    last = tiny_config(output="warp", warp_source="last").build_model()
    source, gap, _ = last.warp_sources(frames, t_ctx, t_query)
    assert (source[..., 0, 0, 0] == frames[:, -1:, 0, 0, 0]).all()
    out = model(frames / 6, t_ctx, t_query)
    assert out.logits.shape == (2, 6, 1, 32, 32) and out.flow.shape == (2, 6, 2, 32, 32)


def test_shared_times_and_per_sample_copies_of_them_agree(tiny_config):
    model = tiny_config().build_model()
    frames = torch.rand(2, 4, 1, 32, 32)
    t_ctx, t_query = torch.tensor([0.0, 0.5, 2.0, 3.0]), torch.tensor([1.5, 3.25, 6.0])
    shared = generate(model, frames, t_ctx, t_query)
    per_sample = generate(model, frames, t_ctx.expand(2, -1), t_query.expand(2, -1))
    assert torch.equal(shared.frames, per_sample.frames)


def test_the_model_tells_irregular_context_spacing_apart(tiny_config):
    torch.manual_seed(0)
    model = tiny_config().build_model()
    frames = torch.rand(1, 4, 1, 32, 32)
    regular = generate(model, frames, [0.0, 1.0, 2.0, 3.0], [4.0])
    stretched = generate(model, frames, [0.0, 2.0, 4.0, 6.0], [6.0 + 1.0])  # same frames, twice the spacing
    assert not torch.allclose(regular.z_traj[:, 0], stretched.z_traj[:, 0])


@pytest.mark.parametrize("kind", ["latent_rnn", "convlstm"])
def test_discrete_models_accept_per_sample_grids(tiny_config, kind):
    model = tiny_config(kind).build_model()
    frames = torch.rand(2, 3, 1, 32, 32)
    t_ctx = torch.tensor([[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]])
    t_query = torch.tensor([[3.0, 4.0], [8.0, 10.0]])
    batched = generate(model, frames, t_ctx, t_query)
    for i in range(2):
        single = generate(model, frames[i:i + 1], t_ctx[i], t_query[i])
        assert torch.allclose(batched.frames[i], single.frames[0], atol=1e-5)
    with pytest.raises(DataError, match="whole steps"):
        generate(model, frames, t_ctx, torch.tensor([[3.0, 4.5], [8.0, 9.0]]))


@pytest.mark.parametrize("t_ctx,t_query,error,match", [
    ([0.0, 1.0, 1.0], [3.0], SolverError, "strictly increasing"),
    ([0.0, 2.0, 1.0], [3.0], SolverError, "strictly increasing"),
    ([0.0, 1.0, 2.0], [4.0, 3.0], SolverError, "strictly increasing"),
    ([0.0, float("nan"), 2.0], [3.0], SolverError, "NaN"),
    ([0.0, 1.0, 2.0], [float("inf")], SolverError, "infinite"),
    ([1.0, 2.0, 3.0], [0.5], DataError, ">= the first context time"),
    ([[0.0, 1.0, 2.0], [0.0, 1.5, 1.2]], [3.0], SolverError, r"sample 1"),
    ([[0.0, 1.0, 2.0]] * 3, [3.0], SolverError, r"\(T,\) or \(B=2, T\)"),
    ([0.0, 1.0], [3.0], DataError, "3 context frames but 2 context times"),
])
def test_bad_times_are_refused_with_clear_errors(tiny_config, t_ctx, t_query, error, match):
    model = tiny_config().build_model()
    with pytest.raises(error, match=match):
        generate(model, torch.rand(2, 3, 1, 32, 32), t_ctx, t_query)


class _Decay(torch.nn.Module):
    """dz/dt = -z: z(t) = z(t0) * exp(-(t - t0)) on both sides of t0."""

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -z


def test_a_latent_anchored_at_the_last_frame_is_integrated_both_ways_exactly(tiny_config):
    config = tiny_config(anchor="last")
    config.solver.method, config.solver.step_size = "rk4", 0.01
    model = config.build_model()
    model.field = _Decay()
    z0 = torch.randn(2, 4, 8, 8)
    t0 = torch.tensor([4.0, 6.5])
    t_query = torch.tensor([[0.0, 1.5, 4.0, 5.0, 9.0], [2.0, 6.0, 6.5, 7.25, 8.0]])
    z, nfe = model.trajectory(z0, t0, t_query)
    expected = z0[:, None] * torch.exp(-(t_query - t0[:, None])).view(2, 5, 1, 1, 1)
    torch.testing.assert_close(z, expected, rtol=1e-5, atol=1e-5)  # float32 over 450 steps
    assert nfe > 0
    ahead, _ = model.trajectory(z0, t0, t_query.clamp(min=t0[:, None]).add(0.5))  # no time before t0: one solve
    torch.testing.assert_close(ahead, z0[:, None] * torch.exp(-(t_query.clamp(min=t0[:, None]) + 0.5 - t0[:, None])
                                                              ).view(2, 5, 1, 1, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("options", [{"anchor": "last"}, {"anchor": "last", "source_features": True}])
def test_forward_anchored_models_generate_each_sample_as_if_alone(tiny_config, options):
    torch.manual_seed(0)
    model = tiny_config(output="warp", **options).build_model()
    frames = torch.rand(2, 4, 1, 32, 32)
    t_ctx = torch.tensor([[0.0, 1.0, 2.5, 3.0], [2.0, 2.5, 4.0, 6.0]])
    t_query = torch.tensor([[0.5, 2.0, 3.0, 4.5, 9.0], [2.2, 5.0, 6.0, 6.5, 12.0]])
    batched = generate(model, frames, t_ctx, t_query)
    for i in range(2):
        single = generate(model, frames[i:i + 1], t_ctx[i:i + 1], t_query[i:i + 1])
        torch.testing.assert_close(batched.frames[i], single.frames[0], atol=1e-5, rtol=1e-5)
    assert batched.frames.shape == (2, 5, 1, 32, 32)


def test_source_features_change_what_the_decoder_sees(tiny_config):
    torch.manual_seed(0)
    model = tiny_config(output="warp", source_features=True).build_model()
    frames = torch.rand(1, 3, 1, 32, 32)
    t_ctx, t_query = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([2.5, 3.0])
    out = model(frames, t_ctx[None], t_query[None])
    mean, _, maps, _ = model.encode(frames, t_ctx[None])
    z, _ = model.trajectory(mean, t_ctx[-1:], t_query[None])  # anchored at the last context frame
    source, gap, index = model.warp_sources(frames, t_ctx[None], t_query[None])
    shuffled, _ = model.decode(z, source, gap, maps[:, [0, 0]])  # the first frame's features instead
    same, _ = model.decode(z, source, gap, maps[:, index[0]])
    torch.testing.assert_close(same, out.logits)
    assert not torch.allclose(shuffled, out.logits)


def test_options_that_do_not_fit_are_refused(tiny_config):
    from odevideo.errors import ConfigError

    with pytest.raises(ConfigError, match="source_features"):
        tiny_config(output="direct", source_features=True)
    with pytest.raises(ConfigError, match="anchor"):
        tiny_config("latent_rnn", anchor="last")
