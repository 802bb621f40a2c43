"""The models: shapes, real-valued times, the warp composition, learning, and the discrete baselines."""

import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST, as_float_frames
from odevideo.errors import ConfigError, DataError, SolverError
from odevideo.losses import pixel_loss
from odevideo.models import MODELS
from odevideo.models.compose import EPS, compose, warp


@pytest.mark.parametrize("latent,extra", [("spatial", {}), ("vector", {}),
                                          ("spatial", {"output": "warp", "warp_source": "last"}),
                                          ("vector", {"output": "warp", "warp_source": "last"}),
                                          ("spatial", {"output": "warp", "warp_source": "previous"})])
@pytest.mark.parametrize("m,t_query", [(3, [0.0, 1.0, 2.0, 3.5, 7.25]), (1, [0.5]), (7, [2.2, 9.9, 10.0])])
def test_shapes_for_odd_context_and_real_times(tiny_config, latent, extra, m, t_query):
    model = tiny_config(latent=latent, **extra).build_model()
    frames = torch.rand(2, m, 1, 32, 32)
    out = model(frames, torch.arange(float(m)), torch.tensor(t_query))
    assert out.logits.shape == (2, len(t_query), 1, 32, 32)
    assert out.frames.min() >= 0 and out.frames.max() <= 1
    assert out.z_traj.shape == (2, len(t_query), *model.latent_shape)
    assert (out.flow is None) == (extra.get("output") != "warp")


def test_querying_a_subset_of_times_gives_the_same_frames(tiny_config):
    model = tiny_config(latent="spatial").build_model().eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    t_ctx = torch.arange(4.0)
    full = model(frames, t_ctx, torch.tensor([0.0, 1.0, 2.5, 3.0, 6.0])).logits
    sub = model(frames, t_ctx, torch.tensor([2.5, 6.0])).logits
    torch.testing.assert_close(sub, full[:, [2, 4]], atol=1e-5, rtol=1e-4)


def test_variational_model_samples_in_training_and_uses_the_mean_in_eval(tiny_config):
    model = tiny_config(variational=True).build_model()
    frames, t = torch.rand(2, 3, 1, 32, 32), torch.arange(3.0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    a, b = model(frames, t, t, generator=g1), model(frames, t, t, generator=g2)
    assert not torch.allclose(a.logits, b.logits)
    assert a.z0_logvar is not None and a.z0_logvar.shape == a.z0_mean.shape
    model.eval()
    torch.testing.assert_close(model(frames, t, t).logits, model(frames, t, t).logits)


def test_bad_inputs_are_refused_with_clear_errors(tiny_config):
    model = tiny_config().build_model()
    frames = torch.rand(1, 3, 1, 32, 32)
    with pytest.raises(DataError, match=r"\(B, M, 1, 32, 32\)"):
        model(torch.rand(1, 3, 32, 32), torch.arange(3.0), torch.arange(3.0))
    with pytest.raises(DataError, match="3 context frames but 2"):
        model(frames, torch.arange(2.0), torch.arange(3.0))
    with pytest.raises(SolverError, match="strictly increasing"):
        model(frames, torch.arange(3.0), torch.tensor([4.0, 3.0]))
    with pytest.raises(DataError, match=">= the first context time"):
        model(frames, torch.arange(1.0, 4.0), torch.tensor([0.5, 3.0]))


def test_a_frame_size_the_layout_cannot_fold_is_refused(tiny_config):
    with pytest.raises(ConfigError, match="divisible by model.patch"):
        tiny_config(patch=5).build_model()


@pytest.mark.parametrize("kind,objective", [("latent_ode", "prediction"), ("latent_ode", "reconstruction"),
                                            ("latent_rnn", "prediction"), ("convlstm", "prediction"),
                                            ("simvp", "prediction")])
def test_every_learned_encoder_overfits_one_batch(tiny_config, kind, objective):
    # (the object model's encoder is not learned: tests/test_objects.py trains its force)
    factor = 5
    model = tiny_config(kind).build_model()
    batch = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=8).batch(range(4))
    frames, times = batch["frames"], batch["times"][0]
    n_query = 4 if objective == "reconstruction" else 8
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        out = model(frames[:, :4], times[:4], times[:n_query])
        loss = pixel_loss(out.logits, frames[:, :n_query], "mse")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / factor


def test_config_fields_reach_the_model(tiny_config):
    assert tiny_config(latent="vector").build_model().latent_shape == (4,)
    assert tiny_config(latent_dim=6).build_model().latent_shape == (6, 8, 8)
    frames, t = torch.rand(1, 2, 1, 32, 32), torch.arange(2.0)
    nfe = {}
    for step in (1.0, 0.25):
        config = tiny_config()
        config.solver.step_size = step
        nfe[step] = config.build_model()(frames, t, torch.tensor([4.0])).nfe
    # midpoint: 2 evaluations per step over the 3 time units from the last context frame (t = 1) to t = 4
    assert nfe == {1.0: 2 * 3, 0.25: 2 * 12}


@pytest.mark.parametrize("kind", ["latent_rnn", "convlstm"])
def test_discrete_baselines_share_the_interface_and_need_whole_steps(tiny_config, kind):
    model = tiny_config(kind).build_model()
    assert isinstance(model, MODELS[kind].model)
    frames = torch.rand(2, 4, 1, 32, 32)
    out = model(frames, torch.arange(4.0), torch.tensor([0.0, 3.0, 4.0, 9.0]))
    assert out.logits.shape == (2, 4, 1, 32, 32) and out.nfe == 0
    with pytest.raises(DataError, match="whole steps"):
        model(frames, torch.arange(4.0), torch.tensor([4.5]))


def test_convlstm_layout_follows_its_config(tiny_config):
    model = tiny_config("convlstm", hidden=8, layers=3, kernel=3).build_model()
    assert len(model.cells) == 3 and model.cells[0].gates.kernel_size == (3, 3)
    assert model.cells[1].gates.in_channels == 16 and model.out.in_channels == 8


def test_convlstm_future_depends_on_context_but_not_on_later_frames(tiny_config):
    model = tiny_config("convlstm").build_model().eval()
    frames = torch.rand(1, 4, 1, 32, 32)
    t = torch.arange(4.0)
    changed = frames.clone()
    changed[:, 3] = 0  # the last context frame feeds only the predictions of steps 4 and later
    a, b = model(frames, t, torch.arange(6.0)).logits, model(changed, t, torch.arange(6.0)).logits
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_warp_moves_pixels_by_whole_pixel_flows_and_is_identity_at_zero_flow():
    image = torch.rand(2, 3, 8, 9)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 8, 9)), image, atol=1e-6)
    flow = torch.zeros(2, 2, 8, 9)
    flow[:, 0], flow[:, 1] = -2.0, 1.0  # out[y, x] = image[y + 1, x - 2]
    out = warp(image, flow)
    assert torch.allclose(out[:, :, :-1, 2:], image[:, :, 1:, :-2], atol=1e-6)
    assert out[:, :, -1].abs().max() == 0 and out[:, :, :, :2].abs().max() == 0  # zeros from outside


def test_compose_blends_the_warped_frame_and_the_drawn_frame_through_the_mask():
    last = torch.rand(1, 1, 6, 6)
    out = torch.zeros(1, 4, 6, 6)
    out[:, 0] = 30.0  # drawn frame ~ 1 everywhere
    out[:, 3] = 30.0  # mask ~ 1: the warped frame (zero flow = the last frame itself)
    assert torch.allclose(torch.sigmoid(compose(out, last)), EPS + (1 - 2 * EPS) * last, atol=1e-5)
    out[:, 3] = -30.0  # mask ~ 0: the drawn frame
    assert torch.allclose(torch.sigmoid(compose(out, last)), torch.full_like(last, 1 - EPS), atol=1e-5)


def test_compose_stays_finite_under_bf16_autocast():
    out = torch.full((1, 4, 8, 8), 30.0)  # mask ~ 1 on a white last frame: a probability next to 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = compose(out.bfloat16(), torch.ones(1, 1, 8, 8))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_a_new_warp_model_starts_by_copying_its_source_frame(tiny_config):
    batch = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=8).batch(range(4))
    frames, times = as_float_frames(batch["frames"]), batch["times"][0]
    out = tiny_config(output="warp", warp_source="last").build_model().eval()(frames[:, :4], times[:4], times)
    assert out.flow.shape == (4, 8, 2, 32, 32) and out.flow.abs().max() < 1.0  # near-zero flow
    # the mask starts at sigmoid(3) = 0.95 on the warped last context frame
    assert (out.frames[:, 3] - frames[:, 3]).abs().mean() < 0.1


def test_a_learned_prior_draws_from_the_posterior_with_targets_and_from_the_prior_without(tiny_config):
    torch.manual_seed(0)
    model = tiny_config(noise_dim=2).build_model().eval()
    frames, t_ctx, t_q = torch.rand(2, 6, 1, 32, 32), torch.arange(3.0), torch.arange(6.0)
    run = lambda **kw: model(frames[:, :3], t_ctx, t_q, **kw)  # noqa: E731
    seed = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    plain = run()
    assert plain.kl is None and model.stochastic and model.reads_targets
    torch.testing.assert_close(run().logits, plain.logits)  # no draw without sample: the prior's mean
    a, b, c = (run(sample=True, generator=seed(s)).logits for s in (0, 0, 1))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c) and not torch.allclose(a, plain.logits)
    post = run(targets=frames, generator=seed(0))
    assert post.kl.shape == (2,) and bool((post.kl > 0).all())
    assert not torch.allclose(post.logits, run(targets=frames.flip(1), generator=seed(0)).logits)
    width = model.config.width
    with torch.no_grad():  # a posterior that ignores the targets and copies the prior: KL 0
        model.posterior.weight.zero_()
        model.posterior.weight[:, :width] = model.prior.weight
        model.posterior.bias.copy_(model.prior.bias)
    torch.testing.assert_close(run(targets=frames).kl, torch.zeros(2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("extra", [{"noise_dim": -1}, {"noise_dim": 2, "variational": True},
                                   {"noise_dim": 2, "latent": "vector"}])
def test_a_learned_prior_refuses_what_it_cannot_be(tiny_config, extra):
    with pytest.raises(ConfigError, match="noise_dim"):
        tiny_config(**extra)
