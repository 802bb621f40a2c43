"""Frame metrics, each with its convention stated.

All take predictions and targets as float tensors (B, T, C, H, W) in [0, 1] and return per-frame values
(B, T); averaging over frames and sequences is left to the caller, so per-step curves come for free.

- ``mse``/``mae``: per-frame SUM over pixels (and channels) of the squared/absolute error; averaged over
  frames and sequences this is the convention of OpenSTL and most Moving MNIST tables.
- ``mse_per_pixel``: per-frame MEAN over pixels.
- ``psnr``: 10 log10(1 / mse_per_pixel) per frame (data range 1.0), averaged afterwards, never computed from
  an averaged MSE. A perfect frame is capped at ``PSNR_CAP`` dB.
- ``ssim``: Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, data range
  1.0, population covariances, averaged over the valid (un-padded) window positions and the channels: the same
  numbers as ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1.0)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

PSNR_CAP = 100.0
SSIM_CONVENTION = {"window": 11, "gaussian_sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0,
                   "covariance": "population", "border": "valid (no padding)",
                   "reference": "skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, "
                                "use_sample_covariance=False, data_range=1.0)"}
CONVENTIONS = {
    "mse": "per-frame sum over pixels of squared error, averaged over frames and sequences (OpenSTL)",
    "mse_per_pixel": "per-frame mean over pixels of squared error, averaged over frames and sequences",
    "mae": "per-frame sum over pixels of absolute error, averaged over frames and sequences",
    "psnr": f"per frame 10*log10(1/mse_per_pixel), data range 1.0, capped at {PSNR_CAP} dB, then averaged",
    "ssim": SSIM_CONVENTION,
}


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


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR in dB for data range 1.0, (B, T)."""
    err = mse_per_pixel(pred, target).double()
    return (10 * torch.log10(1.0 / err)).clamp(max=PSNR_CAP).nan_to_num(PSNR_CAP).to(pred.dtype)


def gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A normalised 1-D Gaussian window of ``size`` taps."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim(pred: torch.Tensor, target: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-frame SSIM, (B, T); see the module docstring for the convention."""
    _check(pred, target)
    b, t, c, h, w = pred.shape
    if h < window or w < window:
        raise ValueError(f"SSIM needs frames of at least {window}x{window}, got {h}x{w}")
    x = pred.reshape(b * t * c, 1, h, w).double()
    y = target.reshape(b * t * c, 1, h, w).double()
    g = gaussian_1d(window, sigma, x.dtype, x.device)
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    # The Gaussian window is separable: filter the five maps along rows, then along columns (2 x 11 taps
    # instead of 121), all five in one grouped convolution.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5, H, W)
    maps = F.conv2d(maps, g.view(1, 1, 1, window).expand(5, 1, 1, window), groups=5)
    mu_x, mu_y, xx, yy, xy = F.conv2d(maps, g.view(1, 1, window, 1).expand(5, 1, window, 1), groups=5).unbind(1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2)).reshape(b, t, c).mean(-1).to(pred.dtype)


METRICS = {"mse": mse, "mse_per_pixel": mse_per_pixel, "mae": mae, "psnr": psnr, "ssim": ssim}


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
