"""Frame metrics, each with its convention stated.

All take predictions and targets as float tensors (B, T, C, H, W) in [0, 1] and return per-frame values
(B, T); averaging over frames and sequences is left to the caller, so per-step curves come for free.
:func:`frame_metrics` computes all of them in one pass over a batch, and :func:`score` for several predictions
of the same frames at once.

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


def _band(size: int, window: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(size, size - n + 1) matrix whose column j holds ``window`` at rows j .. j + n - 1: ``x @ band`` filters
    the last axis of ``x`` at every valid position."""
    n = window.numel()
    band = torch.zeros(size, size - n + 1, dtype=torch.float64)
    for k in range(n):
        band.diagonal(-k)[:] = window[k]
    return band.to(device=like.device, dtype=like.dtype)


WINDOWS = {"ssim": (_gaussian_window(11, 1.5), 1.0, False),  # taps, data range, sample covariance
           "ssim_openstl": (torch.full((7,), 1 / 7, dtype=torch.float64), 2.0, True)}


def _ssims(preds: list[torch.Tensor], target: torch.Tensor, names: tuple[str, ...]) -> list[dict[str, torch.Tensor]]:
    """Per-frame SSIM (B, T) of each prediction against ``target``, in each convention of ``names`` (keys of
    ``WINDOWS``), averaged over valid window positions only.

    The local statistics are filtered with each separable window as two products with banded matrices
    (:func:`_band`), which BLAS runs far faster than depthwise convolutions. The target's maps are filtered
    once for all predictions, and every map shares the product along H of every convention.
    """
    for pred in preds:
        _check(pred, target)
    b, t, c, h, w = target.shape
    widest = max(WINDOWS[name][0].numel() for name in names)
    if h < widest or w < widest:
        raise ValueError(f"frames of {h}x{w} are smaller than the {widest}x{widest} SSIM window")
    y = target.reshape(b * t * c, h, w).float()
    # Centre every image on the target's mean: SSIM does not change, and the variances lose no float32 digits
    # to cancellation (E[x^2] - E[x]^2 of a bright, flat frame).
    shift = y.mean(dim=(1, 2), keepdim=True)  # (N, 1, 1)
    y = y - shift
    xs = [p.reshape(b * t * c, h, w).float() - shift for p in preds]
    planes = [y, y * y] + [m for x in xs for m in (x, x * x, x * y)]
    # The maps laid out (H, N, maps, W): filtering along H is one product from the left for every map and
    # convention, filtering along W one product from the right per convention.
    k = len(planes)
    maps = torch.stack(planes, dim=1).permute(2, 0, 1, 3).reshape(h, -1)  # (H, N*k*W)
    bands = [_band(h, WINDOWS[name][0], y) for name in names]
    cols = torch.cat(bands, dim=1).T @ maps  # (sum of H', N*k*W)
    out: list[dict[str, torch.Tensor]] = [{} for _ in preds]
    start = 0
    for name, band in zip(names, bands, strict=True):
        window, data_range, sample_covariance = WINDOWS[name]
        n, valid = window.numel(), band.shape[1]
        stats = cols[start:start + valid].reshape(-1, w) @ _band(w, window, y)  # (H' * N * k, W')
        stats = stats.reshape(valid, -1, k, w - n + 1)  # (H', N, k, W')
        start += valid
        norm = n * n / (n * n - 1) if sample_covariance else 1.0
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        mu_y, yy = stats[:, :, 0], stats[:, :, 1]
        var_y = norm * (yy - mu_y**2)
        mu_y_true = mu_y + shift.view(1, -1, 1)
        for i in range(len(preds)):
            mu_x, xx, xy = stats[:, :, 2 + 3 * i], stats[:, :, 3 + 3 * i], stats[:, :, 4 + 3 * i]
            var_x, cov = norm * (xx - mu_x**2), norm * (xy - mu_x * mu_y)
            mu_x = mu_x + shift.view(1, -1, 1)
            num = (2 * mu_x * mu_y_true + c1) * (2 * cov + c2)
            s = num / ((mu_x**2 + mu_y_true**2 + c1) * (var_x + var_y + c2))  # (H', N, W')
            out[i][name] = s.mean(dim=(0, 2)).reshape(b, t, c).mean(-1).to(preds[i].dtype)
    return out


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM, (B, T), in odevideo's convention (``SSIM_CONVENTION``)."""
    return _ssims([pred], target, ("ssim",))[0]["ssim"]


def ssim_openstl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM, (B, T), in OpenSTL's convention (``SSIM_OPENSTL_CONVENTION``)."""
    return _ssims([pred], target, ("ssim_openstl",))[0]["ssim_openstl"]


def frame_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of ``METRIC_NAMES`` per frame, {name: (B, T)}, in one pass over the batch."""
    return score({"pred": pred}, target)["pred"]


def score(preds: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Every metric per frame of several predictions of one target: {key: {name: (B, T)}}. The target's share
    of the SSIM statistics is computed once for all of them."""
    ssims = _ssims(list(preds.values()), target, ("ssim", "ssim_openstl"))
    out = {}
    for (key, pred), ssim_values in zip(preds.items(), ssims, strict=True):
        diff = (pred - target).flatten(2)
        sq = diff.pow(2)
        per_pixel = sq.mean(-1)
        out[key] = {"mse": sq.sum(-1), "mse_per_pixel": per_pixel, "mae": diff.abs().sum(-1),
                    "psnr": psnr_from_mse_per_pixel(per_pixel), **ssim_values}
    return out


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
