"""Convolutional decoder: latent maps -> frame logits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.models.blocks import ResBlock


class ConvDecoder(nn.Module):
    """Latent maps (N, D, h, w) -> logits (N, C, H, W); ``sigmoid`` of the logits gives pixels in [0, 1].

    Mirrors :class:`~odevideo.models.encoder.ConvEncoder`: a 3x3 convolution, ``depth - 1`` residual
    blocks, ``upsample`` transposed stride-2 convolutions, and depth-to-space by ``patch``.
    """

    def __init__(self, latent_dim: int, channels: int, width: int, patch: int, depth: int, upsample: int) -> None:
        super().__init__()
        self.patch = patch
        layers: list[nn.Module] = [nn.Conv2d(latent_dim, width, 3, padding=1)]
        layers += [ResBlock(width) for _ in range(depth - 1)]
        for _ in range(upsample):
            layers += [nn.SiLU(), nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(width, channels * patch * patch, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.net(z), self.patch)  # (N, C*p*p, h', w') -> (N, C, H, W)
