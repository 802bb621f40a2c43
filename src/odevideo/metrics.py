"""Frame metrics, each with its convention stated.

All take predictions and targets as float tensors (B, T, C, H, W) in [0, 1] and return per-frame values
(B, T); averaging over frames and sequences is left to the caller, so per-step curves come for free.
:func:`frame_metrics` computes all of them in one pass over a batch.

- ``mse``/``mae``: per-frame SUM over pixels (and channels) of the squared/absolute error; averaged over
  frames and sequences this is the convention of OpenSTL and most Moving MNIST tables.
- ``mse_per_pixel``: per-frame MEAN over pixels.
- ``psnr``: 10 log10(1 / mse_per_pixel) per frame (data range 1.0), averaged afterwards, never computed from
  an averaged MSE. A perfect frame is capped at ``PSNR_CAP`` dB.
- ``ssim``: Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, data range
  1.0, population covariances, averaged over the valid (un-padded) window positions and the channels: the same
  numbers as ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1.0)``.
- ``ssim_openstl``: the SSIM of OpenSTL's published tables (its ``metrics.py`` calls skimage with the defaults):
  a uniform 7x7 window, sample covariances, and the data range that skimage then inferred for float images
  from their dtype, 2.0 (it assumed [-1, 1]). The wider assumed range shrinks the stabilising constants, so
  the numbers differ from ``ssim``: compare each only with its own convention.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

PSNR_CAP = 100.0
SSIM_CONVENTION = {"window": 11, "gaussian_sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0,
                   "covariance": "population", "border": "valid (no padding)",
                   "reference": "skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, "
                                "use_sample_covariance=False, data_range=1.0)"}
SSIM_OPENSTL_CONVENTION = {"window": 7, "weights": "uniform", "k1": 0.01, "k2": 0.03, "data_range": 2.0,
                           "covariance": "sample (N - 1)", "border": "valid (no padding)",
                           "reference": "skimage.metrics.structural_similarity(win_size=7, data_range=2.0) as "
                                        "OpenSTL's metrics.py computed it (skimage's float default at the time)"}
CONVENTIONS = {
    "mse": "per-frame sum over pixels of squared error, averaged over frames and sequences (OpenSTL)",
    "mse_per_pixel": "per-frame mean over pixels of squared error, averaged over frames and sequences",
    "mae": "per-frame sum over pixels of absolute error, averaged over frames and sequences",
    "psnr": f"per frame 10*log10(1/mse_per_pixel), data range 1.0, capped at {PSNR_CAP} dB, then averaged",
    "ssim": SSIM_CONVENTION,
    "ssim_openstl": SSIM_OPENSTL_CONVENTION,
}
METRIC_NAMES = tuple(CONVENTIONS)


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(f"pred and target must both be (B, T, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame sum of squared errors, (B, T)."""
    _check(pred, target)
    return (pred - target).pow(2).flatten(2).sum(-1)


def mse_per_pixel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame mean squared error, (B, T)."""
    _check(pred, target)
    return (pred - target).pow(2).flatten(2).mean(-1)


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame sum of absolute errors, (B, T)."""
    _check(pred, target)
    return (pred - target).abs().flatten(2).sum(-1)


def psnr_from_mse_per_pixel(err: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (data range 1.0) of per-frame mean squared errors, capped at ``PSNR_CAP``."""
    return (10 * torch.log10(1.0 / err.double())).clamp(max=PSNR_CAP).nan_to_num(PSNR_CAP).to(err.dtype)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR in dB for data range 1.0, (B, T)."""
    return psnr_from_mse_per_pixel(mse_per_pixel(pred, target))


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim(pred: torch.Tensor, target: torch.Tensor, window: torch.Tensor, data_range: float,
          sample_covariance: bool) -> torch.Tensor:
    """Per-frame SSIM (B, T) with a separable 1-D ``window`` (taps summing to 1), valid positions only."""
    _check(pred, target)
    b, t, c, h, w = pred.shape
    n = window.numel()
    if h < n or w < n:
        raise ValueError(f"frames of {h}x{w} are smaller than the {n}x{n} SSIM window")
    x = pred.reshape(b * t * c, 1, h, w).float()
    y = target.reshape(b * t * c, 1, h, w).float()
    # Centre both images on their joint mean (SSIM does not change, and the variances lose no float32 digits
    # to cancellation), then filter the five maps along rows and along columns in one grouped convolution each.
    shift = 0.5 * (x.mean(dim=(2, 3), keepdim=True) + y.mean(dim=(2, 3), keepdim=True))
    x, y = x - shift, y - shift
    g = window.to(device=x.device, dtype=x.dtype)
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5, H, W)
    maps = F.conv2d(maps, g.view(1, 1, 1, n).expand(5, 1, 1, n), groups=5)
    mu_x, mu_y, xx, yy, xy = F.conv2d(maps, g.view(1, 1, n, 1).expand(5, 1, n, 1), groups=5).unbind(1)
    norm = n * n / (n * n - 1) if sample_covariance else 1.0
    var_x, var_y, cov = norm * (xx - mu_x**2), norm * (yy - mu_y**2), norm * (xy - mu_x * mu_y)
    mu_x, mu_y = mu_x + shift[:, 0], mu_y + shift[:, 0]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2)).reshape(b, t, c).mean(-1).to(pred.dtype)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM, (B, T), in odevideo's convention (``SSIM_CONVENTION``)."""
    return _ssim(pred, target, _gaussian_window(11, 1.5), data_range=1.0, sample_covariance=False)


def ssim_openstl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM, (B, T), in OpenSTL's convention (``SSIM_OPENSTL_CONVENTION``)."""
    return _ssim(pred, target, torch.full((7,), 1 / 7, dtype=torch.float64), data_range=2.0,
                 sample_covariance=True)


def frame_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of ``METRIC_NAMES`` per frame, {name: (B, T)}, in one pass over the batch."""
    _check(pred, target)
    diff = (pred - target).flatten(2)
    sq = diff.pow(2)
    per_pixel = sq.mean(-1)
    return {"mse": sq.sum(-1), "mse_per_pixel": per_pixel, "mae": diff.abs().sum(-1),
            "psnr": psnr_from_mse_per_pixel(per_pixel), "ssim": ssim(pred, target),
            "ssim_openstl": ssim_openstl(pred, target)}


def summarize(per_frame: dict[str, list[torch.Tensor]]) -> dict[str, object]:
    """Per-frame metric batches {name: [(B, T), ...]} -> {name: mean, "per_step": {name: [mean at each step]}}."""
    out: dict[str, object] = {}
    per_step: dict[str, list[float]] = {}
    for name, chunks in per_frame.items():
        values = torch.cat(chunks).double()  # (N, T)
        out[name] = float(values.mean())
        per_step[name] = [float(v) for v in values.mean(0)]
    out["per_step"] = per_step
    return out
