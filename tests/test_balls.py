"""Bouncing balls: exact motion (reflection, collisions), conservation, determinism, rendering at any time."""

import numpy as np
import pytest

from odevideo.config import load_config
from odevideo.data.bouncing_balls import BouncingBalls, simulate
from odevideo.data.moving_mnist import reflect
from odevideo.errors import ConfigError, DataError


def test_one_ball_follows_the_folded_straight_line_exactly():
    r = 0.1
    pos, vel = np.array([[0.3, 0.7]]), np.array([[0.13, -0.07]])
    times = np.linspace(0, 40, 161)
    event_t, event_p, event_v = simulate(pos, vel, r, times.max())
    last = np.searchsorted(event_t, times, side="right") - 1
    got = event_p[last] + event_v[last] * (times - event_t[last])[:, None, None]
    free = 1 - 2 * r  # the centre moves in [r, 1 - r]: the unit fold, scaled
    expected = r + free * reflect((pos + vel * times[:, None, None] - r) / free)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_a_head_on_collision_swaps_the_velocities_of_equal_balls():
    pos, vel = np.array([[0.5, 0.2], [0.5, 0.8]]), np.array([[0.0, 0.1], [0.0, -0.1]])
    event_t, event_p, event_v = simulate(pos, vel, 0.1, 2.5)
    assert event_t[1] == pytest.approx(2.0)  # the gap of 0.6 - 0.2 closes at 0.2 per frame
    np.testing.assert_allclose(event_v[1], [[0.0, -0.1], [0.0, 0.1]], atol=1e-12)
    np.testing.assert_allclose(event_p[1], [[0.5, 0.4], [0.5, 0.6]], atol=1e-12)


def test_energy_is_kept_the_balls_stay_inside_and_never_overlap():
    gen = BouncingBalls("train", balls=4, radius=0.1, speed=0.08)
    for index in range(10):
        event_t, event_p, event_v = simulate(*gen.start(index), gen.radius, 60.0)
        energy = (event_v**2).sum(axis=(1, 2))
        np.testing.assert_allclose(energy, energy[0], rtol=1e-9)
        assert len(event_t) > 5  # it did bounce
    pos = gen.positions(range(10), np.linspace(0, 60, 601))  # (B, T, K, 2)
    assert pos.min() >= 0.1 - 1e-9 and pos.max() <= 0.9 + 1e-9
    gaps = np.linalg.norm(pos[:, :, :, None] - pos[:, :, None, :], axis=-1)
    gaps += np.eye(4) * 10
    assert gaps.min() >= 0.2 - 1e-6


def test_sequences_are_pure_functions_of_seed_split_and_index():
    a = BouncingBalls("train", seed=3).render_uint8([5, 6])
    b = BouncingBalls("train", seed=3).render_uint8([6, 5])
    np.testing.assert_array_equal(a[0], b[1])
    assert not np.array_equal(a[0], BouncingBalls("test", seed=3).render_uint8([5])[0])
    assert not np.array_equal(a[0], BouncingBalls("train", seed=4).render_uint8([5])[0])


def test_frames_render_at_any_real_time_and_agree_on_the_grid():
    gen = BouncingBalls("test", size=32, n_frames=8)
    grid = gen.batch([0, 1], as_float=False)
    assert grid["frames"].shape == (2, 8, 1, 32, 32)
    again = gen.batch([0, 1], np.arange(8.0), as_float=False)["frames"]
    np.testing.assert_array_equal(grid["frames"].numpy(), again.numpy())
    half = gen.render_uint8([0], np.array([2.5]))[0, 0, 0].astype(float)
    # a ball is a disc of area pi r^2: the frame's mass is that of 3 discs at any time
    expected = 3 * np.pi * (0.1 * 32) ** 2 * 255
    assert half.sum() == pytest.approx(expected, rel=0.03)
    with pytest.raises(DataError, match="time 0"):
        gen.positions([0], np.array([-1.0]))


def test_colour_gives_each_ball_its_own_colour():
    gen = BouncingBalls("test", balls=2, colour=True, size=32)
    frame = gen.render_uint8([0], np.array([0.0]))[0, 0]  # (3, H, W)
    assert frame.shape == (3, 32, 32)
    pos = gen.positions([0], np.array([0.0]))[0, 0] * 32  # (K, 2) pixel centres
    centres = [frame[:, int(r), int(c)] for r, c in pos]
    assert not np.array_equal(centres[0], centres[1]) and all(c.max() > 150 for c in centres)


def test_the_balls_config_is_the_usual_setting_and_bad_values_are_refused():
    data = load_config("balls").data
    assert (data.kind, data.balls, data.size, data.channels) == ("bouncing_balls", 3, 32, 1)
    assert load_config("balls", ["data.colour=true"]).data.channels == 3
    with pytest.raises(ConfigError, match="too little room"):
        load_config("balls", ["data.balls=8", "data.radius=0.3"])


@pytest.mark.parametrize("kind", ["latent_ode", "latent_rnn", "convlstm", "objects", "simvp"])
def test_every_model_kind_trains_on_colour_balls_and_scores_them(tiny_config, kind):
    import torch

    from odevideo import metrics
    from odevideo.losses import objective_loss
    from odevideo.visualize import to_uint8_rgb

    config = tiny_config(kind)
    from odevideo.data import BouncingBallsConfig

    m = min(config.data.n_context, 4)
    if kind == "simvp":
        config.model.context = m
    balls = BouncingBallsConfig(colour=True, size=32, n_context=m, n_frames=m + 4)
    config.data = balls
    model = config.build_model()
    batch = balls.open("train").batch(range(2))
    frames, times = batch["frames"], batch["times"]
    loss, _, out, target = objective_loss(model, frames, times, n_context=balls.n_context, objective="prediction",
                                          loss="mse", kl_weight=0.0)
    loss.backward()
    assert out.frames.shape[2] == 3 and torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert metrics.ssim(out.frames.detach(), target).shape == (2, target.shape[1])
    rgb = to_uint8_rgb(out.frames[0].detach())
    assert rgb.shape[1:] == (32, 32, 3)
