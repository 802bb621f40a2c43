"""The SimVP-gSTA baseline: OpenSTL's layout, its interface, its round trip, and what it refuses."""

import pytest
import torch

from odevideo.config import load_config
from odevideo.errors import ConfigError, DataError
from odevideo.inference import load_checkpoint, save_checkpoint
from odevideo.models import build_model


def test_the_default_layout_is_openstls_moving_mnist_simvp():
    model = build_model(load_config("mmnist2_latent", ["model.kind=simvp", "data.irregular=0"]))
    blocks = model.translator
    assert len(blocks) == 8 and len(model.encoder) == 4 and len(model.decoder) == 4
    assert blocks[0].norm1.num_features == 10 * 64 and blocks[0].reduce.out_channels == 512
    assert blocks[-1].norm1.num_features == 512 and blocks[-1].reduce.out_channels == 10 * 64
    attention = blocks[1].attention  # kernel 21 = a 5x5 depthwise and a 7x7 depthwise with dilation 3
    assert attention.local.kernel_size == (5, 5) and attention.wide.kernel_size == (7, 7)
    assert attention.wide.dilation == (3, 3) and blocks[1].mlp[0].out_channels == 4 * 512
    assert [layer.conv.stride for layer in model.encoder] == [(1, 1), (2, 2), (1, 1), (2, 2)]


def test_context_is_passed_through_and_the_future_comes_m_frames_a_pass(tiny_config):
    model = build_model(tiny_config("simvp")).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    t = torch.arange(4.0)
    out = model(frames, t, torch.arange(14.0))  # 4 context, then passes for 4..7, 8..11 and 12..15
    assert out.logits.shape == (2, 14, 1, 32, 32)
    torch.testing.assert_close(torch.sigmoid(out.logits[:, :4]), frames, atol=1e-4, rtol=0)
    first = model.predict(frames)
    torch.testing.assert_close(out.logits[:, 4:8], first)
    torch.testing.assert_close(out.logits[:, 8:12], model.predict(torch.sigmoid(first)))
    later = frames.clone()
    later[:, 0] = 0
    assert not torch.allclose(model(later, t, torch.tensor([4.0])).logits, out.logits[:, 4:5])


def test_times_must_be_whole_steps_after_a_regular_context_of_its_own_length(tiny_config):
    model = build_model(tiny_config("simvp"))
    frames = torch.rand(1, 4, 1, 32, 32)
    with pytest.raises(DataError, match="whole steps"):
        model(frames, torch.arange(4.0), torch.tensor([4.5]))
    with pytest.raises(DataError, match="one step apart"):
        model(frames, torch.tensor([0.0, 1.0, 3.0, 4.0]), torch.tensor([5.0]))
    with pytest.raises(DataError, match="reads 4 context frames"):
        model(frames[:, :3], torch.arange(3.0), torch.tensor([5.0]))


def test_a_round_trip_keeps_its_own_sizes(tiny_config, tmp_path):
    config = tiny_config("simvp", n_s=2, kernel=9, mlp_ratio=2.0)
    built = build_model(config).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", built, config, step=3))
    assert loaded.config == config
    frames, t = torch.rand(1, 4, 1, 32, 32), torch.arange(4.0)
    q = torch.arange(4.0, 10.0)
    torch.testing.assert_close(loaded.model(frames, t, q).logits, built(frames, t, q).logits, atol=0, rtol=0)


@pytest.mark.parametrize("overrides,match", [
    (["train.objective=reconstruction"], "nothing to learn"),
    (["model.context=5"], "must equal data.n_context"),
    (["model.n_s=3"], "must be even"),
    (["model.n_t=1"], "at least 2"),
    (["data.irregular=0.5"], "cannot read irregular"),
])
def test_simvp_refuses_what_cannot_work(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("mmnist2_latent", ["model.kind=simvp", "data.irregular=0", *overrides])
