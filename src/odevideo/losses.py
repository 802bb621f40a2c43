"""The training losses: a pixel loss, the KL term of variational models and the two objectives.

The objective decides which frames the loss sees:

- ``reconstruction`` (Voleti et al.): the context frames only; the future is extrapolated at test time.
- ``prediction``: the context and the target frames.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from odevideo.models import Generation, VideoModel


def pixel_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean per-pixel loss of frame logits against target frames in [0, 1]: ``bce`` (pixels as Bernoulli
    probabilities) or ``mse`` (squared error of ``sigmoid(logits)``)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "mse":
        return F.mse_loss(torch.sigmoid(logits), target)
    raise ValueError(f"unknown pixel loss {kind!r}; choose bce or mse")


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample, summed over the latent, averaged over the batch.

    Args:
        mean, logvar: (B, *latent).
    """
    mean, logvar = mean.flatten(1), logvar.flatten(1)
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()


def objective_loss(model: VideoModel, frames: torch.Tensor, times: torch.Tensor, *, n_context: int,
                   objective: str, loss: str, kl_weight: float, perceptual_weight: float = 0.0
                   ) -> tuple[torch.Tensor, torch.Tensor, Generation, torch.Tensor]:
    """The training loss of one batch under ``objective``.

    Args:
        model: a video model.
        frames: (B, T, C, H, W) float in [0, 1]; the first ``n_context`` frames condition.
        times: their times, (T,) or (B, T); the context times increase, the targets' may interleave with them
            (irregular sampling), and are sorted here per sample before querying.
        n_context: the conditioning frames.
        objective: ``reconstruction`` or ``prediction``.
        loss: the pixel loss, ``bce`` or ``mse``.
        kl_weight: weight of the KL term of variational models and of models with a learned prior.
        perceptual_weight: weight of the mean LPIPS of the predicted frames (a sharpness loss).

    Returns:
        (total loss, pixel loss, the model's output, the frames it was compared with).
    """
    times = times.expand(frames.shape[0], -1) if times.ndim == 1 else times
    n_query = n_context if objective == "reconstruction" else frames.shape[1]
    order = times[:, :n_query].argsort(dim=1)  # (B, Tq): the identity on the frame grid
    rows = torch.arange(frames.shape[0], device=frames.device)[:, None]
    target = frames[rows, order]
    given = {"targets": target} if model.reads_targets else {}
    out = model(frames[:, :n_context], times[:, :n_context], times[rows, order], **given)
    recon = pixel_loss(out.logits, target, loss)
    total = recon
    if out.z0_logvar is not None:
        total = total + kl_weight * kl_to_standard_normal(out.z0_mean, out.z0_logvar)
    if out.kl is not None:  # a learned prior's KL(q || p)
        total = total + kl_weight * out.kl.mean()
    if perceptual_weight:
        from odevideo.perceptual.lpips import lpips_differentiable

        total = total + perceptual_weight * lpips_differentiable(out.frames, target).mean()
    return total, recon, out, target
