"""Per-frame convolutional encoder: frames -> feature maps."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.models.blocks import ResBlock


class ConvEncoder(nn.Module):
    """Frames (N, C, H, W) -> features (N, width, H / (patch * 2**downsample), W / ...).

    Space-to-depth by ``patch`` first (cheap: the convolutions then run at 1/patch resolution), then a 3x3
    convolution, ``depth - 1`` residual blocks and ``downsample`` stride-2 convolutions.
    """

    def __init__(self, channels: int, width: int, patch: int, depth: int, downsample: int) -> None:
        super().__init__()
        self.patch = patch
        layers: list[nn.Module] = [nn.Conv2d(channels * patch * patch, width, 3, padding=1)]
        layers += [ResBlock(width) for _ in range(depth - 1)]
        for _ in range(downsample):
            layers += [nn.SiLU(), nn.Conv2d(width, width, 4, stride=2, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.pixel_unshuffle(x, self.patch))  # (N, C*p*p, H/p, W/p) -> (N, width, h, w)
