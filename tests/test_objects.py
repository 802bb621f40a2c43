"""The object latent ODE: walls and bounces, the renderer against the generator, the zero-initialised force."""

import numpy as np
import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST, as_float_frames, reflect
from odevideo.models.objects import PoseField, crop, detect, fit_tracks, fold, place
from odevideo.models.objects.sprites import pad_frames


def test_fold_is_the_generators_reflection():
    u = torch.linspace(-5.0, 5.0, 1001, dtype=torch.float64)
    np.testing.assert_allclose(fold(u).numpy(), reflect(u.numpy()), atol=1e-12)


def test_a_constant_velocity_pose_bounces_off_the_walls_exactly_like_the_generators_digits(tiny_config):
    gen = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=60)
    _, start, velocity = gen.motion(range(8))  # (B, K, 2) each: start in [0, 1], unit direction
    z0 = torch.from_numpy(np.concatenate([start, 0.1 * velocity], axis=-1))  # 0.1 of the free range per frame
    model = tiny_config("objects").build_model().double()
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


def test_the_force_learns_a_constant_acceleration():
    # second order: from position and velocity alone the field learns to bend every path the same way
    field = PoseField(hidden=16)
    g = torch.Generator().manual_seed(0)
    z0 = torch.cat([0.3 + 0.2 * torch.rand(32, 1, 2, generator=g), 0.01 * torch.randn(32, 1, 2, generator=g)], -1)
    t = torch.arange(11.0)
    gravity = torch.tensor([2e-3, 0.0])  # free range per frame squared: 0.1 of it (3.6 pixels) in 10 frames
    want = z0[:, None, :, :2] + z0[:, None, :, 2:] * t[:, None, None] + 0.5 * gravity * t[:, None, None] ** 2
    from odevideo.ode import solve

    opt = torch.optim.Adam(field.parameters(), lr=0.02)
    errors = []
    for _ in range(200):
        got = solve(field, z0, t, method="rk4", step_size=1.0).z[..., :2]
        loss = (got - want).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append(loss.item())
    assert errors[-1] < errors[0] / 100


def test_rendering_the_true_digits_at_the_true_poses_reproduces_the_generator(tiny_config):
    gen = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=12)
    model = tiny_config("objects").build_model()
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
    out = crop(place(images, centres, 32), centres[:, None], 9)[:, 0]
    whole = [0, 1, 3]
    torch.testing.assert_close(out[whole], images[whole], atol=1e-5, rtol=0)
    # half-pixel centres: each bilinear resampling averages two neighbours per axis, so the round trip is the
    # separable filter [1/4, 1/2, 1/4] (zeros beyond the image)
    kernel = torch.tensor([0.25, 0.5, 0.25])
    blurred = torch.nn.functional.conv2d(images[2:3], torch.outer(kernel, kernel)[None, None], padding=1)
    torch.testing.assert_close(out[2:3], blurred, atol=1e-5, rtol=0)


def test_detect_finds_two_objects_closer_than_a_box():
    frames = torch.zeros(1, 1, 64, 64)
    frames[0, 0, 20:30, 10:18] = 1.0  # a 10 x 8 block centred at (24.5, 13.5)
    frames[0, 0, 26:34, 30:36] = 0.8  # an 8 x 6 block centred at (29.5, 32.5), 19 pixels away: inside a box
    found = detect(frames, 2, 28, sigma=6.0)[0]
    found = found[found[:, 1].argsort()]
    # within half a pixel: the soft assignment lends each cluster a little of the other's mass
    torch.testing.assert_close(found, torch.tensor([[24.5, 13.5], [29.5, 32.5]]), atol=0.5, rtol=0)


def _tracks(n, t, k=2, seed=0):
    """Positions in [0, 1] (B, M, K, 2) of k objects moving in folded straight lines, and their z0."""
    g = torch.Generator().manual_seed(seed)
    z0 = torch.cat([torch.rand(n, k, 2, generator=g, dtype=torch.float64),
                    0.08 * (torch.rand(n, k, 2, generator=g, dtype=torch.float64) - 0.5)], dim=-1)
    return fold(z0[:, None, :, :2] + z0[:, None, :, 2:] * (t - t[:, :1])[:, :, None, None]), z0


def test_fit_tracks_recovers_crossing_objects_from_unordered_detections_and_an_outlier():
    t = torch.sort(torch.rand(64, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 9, 1).values
    pos, z0 = _tracks(64, t)
    shuffled = pos.clone()
    swap = torch.rand(64, 10, generator=torch.Generator().manual_seed(2)) < 0.5
    shuffled[swap] = pos[swap].flip(-2)  # detections come in no order
    shuffled[:, 4, 0] = 0.5  # and one of them in frame 4 is wrong (two objects merged into one detection)
    got = fit_tracks(shuffled, t, tolerance=0.05)
    future = torch.arange(10.0, 30.0, dtype=torch.float64)[None].expand(64, -1)
    want = fold(z0[:, None, :, :2] + z0[:, None, :, 2:] * (future - t[:, :1])[:, :, None, None])
    fitted = fold(got[:, None, :, :2] + got[:, None, :, 2:] * (future - t[:, :1])[:, :, None, None])
    err = torch.minimum((fitted - want).abs().amax((1, 2, 3)), (fitted.flip(2) - want).abs().amax((1, 2, 3)))
    assert (err < 1e-6).double().mean() > 0.85  # exact, except where a track is too near the other or a wall


def test_before_refinement_z0_is_the_tracks_fitted_to_the_detections(tiny_config):
    model = tiny_config("objects", refine_steps=0, slots=2).build_model()
    frames = torch.rand(2, 4, 1, 32, 32)
    t = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 2.0, 3.0]])
    # a 14-pixel box: the tracker's pixel scales are half those tuned on 28-pixel digits
    assert (model.kmeans_sigma, model.track_tolerance, model.refine_lr) == (3.0, 1.5, 0.15)
    found = detect(frames.flatten(0, 1), 2, 14, sigma=3.0).view(2, 4, 2, 2)
    torch.testing.assert_close(model.encode(frames, t), fit_tracks(model.from_pixels(found), t, 1.5 / 18))


def test_refinement_recovers_a_velocity_off_by_a_fifth_of_a_pixel_a_frame():
    # what the refinement sees is how well the windows cut along a track agree, so it corrects the motion; a
    # track shifted as a whole cuts the same windows, shifted (the detections place it)
    gen = MovingMNIST("test", digits=1, n_frames=10)
    frames = as_float_frames(torch.from_numpy(gen.render_uint8(range(8))[:, :, None]))
    t = torch.arange(10.0).expand(8, -1)
    from odevideo.config import load_config

    model = (load_config("mmnist1", ["model.kind=objects", "model.slots=1"])).build_model()
    truth = torch.from_numpy(np.rint(gen.positions(range(8), np.arange(10.0)) * 36) / 36).float()  # (B, M, 1, 2)
    z_true = fit_tracks(truth, t, 0.05)
    dv = torch.tensor([0.2, -0.2]) / 36  # a fifth of a pixel a frame: 1.8 pixels over the context
    start = z_true + torch.cat([-4.5 * dv, dv])  # the same position mid-context
    with torch.inference_mode():  # as in generation: the refinement runs its own autograd even so
        refined = model.refine(frames, start, t)
    drift = lambda z: ((z - z_true)[..., 2:] * 9 * 36).norm(dim=-1)  # noqa: E731  (pixels over the context)
    # not to 0: the frames are drawn at whole pixels, which the line fitted to them does not quite follow
    assert drift(start).min() > 2.5 and drift(refined).mean() < 0.4 and drift(refined).max() < 1


@pytest.mark.parametrize("pool", ["mean", "min"])
def test_sprites_pool_the_windows_of_the_context(tiny_config, pool):
    model = tiny_config("objects", sprite_pool=pool).build_model()
    frames = torch.rand(1, 3, 1, 32, 32)
    centres = torch.tensor([[10.0, 11.0], [12.0, 13.0], [14.0, 15.0]]).view(1, 3, 1, 2).expand(-1, -1, 2, -1)
    windows = torch.stack([crop(frames[:, i], centres[:, i, :1], 16)[:, 0] for i in range(3)], dim=1)  # (1, 3, 1, S, S)
    want = windows.mean(1) if pool == "mean" else windows.amin(1)
    torch.testing.assert_close(model.sprites(frames, centres)[:, 0], want)


def _two_halves(n: int, first: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One object's detections over 10 frames: the first ``first`` on line A (row 0.23), the rest on line B
    (row 0.71), both moving slowly to the right; (n, 10, 1, 2) and the times (n, 10). The rows are chosen so
    that no line through one detection of each, folded at the walls, passes within 0.01 of a third."""
    t = torch.arange(10.0, dtype=torch.float64)[None].expand(n, -1)
    row = torch.where(torch.arange(10) < first, 0.23, 0.71).to(torch.float64)
    pos = torch.stack([row, 0.3 + 0.01 * torch.arange(10.0, dtype=torch.float64)], dim=-1)
    return pos[None, :, None].expand(n, -1, -1, -1).clone(), t


def test_drawn_tracks_split_evenly_between_equally_good_explanations():
    pos, t = _two_halves(2000, first=5)  # each line explains 5 of the 10 detections
    best = fit_tracks(pos, t, tolerance=0.01)
    assert torch.allclose(best[:, 0, 0], best[0, 0, 0])  # the best line: the same choice every time
    g = torch.Generator().manual_seed(0)
    drawn = fit_tracks(pos, t, tolerance=0.01, temperature=1.0, generator=g)
    on_a = (drawn[:, 0, 0] - 0.23).abs() < 1e-6
    on_b = (drawn[:, 0, 0] - 0.71).abs() < 1e-6
    # a line through one detection of each leaves 3 more unexplained: 6 such pairs of weight e^-3 against 18
    assert 0.95 < (on_a | on_b).double().mean() < 0.995
    assert 0.45 < on_a.sum() / (on_a | on_b).sum() < 0.55  # the two lines are drawn equally often
    again = fit_tracks(pos, t, tolerance=0.01, temperature=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, drawn)  # a seed reproduces the draws


def test_at_a_low_temperature_draws_keep_to_the_clearly_better_explanation():
    pos, t = _two_halves(500, first=7)  # line A explains 7 detections, line B 3
    drawn = fit_tracks(pos, t, tolerance=0.01, temperature=0.25, generator=torch.Generator().manual_seed(0))
    assert bool(((drawn[:, 0, 0] - 0.23).abs() < 1e-6).all())
    warm = fit_tracks(pos, t, tolerance=0.01, temperature=4.0, generator=torch.Generator().manual_seed(0))
    assert ((warm[:, 0, 0] - 0.71).abs() < 1e-6).any()  # a high temperature draws the worse one too


def test_an_object_model_draws_its_futures_from_the_tracks_and_is_deterministic_at_temperature_zero(tiny_config):
    from odevideo.errors import ConfigError
    from odevideo.inference import generate, require_stochastic, sample_futures

    gen = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=10)
    frames = as_float_frames(torch.from_numpy(gen.render_uint8(range(4))[:, :, None]))
    t_ctx, t_q = torch.arange(6.0), torch.arange(6.0, 10.0)
    model = tiny_config("objects", slots=2, refine_steps=0, track_temperature=4.0).build_model().eval()
    draws = sample_futures(model, frames[:, :6], t_ctx, t_q, 3, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (4, 3, 4, 1, 32, 32)
    again = sample_futures(model, frames[:, :6], t_ctx, t_q, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws, again)
    torch.testing.assert_close(generate(model, frames[:, :6], t_ctx, t_q).frames,
                               generate(model, frames[:, :6], t_ctx, t_q).frames)  # plain generation: best tracks
    with pytest.raises(ConfigError, match="deterministic"):
        require_stochastic(tiny_config("objects", track_temperature=0.0).build_model())


def test_without_walls_positions_stay_unfolded_and_lines_are_fitted_straight():
    u = torch.linspace(-3.0, 3.0, 13)
    assert torch.equal(fold(u, "none"), u)
    t = torch.arange(8.0, dtype=torch.float64).expand(4, -1)
    z0 = torch.tensor([[0.2, 0.3, 0.15, -0.1], [0.8, 0.6, -0.12, 0.05]], dtype=torch.float64).expand(4, -1, -1)
    pos = z0[:, None, :, :2] + z0[:, None, :, 2:] * t[:, :, None, None]  # leaves [0, 1]: nothing folds it back
    got = fit_tracks(pos.flip(-2), t, tolerance=0.05, walls="none")
    got = got[:, got[:, :, 0].argsort(1)[0]]  # in the order of z0
    torch.testing.assert_close(got, z0.contiguous(), atol=1e-9, rtol=0)


def test_over_composition_draws_the_first_slot_in_front():
    sprites = torch.zeros(1, 2, 1, 3, 3)
    sprites[0, 0, 0, 1, :] = torch.tensor([1.0, 0.5, 0.0])  # the front object: opaque, half, clear
    sprites[0, 1, 0] = 0.8  # the back one, everywhere
    centres = torch.full((1, 1, 2, 2), 2.0)  # both at the same place on a 5 x 5 canvas
    from odevideo.models.objects import render

    over = render(sprites, centres, 5, "over")[0, 0, 0, 2, 1:4]
    torch.testing.assert_close(over, torch.tensor([1.0, 0.5 + 0.5 * 0.8, 0.8]))
    assert torch.equal(render(sprites, centres, 5, "max")[0, 0, 0, 2, 1:4], torch.tensor([1.0, 0.8, 0.8]))


def test_the_refinements_closed_form_gradient_is_autograds(tiny_config):
    model = tiny_config("objects").build_model()
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(2 * 4, 1, 32, 32, generator=g)  # (B*M, C, H, W), M = 4
    centres = (torch.rand(2, 4, 2, 2, generator=g) * 40 - 4).requires_grad_(True)  # some windows off the frame
    windows = crop(frames, centres.flatten(0, 1), model.config.sprite).unflatten(0, (2, 4))
    sharp = model.config.refine_sharpness
    objective = (torch.logsumexp(-sharp * windows, dim=1) / sharp).sum()
    (want,) = torch.autograd.grad(objective, centres)
    got = model.window_gradient(pad_frames(frames, model.config.sprite), centres.detach(), 4)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_the_refinements_adam_is_torchs_adam_with_a_cosine_schedule():
    from odevideo.models.objects.model import _Adam

    g = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)]
    grads = [[torch.randn(3, 2, generator=g) for _ in start] for _ in range(12)]
    params = [p.clone().requires_grad_(True) for p in start]
    opt = torch.optim.Adam(params, lr=0.3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 12)
    ours = _Adam(tuple(start), 0.3, 12)
    for step in grads:
        for p, grad in zip(params, step, strict=True):
            p.grad = grad.clone()
        opt.step()
        schedule.step()
        got = ours.step(tuple(step))
    for p, q in zip(params, got, strict=True):
        torch.testing.assert_close(q, p.detach(), atol=1e-6, rtol=1e-6)


def test_crop_is_grid_samples_bilinear_sampling():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 2, 24, 20, generator=g)
    centres = torch.rand(3, 4, 2, generator=g) * 50 - 15  # inside, across the edges and fully outside
    offs = torch.arange(9.0) - 4
    ys = (centres[..., :1] + offs) * (2 / 23) - 1
    xs = (centres[..., 1:] + offs) * (2 / 19) - 1
    grid = torch.stack([xs[:, :, None, :].expand(-1, -1, 9, -1), ys[:, :, :, None].expand(-1, -1, -1, 9)], dim=-1)
    want = torch.nn.functional.grid_sample(frames, grid.flatten(1, 2), align_corners=True)
    torch.testing.assert_close(crop(frames, centres, 9), want.unflatten(2, (4, 9)).transpose(1, 2), atol=1e-5,
                               rtol=0)
