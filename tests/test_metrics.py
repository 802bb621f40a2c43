"""Metrics against hand-computed values and skimage."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from odevideo import metrics
from odevideo.evaluate import baseline, evaluate
from odevideo.models import build_model
from tests.test_model import tiny_config


def test_mse_mae_by_hand():
    target = torch.zeros(1, 2, 1, 2, 2)
    pred = torch.zeros(1, 2, 1, 2, 2)
    pred[0, 0, 0, 0, 0] = 0.5  # frame 0: one pixel off by 0.5
    pred[0, 1] = 1.0  # frame 1: all four pixels off by 1
    torch.testing.assert_close(metrics.mse(pred, target), torch.tensor([[0.25, 4.0]]))
    torch.testing.assert_close(metrics.mae(pred, target), torch.tensor([[0.5, 4.0]]))
    torch.testing.assert_close(metrics.mse_per_pixel(pred, target), torch.tensor([[0.0625, 1.0]]))
    torch.testing.assert_close(metrics.psnr(pred, target), torch.tensor([[10 * math.log10(16), 0.0]]))


def test_psnr_is_averaged_per_frame_not_from_the_mean_mse():
    target = torch.zeros(1, 2, 1, 4, 4)
    pred = target.clone()
    pred[0, 0] = 0.1
    pred[0, 1] = 0.5
    result = metrics.summarize({"psnr": [metrics.psnr(pred, target)]})
    assert result["psnr"] == pytest.approx((20.0 + 10 * math.log10(4)) / 2, rel=1e-6)
    assert metrics.psnr(target, target)[0, 0] == metrics.PSNR_CAP


def test_psnr_and_ssim_match_skimage():
    rng = np.random.default_rng(0)
    target = rng.random((2, 3, 1, 32, 32)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype(np.float32)
    ours_ssim = metrics.ssim(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
    ours_psnr = metrics.psnr(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
    for b in range(2):
        for t in range(3):
            ref = structural_similarity(pred[b, t, 0], target[b, t, 0], gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0)
            assert ours_ssim[b, t] == pytest.approx(ref, abs=1e-5)
            assert ours_psnr[b, t] == pytest.approx(
                peak_signal_noise_ratio(target[b, t, 0], pred[b, t, 0], data_range=1.0), abs=1e-4)


def test_ssim_of_identical_frames_is_one():
    x = torch.rand(1, 2, 1, 16, 16)
    torch.testing.assert_close(metrics.ssim(x, x), torch.ones(1, 2))


def test_baselines():
    ctx = torch.rand(2, 3, 1, 8, 8)
    torch.testing.assert_close(baseline("copy_last", ctx, 4), ctx[:, 2:3].expand(-1, 4, -1, -1, -1))
    assert float(baseline("zeros", ctx, 4).abs().sum()) == 0.0


def test_evaluate_reports_model_and_baselines_on_the_same_sequences():
    model = build_model(tiny_config())
    seqs = np.random.default_rng(0).integers(0, 256, (5, 7, 1, 32, 32), dtype=np.uint8)
    res = evaluate(model, seqs, n_context=4, n_future=3, batch_size=2)
    assert res["n_sequences"] == 5
    for key in ("mse", "mse_per_pixel", "mae", "psnr", "ssim"):
        assert len(res["per_step"][key]) == 3
        assert res["per_step"][key] == pytest.approx([v for v in res["per_step"][key]])
        for b in ("copy_last", "zeros"):
            assert key in res["baselines"][b]
    target = torch.from_numpy(seqs[:, 4:7]).float() / 255
    zeros_mse = float(target.pow(2).flatten(2).sum(-1).mean())
    assert res["baselines"]["zeros"]["mse"] == pytest.approx(zeros_mse, rel=1e-5)
    assert res["mse"] == pytest.approx(np.mean(res["per_step"]["mse"]), rel=1e-6)
    assert res["conventions"]["ssim"]["window"] == 11
