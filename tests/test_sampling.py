"""Stochastic samples: reproducible draws from a variational model, best of K, mean of K and diversity, and a
clear refusal for deterministic models."""

import numpy as np
import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST
from odevideo.errors import ConfigError
from odevideo.evaluation import evaluate
from odevideo.inference import generate, sample_futures


@pytest.fixture
def variational(tiny_config):
    model = tiny_config(variational=True).build_model().eval()
    with torch.no_grad():  # a visible spread of z0, so that samples differ
        for name, p in model.named_parameters():
            if "head" in name or "z0" in name:
                p.add_(0.05)
    return model


def frames(n: int = 3, t: int = 20) -> torch.Tensor:
    return MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=t).batch(range(n))["frames"]


def test_samples_are_reproducible_with_a_seed_and_differ_from_each_other(variational):
    context, t_ctx, t_q = frames()[:, :10], torch.arange(10.0), torch.arange(10.0, 14.0)
    draw = lambda seed: sample_futures(variational, context, t_ctx, t_q, 4,  # noqa: E731
                                       generator=torch.Generator().manual_seed(seed))
    a, b, c = draw(0), draw(0), draw(1)
    assert a.shape == (3, 4, 4, 1, 32, 32)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert (a[:, 0] - a[:, 1]).abs().max() > 1e-4  # two samples of one sequence differ
    mean = generate(variational, context, t_ctx, t_q).frames  # eval mode without sampling: z0's mean
    assert not torch.allclose(a[:, 0], mean)


def test_a_deterministic_model_asked_for_samples_is_refused(tiny_config):
    model = tiny_config().build_model()
    with pytest.raises(ConfigError, match="deterministic"):
        sample_futures(model, frames()[:, :10], torch.arange(10.0), torch.arange(10.0, 12.0), 2)
    with pytest.raises(ConfigError, match="deterministic"):
        evaluate(model, frames(), samples=3)


def test_best_of_k_is_never_worse_than_the_mean_of_k_and_one_sample_has_no_diversity(variational):
    seqs = frames(4)
    result = evaluate(variational, seqs, samples=5, generator=torch.Generator().manual_seed(0), perceptual=False)
    drawn = result["samples"]
    assert drawn["k"] == 5
    for name in ("mse", "mae", "mse_per_pixel"):
        assert drawn["best_of_k"][name] <= drawn["mean_of_k"][name] + 1e-9
    for name in ("psnr", "ssim"):
        assert drawn["best_of_k"][name] >= drawn["mean_of_k"][name] - 1e-9
    assert drawn["diversity"]["mse_between_samples"] > 0
    assert len(drawn["best_of_k"]["per_step"]["mse"]) == 10
    again = evaluate(variational, seqs, samples=5, generator=torch.Generator().manual_seed(0), perceptual=False)
    assert again["samples"]["best_of_k"]["mse"] == drawn["best_of_k"]["mse"]


def test_best_of_k_picks_each_sequences_closest_sample():
    from odevideo.evaluation import _score_samples

    target = torch.zeros(2, 3, 1, 16, 16)
    draws = torch.stack([torch.full((2, 3, 1, 16, 16), v) for v in (0.5, 0.1, 0.3)], dim=1)  # (B=2, K=3, ...)
    draws[1, 2] = 0.05  # the second sequence's third sample is its closest
    out = {"best": [], "mean": [], "diversity": []}
    _score_samples(draws, target, ("mse",), out)
    best = out["best"][0]["mse"]
    np.testing.assert_allclose(best[0], [256 * 0.01] * 3, rtol=1e-5)  # 0.1 everywhere: 256 pixels x 0.01
    np.testing.assert_allclose(best[1], [256 * 0.0025] * 3, rtol=1e-5)
    np.testing.assert_allclose(out["mean"][0]["mse"][0], [256 * (0.25 + 0.01 + 0.09) / 3] * 3, rtol=1e-5)


def test_predict_and_evaluate_draw_samples_from_the_command_line(variational, tiny_config, tmp_path, run_cli):
    from odevideo.inference import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "vae.safetensors", variational, tiny_config(variational=True), step=0)
    clip = tmp_path / "clip.npy"
    np.save(clip, (frames(1, 12)[0].numpy() * 255).astype(np.uint8))
    code, out, err = run_cli(["predict", "-c", str(ckpt), "-i", str(clip), "--n-context", "10", "--n-future", "2",
                              "--samples", "3", "--sample-seed", "7", "-o", str(tmp_path / "f.npy")])
    assert code == 0, err
    draws = [np.load(tmp_path / f"f_s{i}.npy") for i in range(3)]
    assert all(d.shape == (2, 1, 32, 32) for d in draws) and not np.allclose(draws[0], draws[1])
    code, out, err = run_cli(["evaluate", "-c", str(ckpt), "--n", "4", "--samples", "3", "-q"])
    assert code == 0, err
    assert "3 samples: MSE best of 3" in out


def test_the_comparison_grid_draws_several_samples_under_the_truth(tmp_path):
    import imageio.v3 as iio

    from odevideo.visualize import comparison_grid

    seq = frames(1, 6)[0]
    one = iio.imread(comparison_grid([seq], [seq], 3, tmp_path / "one.png"))
    three = iio.imread(comparison_grid([seq], [[seq, seq, seq]], 3, tmp_path / "three.png"))
    assert one.shape[0] == 32 + 2 + 32  # truth, gap, generated
    assert three.shape[1] == one.shape[1] and three.shape[0] == one.shape[0] + 2 * (2 + 32)  # two more samples
