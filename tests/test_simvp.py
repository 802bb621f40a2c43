"""The SimVP-gSTA baseline: OpenSTL's layout, size, initialisation and drop path, its interface, its round trip,
and what it refuses."""

import math

import pytest
import torch

from odevideo.config import load_config
from odevideo.errors import ConfigError, DataError
from odevideo.inference import load_checkpoint, save_checkpoint
from odevideo.models.simvp import GSTABlock, SimVP, SimVPConfig, drop_path


def build(config):
    """The SimVP of a whole config (built directly, whatever the registry's signature)."""
    return SimVP(config.model, channels=config.data.channels, size=config.data.size)


@pytest.fixture(scope="module")
def openstl_mmnist():
    """OpenSTL's Moving MNIST SimVP-gSTA (configs/mmnist/simvp/SimVP_gSTA.py): 10 frames of 1 x 64 x 64."""
    torch.manual_seed(0)
    return SimVP(SimVPConfig(), channels=1, size=64)


def test_the_default_layout_is_openstls_moving_mnist_simvp():
    model = build(load_config("mmnist2_latent", ["model.kind=simvp", "data.irregular=0"]))
    blocks = model.translator
    assert len(blocks) == 8 and len(model.encoder) == 4 and len(model.decoder) == 4
    assert blocks[0].norm1.num_features == 10 * 64 and blocks[0].reduce.out_channels == 512
    assert blocks[-1].norm1.num_features == 512 and blocks[-1].reduce.out_channels == 10 * 64
    attention = blocks[1].attention  # kernel 21 = a 5x5 depthwise and a 7x7 depthwise with dilation 3
    assert attention.local.kernel_size == (5, 5) and attention.wide.kernel_size == (7, 7)
    assert attention.wide.dilation == (3, 3) and blocks[1].mlp[0].out_channels == 8 * 512  # SimVP_Model's 8.
    assert [layer.conv.stride for layer in model.encoder] == [(1, 1), (2, 2), (1, 1), (2, 2)]
    # OpenSTL's MidMetaNet: linspace(1e-2, drop_path, N_T) with its Moving MNIST drop_path = 0
    assert [b.drop_rate for b in blocks] == pytest.approx(torch.linspace(1e-2, 0, 8).tolist())


def test_openstls_moving_mnist_layout_has_its_46_8m_parameters(openstl_mmnist):
    # OpenSTL's SimVP_Model((10, 1, 64, 64), hid_S=64, hid_T=512, N_S=4, N_T=8, model_type='gSTA') has
    # 46,769,665 parameters (its last block widens 512 back to 640 with a 1x1 convolution, as here)
    assert sum(p.numel() for p in openstl_mmnist.parameters()) == 46_769_665
    smaller = SimVP(SimVPConfig(mlp_ratio=4.0), channels=1, size=64)  # the old default's size
    assert sum(p.numel() for p in smaller.parameters()) == 28_626_945


def test_weights_start_as_openstls(openstl_mmnist):
    model = openstl_mmnist
    # encoder and decoder: timm's trunc_normal_(std=.02), cut at -2 and 2 (absolute: 100 std, so nothing is cut)
    for layer in (*model.encoder, *model.decoder):
        w = layer.conv.weight
        assert w.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.all(layer.conv.bias == 0)
    w = model.encoder[1].conv.weight  # 36,864 values: a normal puts 4.55% of them beyond 2 std
    assert 0.035 < (w.abs() > 2 * 0.02).float().mean().item() < 0.056
    # inside each gSTA block: a normal of std sqrt(2 / fan_out), fan_out = kernel area x out channels / groups
    block = model.translator[1]
    for conv, fan_out in [(block.attention.proj_in, 512), (block.attention.local, 25), (block.attention.wide, 49),
                          (block.attention.gate, 1024), (block.mlp[0], 4096), (block.mlp[1], 9),
                          (block.mlp[3], 512)]:
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
        assert torch.all(conv.bias == 0)
    assert model.translator[0].mlp[0].weight.std().item() == pytest.approx(math.sqrt(2 / 5120), rel=0.05)
    assert torch.all(block.scale1 == 1e-2) and torch.all(block.scale2 == 1e-2)
    # the 1x1 width changes and the readout keep PyTorch's default: uniform within 1 / sqrt(fan_in)
    for conv, fan_in in [(model.translator[0].reduce, 640), (model.translator[-1].reduce, 512), (model.readout, 64)]:
        assert conv.weight.abs().max().item() <= 1 / math.sqrt(fan_in)
        assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.1)


def test_drop_path_drops_whole_sequences_in_training_only():
    x = torch.ones(4000, 3, 2, 2)
    torch.testing.assert_close(drop_path(x, 0.25, training=False), x)
    y = drop_path(x, 0.25, training=True)
    per_sequence = y.flatten(1)
    assert torch.all(per_sequence == per_sequence[:, :1])  # a sequence's branch is kept or dropped whole
    torch.testing.assert_close(per_sequence[:, 0].unique(), torch.tensor([0.0, 4 / 3]))  # kept: / (1 - rate)
    assert (per_sequence[:, 0] == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_drop_path_is_the_identity_in_eval_and_not_in_training(tiny_config):
    torch.manual_seed(0)
    dropping = build(tiny_config("simvp", drop_path=0.5))
    plain = build(tiny_config("simvp", drop_path=0.0))
    plain.load_state_dict(dropping.state_dict())
    assert [b.drop_rate for b in dropping.translator] == [0.5, 0.0] and plain.translator[0].drop_rate == 0
    frames = torch.rand(16, 4, 1, 32, 32)
    dropping.eval(), plain.eval()
    torch.testing.assert_close(dropping.predict(frames), plain.predict(frames), atol=0, rtol=0)
    dropping.train(), plain.train()  # batch statistics in both: only the dropped branches differ
    assert not torch.allclose(dropping.predict(frames), plain.predict(frames))
    block = GSTABlock(8, 8, kernel=9, mlp_ratio=2.0, drop_rate=0.0).train()
    x = torch.rand(6, 8, 8, 8)
    torch.testing.assert_close(block(x), block(x))  # no drop path: deterministic in training too


def test_context_is_passed_through_and_the_future_comes_m_frames_a_pass(tiny_config):
    model = build(tiny_config("simvp")).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    t = torch.arange(4.0)
    out = model(frames, t, torch.arange(14.0))  # 4 context, then passes for 4..7, 8..11 and 12..15
    assert out.logits.shape == (2, 14, 1, 32, 32)
    torch.testing.assert_close(torch.sigmoid(out.logits[:, :4]), frames, atol=2e-4, rtol=0)  # kept off 0, 1 by 1e-4
    first = model.predict(frames)
    torch.testing.assert_close(out.logits[:, 4:8], first)
    torch.testing.assert_close(out.logits[:, 8:12], model.predict(torch.sigmoid(first)))
    later = frames.clone()
    later[:, 0] = 0
    assert not torch.allclose(model(later, t, torch.tensor([4.0])).logits, out.logits[:, 4:5])


def test_times_must_be_whole_steps_after_a_regular_context_of_its_own_length(tiny_config):
    model = build(tiny_config("simvp"))
    frames = torch.rand(1, 4, 1, 32, 32)
    with pytest.raises(DataError, match="whole steps"):
        model(frames, torch.arange(4.0), torch.tensor([4.5]))
    with pytest.raises(DataError, match="one step apart"):
        model(frames, torch.tensor([0.0, 1.0, 3.0, 4.0]), torch.tensor([5.0]))
    with pytest.raises(DataError, match="reads 4 context frames"):
        model(frames[:, :3], torch.arange(3.0), torch.tensor([5.0]))


def test_a_round_trip_keeps_its_own_sizes(tiny_config, tmp_path):
    config = tiny_config("simvp", n_s=2, kernel=9, mlp_ratio=2.0, drop_path=0.2)
    built = build(config).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", built, config, step=3))
    assert loaded.config == config
    assert [b.drop_rate for b in loaded.model.translator] == [0.2, 0.0]
    frames, t = torch.rand(1, 4, 1, 32, 32), torch.arange(4.0)
    q = torch.arange(4.0, 10.0)
    torch.testing.assert_close(loaded.model(frames, t, q).logits, built(frames, t, q).logits, atol=0, rtol=0)


@pytest.mark.parametrize("overrides,match", [
    (["train.objective=reconstruction"], "nothing to learn"),
    (["model.context=5"], "must equal data.n_context"),
    (["model.n_s=3"], "must be even"),
    (["model.n_t=1"], "at least 2"),
    (["model.drop_path=1"], r"drop_path must be in \[0, 1\)"),
    (["model.drop_path=-0.1"], r"drop_path must be in \[0, 1\)"),
    (["data.irregular=0.5"], "cannot read times off the frame grid"),
])
def test_simvp_refuses_what_cannot_work(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("mmnist2_latent", ["model.kind=simvp", "data.irregular=0", *overrides])
