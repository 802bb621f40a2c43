"""Metrics against hand-computed values and skimage, in both SSIM conventions; evaluation end to end."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from odevideo import metrics
from odevideo.evaluation import BASELINES, baseline, evaluate


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


def noisy_pair(channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = rng.random((2, 3, channels, 32, 32)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype(np.float32)
    return pred, target


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_and_both_ssim_conventions_match_skimage(channels):
    pred, target = noisy_pair(channels)
    ours = metrics.frame_metrics(torch.from_numpy(pred), torch.from_numpy(target))
    for b in range(2):
        for t in range(3):
            x, y = np.moveaxis(pred[b, t], 0, -1), np.moveaxis(target[b, t], 0, -1)  # (H, W, C)
            ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, channel_axis=-1)
            assert float(ours["ssim"][b, t]) == pytest.approx(ref, abs=1e-5)
            ref = structural_similarity(x, y, win_size=7, data_range=2.0, channel_axis=-1)  # OpenSTL's call
            assert float(ours["ssim_openstl"][b, t]) == pytest.approx(ref, abs=1e-5)
            assert float(ours["psnr"][b, t]) == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1.0),
                                                              abs=1e-4)


def test_frame_metrics_agree_with_each_metric_alone():
    pred, target = (torch.from_numpy(a) for a in noisy_pair())
    together = metrics.frame_metrics(pred, target)
    assert set(together) == set(metrics.METRIC_NAMES) == set(metrics.CONVENTIONS)
    for name, fn in (("mse", metrics.mse), ("mae", metrics.mae), ("mse_per_pixel", metrics.mse_per_pixel),
                     ("psnr", metrics.psnr), ("ssim", metrics.ssim), ("ssim_openstl", metrics.ssim_openstl)):
        torch.testing.assert_close(together[name], fn(pred, target))


def test_scoring_several_predictions_at_once_equals_scoring_each_alone():
    pred, target = (torch.from_numpy(a) for a in noisy_pair())
    preds = {"noisy": pred, "black": torch.zeros_like(target), "last": target[:, :1].expand_as(target)}
    together = metrics.score(preds, target)
    for key, p in preds.items():
        alone = metrics.frame_metrics(p, target)
        for name in metrics.METRIC_NAMES:
            torch.testing.assert_close(together[key][name], alone[name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fn", [metrics.ssim, metrics.ssim_openstl])
def test_ssim_of_identical_frames_is_one_and_drops_with_noise(fn):
    x = torch.rand(1, 2, 1, 16, 16)
    torch.testing.assert_close(fn(x, x), torch.ones(1, 2))
    assert (fn(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)) < 0.9).all()


def test_ssim_keeps_float32_precision_on_flat_bright_frames():
    # a mean of 1 and a tiny difference: E[x^2] - E[x]^2 would cancel to noise in float32 without centring
    x = torch.full((1, 1, 1, 16, 16), 0.999)
    y = x.clone()
    y[..., 8, 8] = 1.0
    ref = structural_similarity(y[0, 0, 0].double().numpy(), x[0, 0, 0].double().numpy(), win_size=7,
                                data_range=2.0)
    assert float(metrics.ssim_openstl(y, x)) == pytest.approx(ref, abs=1e-6)


def test_baselines():
    ctx = torch.rand(2, 3, 1, 8, 8)
    t_ctx, t_q = torch.arange(3.0).expand(2, -1), torch.arange(3.0, 7.0).expand(2, -1)
    torch.testing.assert_close(baseline("copy_last", ctx, t_ctx, t_q), ctx[:, 2:3].expand(-1, 4, -1, -1, -1))
    assert float(baseline("zeros", ctx, t_ctx, t_q).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("mean", ctx, t_ctx, t_q)


def test_the_extrapolation_baseline_continues_a_linear_ramp_in_real_time():
    ramp = 0.1 + 0.05 * torch.tensor([0.0, 1.0, 3.0])  # brightness linear in time, sampled at 0, 1, 3
    ctx = ramp.view(1, 3, 1, 1, 1).expand(1, 3, 1, 4, 4)
    t_ctx, t_q = torch.tensor([[0.0, 1.0, 3.0]]), torch.tensor([[3.5, 5.0, 40.0]])
    out = baseline("extrapolate", ctx, t_ctx, t_q)[0, :, 0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([0.275, 0.35, 1.0]))  # the last one clipped to white
    one = baseline("extrapolate", ctx[:, :1], t_ctx[:, :1], t_q)
    torch.testing.assert_close(one, ctx[:, :1].expand(-1, 3, -1, -1, -1))


def test_evaluate_reports_model_and_baselines_on_the_same_sequences(tiny_config):
    model = tiny_config().build_model()
    seqs = np.random.default_rng(0).integers(0, 256, (5, 7, 1, 32, 32), dtype=np.uint8)
    res = evaluate(model, seqs, n_context=4, n_future=3, batch_size=2)
    target = torch.from_numpy(seqs[:, 4:7]).float() / 255
    assert res["n_sequences"] == 5 and set(res["baselines"]) == set(BASELINES)
    for key in metrics.METRIC_NAMES:
        assert len(res["per_step"][key]) == 3
        assert res[key] == pytest.approx(np.mean(res["per_step"][key]), rel=1e-6)
        zeros = metrics.frame_metrics(torch.zeros_like(target), target)[key]
        assert res["baselines"]["zeros"][key] == pytest.approx(float(zeros.double().mean()), rel=1e-5)
    assert res["conventions"]["ssim"]["window"] == 11 and res["conventions"]["ssim_openstl"]["data_range"] == 2.0
    assert {"generate", "pixels"} <= set(res["seconds"]) <= {"hash", "generate", "pixels", "lpips"}


def test_the_baselines_are_scored_once_per_test_set_and_read_back_exactly(tiny_config, tmp_path):
    model = tiny_config().build_model()
    seqs = np.random.default_rng(0).integers(0, 256, (5, 7, 1, 32, 32), dtype=np.uint8)
    first = evaluate(model, seqs, n_context=4, n_future=3, batch_size=2, cache=tmp_path, perceptual=False)
    again = evaluate(model, seqs, n_context=4, n_future=3, batch_size=3, cache=tmp_path, perceptual=False)
    assert not first["baselines_cached"] and again["baselines_cached"] and len(list(tmp_path.iterdir())) == 1
    assert again["baselines"] == first["baselines"] and again["mse"] == pytest.approx(first["mse"], rel=1e-6)
    changed = seqs.copy()
    changed[4, 6, 0, 0, 0] ^= 1  # one pixel of one target frame: another test set
    other = evaluate(model, changed, n_context=4, n_future=3, batch_size=2, cache=tmp_path, perceptual=False)
    assert not other["baselines_cached"] and len(list(tmp_path.iterdir())) == 2
    shorter = evaluate(model, seqs, n_context=4, n_future=2, cache=tmp_path, perceptual=False)
    assert not shorter["baselines_cached"]  # another future length: another entry
    fresh = evaluate(model, seqs, n_context=4, n_future=3, cache=False, perceptual=False)
    assert not fresh["baselines_cached"] and fresh["baselines"] == first["baselines"]
    for entry in tmp_path.iterdir():
        entry.write_bytes(entry.read_bytes()[:100])  # damaged: scored again, and written anew
    again = evaluate(model, seqs, n_context=4, n_future=3, batch_size=2, cache=tmp_path, perceptual=False)
    assert not again["baselines_cached"] and again["baselines"] == first["baselines"]
