"""The model contract (odevideo.models.base): every registered kind, run through the same checks. A new kind
in ``MODELS`` is tested here without a line of its own."""

import dataclasses

import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST
from odevideo.errors import DataError, SolverError
from odevideo.inference import generate, load_checkpoint, sample_futures, save_checkpoint
from odevideo.models import MODELS, Generation, VideoModel
from odevideo.models.base import KindConfig

# every kind, and the stochastic variant of each kind that has one
VARIANTS = [(kind, {}) for kind in MODELS] + [("latent_ode", {"variational": True}),
                                              ("latent_rnn", {"variational": True}), ("latent_ode", {"noise_dim": 2})]
IDS = [kind + "".join(f"-{key}" for key in extra) for kind, extra in VARIANTS]


@pytest.fixture(params=VARIANTS, ids=IDS)
def built(request, tiny_config):
    kind, extra = request.param
    config = tiny_config(kind, **extra)
    torch.manual_seed(0)
    return config, config.build_model().eval()


def clips(n: int = 2) -> torch.Tensor:
    """Two 2-digit clips, (2, 8, 1, 32, 32): something for every kind to see."""
    return MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=8).batch(range(n))["frames"]


def test_every_kind_is_registered_with_its_config_and_a_video_model():
    for kind, entry in MODELS.items():
        config = entry.config()
        assert config.kind == kind and isinstance(config, KindConfig)
        assert issubclass(entry.model, VideoModel) and isinstance(entry.model.continuous, bool)


def test_forward_returns_frames_at_the_query_times_and_no_zero_filled_fields(built):
    config, model = built
    frames = clips()
    t_query = torch.arange(0.0, 8.0)
    out = model(frames[:, :4], torch.arange(4.0), t_query)
    assert isinstance(out, Generation) and out.logits.shape == (2, 8, 1, 32, 32)
    assert torch.isfinite(out.logits).all() and 0 <= out.frames.min() and out.frames.max() <= 1
    for name in ("z_traj", "z0_mean", "z0_logvar", "flow"):
        value = getattr(out, name)
        assert value is None or (value.shape[0] == 2 and value.abs().sum() > 0), name
    assert out.z_traj is None or out.z_traj.shape[:2] == (2, 8)
    if config.model.kind in ("latent_ode", "latent_rnn"):
        assert (out.z0_logvar is not None) == config.model.variational
        assert model.stochastic == (config.model.variational or config.model.noise_dim > 0)


def test_continuous_kinds_take_any_real_time_and_discrete_ones_refuse_it(built):
    _, model = built
    frames = clips()[:, :4]
    off_grid = torch.tensor([0.5, 3.25, 6.75])
    if model.continuous:
        assert model(frames, torch.arange(4.0), off_grid).logits.shape[1] == 3
    else:
        with pytest.raises(DataError, match="whole steps"):
            model(frames, torch.arange(4.0), off_grid)


def test_bad_inputs_are_refused_at_the_entry(built):
    _, model = built
    frames = clips()[:, :4]
    with pytest.raises(DataError, match="context frames must be"):
        model(frames[:, :, :, :16], torch.arange(4.0), torch.arange(4.0, 6.0))
    with pytest.raises(DataError, match=">= the first context time"):
        model(frames, torch.arange(1.0, 5.0), torch.tensor([0.0, 5.0]))
    with pytest.raises(SolverError, match="strictly increasing"):
        model(frames, torch.arange(4.0), torch.tensor([6.0, 5.0]))


def test_samples_are_reproducible_and_a_deterministic_model_has_one_future(built):
    _, model = built
    frames = clips()[:, :4]
    t, t_query = torch.arange(4.0), torch.arange(4.0, 8.0)
    plain = model(frames, t, t_query).logits
    if not model.stochastic:
        torch.testing.assert_close(model(frames, t, t_query, sample=True).logits, plain, atol=0, rtol=0)
        return
    draw = [sample_futures(model, frames, t, t_query, 3, generator=torch.Generator().manual_seed(s))
            for s in (5, 5)]
    assert draw[0].shape == (2, 3, 4, 1, 32, 32)
    torch.testing.assert_close(draw[0], draw[1], atol=0, rtol=0)


def test_latent_view_follows_the_trajectory(built):
    _, model = built
    out = generate(model, clips()[:, :4], torch.arange(4.0), torch.arange(8.0))
    view = model.latent_view(out)
    if out.z_traj is None:
        assert view is None
        return
    assert view is not None and view.points.shape[:2] == (2, 8)
    if view.kind == "tracks":
        assert view.points.shape[2:] == (model.config.slots, 2)
        assert (view.points >= 0).all() and (view.points <= model.size - 1).all()
    else:
        assert view.kind == "pca" and view.points.shape[2:] == (2,)
        assert 0 <= sum(view.explained) <= 1 + 1e-9


def test_a_save_load_round_trip_gives_the_same_frames(built, tmp_path):
    config, model = built
    path = save_checkpoint(tmp_path / "m.safetensors", model, config, step=3)
    loaded = load_checkpoint(path)
    assert dataclasses.asdict(loaded.config) == dataclasses.asdict(config)
    assert type(loaded.model) is type(model) and loaded.model.stochastic == model.stochastic
    frames, t, t_query = clips()[:, :4], torch.arange(4.0), torch.arange(8.0)
    torch.testing.assert_close(loaded.model(frames, t, t_query).logits, model(frames, t, t_query).logits,
                               atol=0, rtol=0)
