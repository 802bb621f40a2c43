"""The object latent ODE: walls and bounces, the renderer against the generator, the zero-initialised force."""

import numpy as np
import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST, as_float_frames, reflect
from odevideo.models import build_model
from odevideo.models.objects import PoseField, crop, fit_motion, fold, place, soft_argmax


def test_fold_is_the_generators_reflection():
    u = torch.linspace(-5.0, 5.0, 1001, dtype=torch.float64)
    np.testing.assert_allclose(fold(u).numpy(), reflect(u.numpy()), atol=1e-12)


def test_a_constant_velocity_pose_bounces_off_the_walls_exactly_like_the_generators_digits(tiny_config):
    gen = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=60)
    _, start, velocity = gen.motion(range(8))  # (B, K, 2) each: start in [0, 1], unit direction
    z0 = torch.from_numpy(np.concatenate([start, 0.1 * velocity], axis=-1))  # 0.1 of the free range per frame
    model = build_model(tiny_config("objects")).double()
    times = torch.arange(60.0, dtype=torch.float64)
    from odevideo.ode import solve

    with torch.no_grad():
        z = solve(model.field, z0, times, method="rk4", step_size=1.0).z  # an untrained force is zero
    want = gen.positions(range(8), times.numpy())  # (B, T, K, 2), with many bounces in 60 frames
    np.testing.assert_allclose(fold(z[..., :2]).numpy(), want, atol=1e-9)
    centres = model.centres(z).numpy()
    np.testing.assert_allclose(centres, want * (32 - 14) + 6.5, atol=1e-9)  # the box centre in pixels


def test_an_untrained_force_is_zero_so_the_default_is_constant_velocity():
    field = PoseField(hidden=8)
    z = torch.randn(3, 2, 4)
    dz = field(torch.tensor(0.0), z)
    torch.testing.assert_close(dz[..., :2], z[..., 2:])
    assert dz[..., 2:].abs().max() == 0


def test_rendering_the_true_digits_at_the_true_poses_reproduces_the_generator(tiny_config):
    gen = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=12)
    model = build_model(tiny_config("objects"))
    ids, _, _ = gen.motion(range(6))
    pad = (16 - 14) // 2
    sprites = torch.nn.functional.pad(torch.from_numpy(gen.images[ids]).float() / 255, (pad,) * 4)[:, :, None]
    pos = np.rint(gen.positions(range(6), np.arange(12.0)) * (32 - 14))  # the generator's whole-pixel corners
    centres = torch.from_numpy(pos + 6.5).float()
    truth = as_float_frames(torch.from_numpy(gen.render_uint8(range(6))[:, :, None]))
    torch.testing.assert_close(model.render(sprites, centres), truth, atol=1e-5, rtol=0)


def test_crop_undoes_place_at_whole_and_half_pixel_centres():
    images = torch.rand(4, 1, 9, 9)
    centres = torch.tensor([[10.0, 12.0], [4.0, 4.0], [15.5, 9.5], [6.0, 20.0]])  # odd side: integer centres
    out = crop(place(images, centres, 32), centres, 9)
    torch.testing.assert_close(out[:2], images[:2], atol=1e-6, rtol=0)
    assert (out[2:] - images[2:]).abs().max() < 1  # half-pixel centres: bilinear, so only approximately


def test_soft_argmax_finds_a_peak_and_averages_two():
    logits = torch.full((1, 2, 8, 8), -50.0)
    logits[0, 0, 3, 5] = 50.0
    logits[0, 1, 2, 2] = logits[0, 1, 2, 6] = 50.0
    torch.testing.assert_close(soft_argmax(logits), torch.tensor([[[3.0, 5.0], [2.0, 4.0]]]))


def test_the_motion_fit_recovers_start_and_velocity_through_bounces():
    gen = MovingMNIST("test", digits=2, n_frames=10)
    _, start, velocity = gen.motion(range(64))
    t = torch.sort(torch.rand(64, 10, generator=torch.Generator().manual_seed(0)) * 9, dim=1).values
    t[:, 0] = 0.0
    pos = torch.from_numpy(np.stack([gen.positions([i], t[i].double().numpy())[0] for i in range(64)]))
    z0 = fit_motion(pos, t.double())
    future = torch.arange(10.0, 30.0, dtype=torch.float64)
    got = fold(z0[:, None, :, :2] + z0[:, None, :, 2:] * future[None, :, None, None])
    want = torch.from_numpy(gen.positions(range(64), future.numpy()))
    right = ((got - want).abs() < 1e-6).flatten(1).all(1)
    assert right.double().mean() > 0.9  # a few contexts have a bounce in half their intervals


def test_before_training_z0_is_the_motion_fitted_to_the_observed_centres(tiny_config):
    model = build_model(tiny_config("objects"))
    frames = torch.rand(2, 4, 1, 32, 32)
    t = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 2.0, 3.0]])
    z0, centres = model.encode(frames, t)
    torch.testing.assert_close(z0, fit_motion(model.from_pixels(centres), t))


@pytest.mark.parametrize("pool", ["mean", "min"])
def test_sprites_pool_the_windows_of_the_context(tiny_config, pool):
    model = build_model(tiny_config("objects", sprite_pool=pool))
    frames = torch.rand(1, 3, 1, 32, 32)
    centres = torch.tensor([[10.0, 11.0], [12.0, 13.0], [14.0, 15.0]]).view(1, 3, 1, 2).expand(-1, -1, 2, -1)
    windows = torch.stack([crop(frames[:, i], centres[:, i, 0], 16) for i in range(3)], dim=1)  # (1, 3, 1, S, S)
    want = windows.mean(1) if pool == "mean" else windows.amin(1)
    torch.testing.assert_close(model.sprites(frames, centres)[:, 0], want)
