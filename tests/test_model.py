"""The latent ODE: shapes, real-valued times, determinism of the solve path, learning."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from odevideo.config import Config, load_config
from odevideo.data.moving_mnist import MovingMNIST, as_float_frames
from odevideo.errors import DataError, SolverError
from odevideo.models import build_model
from odevideo.models.compose import EPS, compose, flow_loss, warp
from odevideo.train.module import objective_loss, pixel_loss


def tiny_config(**model) -> Config:
    return load_config("demo", ["data.size=32", "data.digit_size=14", "model.width=8", "model.latent_dim=4",
                                "model.field_hidden=8", "model.patch=4"] + [f"model.{k}={v}" for k, v in model.items()])


@pytest.mark.parametrize("latent,extra", [("spatial", {}), ("vector", {}), ("spatial", {"skip": True}),
                                          ("vector", {"skip": True}), ("spatial", {"field": "gated"}),
                                          ("spatial", {"output": "warp"}), ("vector", {"output": "warp"}),
                                          ("spatial", {"output": "warp", "warp_source": "previous"})])
@pytest.mark.parametrize("m,t_query", [(3, [0.0, 1.0, 2.0, 3.5, 7.25]), (1, [0.5]), (7, [2.2, 9.9, 10.0])])
def test_shapes_for_odd_context_and_real_times(latent, extra, m, t_query):
    model = build_model(tiny_config(latent=latent, **extra))
    frames = torch.rand(2, m, 1, 32, 32)
    out = model(frames, torch.arange(float(m)), torch.tensor(t_query))
    assert out.logits.shape == (2, len(t_query), 1, 32, 32)
    assert out.frames.min() >= 0 and out.frames.max() <= 1
    assert out.z_traj.shape == (2, len(t_query), *model.latent_shape)


def test_querying_a_subset_of_times_gives_the_same_frames():
    model = build_model(tiny_config(latent="spatial")).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    t_ctx = torch.arange(4.0)
    full = model(frames, t_ctx, torch.tensor([0.0, 1.0, 2.5, 3.0, 6.0])).logits
    sub = model(frames, t_ctx, torch.tensor([2.5, 6.0])).logits
    torch.testing.assert_close(sub, full[:, [2, 4]], atol=1e-5, rtol=1e-4)


def test_variational_model_samples_in_training_and_uses_the_mean_in_eval():
    model = build_model(tiny_config(variational=True))
    frames, t = torch.rand(2, 3, 1, 32, 32), torch.arange(3.0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    a, b = model(frames, t, t, generator=g1), model(frames, t, t, generator=g2)
    assert not torch.allclose(a.logits, b.logits)
    assert float(a.kl().detach()) > 0
    model.eval()
    torch.testing.assert_close(model(frames, t, t).logits, model(frames, t, t).logits)


def test_bad_inputs_are_refused_with_clear_errors():
    model = build_model(tiny_config())
    frames = torch.rand(1, 3, 1, 32, 32)
    with pytest.raises(DataError, match=r"\(B, M, 1, 32, 32\)"):
        model(torch.rand(1, 3, 32, 32), torch.arange(3.0), torch.arange(3.0))
    with pytest.raises(DataError, match="3 context frames but 2"):
        model(frames, torch.arange(2.0), torch.arange(3.0))
    with pytest.raises(SolverError, match="strictly increasing"):
        model(frames, torch.arange(3.0), torch.tensor([4.0, 3.0]))
    with pytest.raises(DataError, match=">= the first context time"):
        model(frames, torch.arange(1.0, 4.0), torch.tensor([0.5, 3.0]))


@pytest.mark.parametrize("objective", ["prediction", "reconstruction"])
def test_overfits_one_batch(objective):
    torch.manual_seed(0)
    config = tiny_config()
    model = build_model(config)
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
    assert losses[-1] < losses[0] / 5


def test_config_fields_reach_the_model():
    config = tiny_config(latent="vector")
    model = build_model(config)
    assert model.latent_shape == (4,)
    assert dataclasses.asdict(model.solver) == dataclasses.asdict(config.solver)


@pytest.mark.parametrize("kind", ["latent_rnn", "convlstm"])
def test_discrete_baselines_share_the_interface_and_need_whole_steps(kind):
    model = build_model(tiny_config(kind=kind))
    frames = torch.rand(2, 4, 1, 32, 32)
    out = model(frames, torch.arange(4.0), torch.tensor([0.0, 3.0, 4.0, 9.0]))
    assert out.logits.shape == (2, 4, 1, 32, 32) and out.nfe == 0
    with pytest.raises(DataError, match="whole steps"):
        model(frames, torch.arange(4.0), torch.tensor([4.5]))


def test_convlstm_future_depends_on_context_but_not_on_later_frames():
    model = build_model(tiny_config(kind="convlstm")).eval()
    frames = torch.rand(1, 4, 1, 32, 32)
    t = torch.arange(4.0)
    changed = frames.clone()
    changed[:, 3] = 0  # the last context frame feeds only the predictions of steps 4 and later
    a, b = model(frames, t, torch.arange(6.0)).logits, model(changed, t, torch.arange(6.0)).logits
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("kind", ["latent_rnn", "convlstm"])
def test_baselines_overfit_one_batch(kind):
    torch.manual_seed(0)
    model = build_model(tiny_config(kind=kind))
    batch = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=8).batch(range(4))
    frames, times = batch["frames"], batch["times"][0]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = pixel_loss(model(frames[:, :4], times[:4], times).logits, frames, "mse")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5


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


def test_flow_loss_is_zero_for_the_true_flow_and_pulls_a_zero_flow_towards_a_distant_motion():
    last = torch.zeros(2, 1, 64, 64)
    last[:, :, 24:32, 20:26] = 1.0  # the blur of the coarsest scale stays inside the frame before and after
    target = torch.roll(last, 12, dims=-1)  # moved 12 pixels right: far beyond the reach of a sharp warp
    true = torch.zeros(2, 2, 64, 64)
    true[:, 0] = -12.0  # backward flow: out[x] = last[x - 12]
    assert flow_loss(true, last, target) < 1e-6
    flow = torch.zeros(2, 2, 64, 64, requires_grad=True)
    flow_loss(flow, last, target).backward()
    moved = target[:, 0] > 0.5
    assert (flow.grad[:, 0][moved] > 0).float().mean() > 0.9  # descent lowers flow_x there: towards -12
    flow.grad = None
    F.mse_loss(warp(last, flow), target).backward()  # the sharp warp alone does not see that far
    assert flow.grad[:, 0][moved].abs().max() == 0


def test_warp_models_return_their_flow_and_the_flow_loss_trains_it():
    batch = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=8).batch(range(4))
    frames, times = as_float_frames(batch["frames"]), batch["times"][0]
    assert build_model(tiny_config()).eval()(frames[:, :4], times[:4], times).flow is None
    torch.manual_seed(0)
    model = build_model(tiny_config(output="warp"))
    out = model(frames[:, :4], times[:4], times)
    assert out.flow.shape == (4, 8, 2, 32, 32)
    kwargs = {"n_context": 4, "objective": "prediction", "loss": "bce", "kl_weight": 0.0}
    total, recon, _, _ = objective_loss(model, frames, times, **kwargs, flow_weight=0.5)
    assert torch.isclose(total, recon + 0.5 * flow_loss(out.flow.flatten(0, 1), frames[:, 3:4].expand(-1, 8, -1, -1, -1)
                                                        .flatten(0, 1), frames.flatten(0, 1)), rtol=1e-5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        out = model(frames[:, :4], times[:4], times)
        loss = flow_loss(out.flow.flatten(0, 1), frames[:, 3:4].expand(-1, 8, -1, -1, -1).flatten(0, 1),
                         frames.flatten(0, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
