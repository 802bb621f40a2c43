"""Vector fields f(t, z) = dz/dt. Both are autonomous (they ignore t), which suits extrapolation: the
dynamics learned on the observed window apply unchanged beyond it."""

from __future__ import annotations

import torch
from torch import nn


class MLPField(nn.Module):
    """dz/dt for a vector latent z of shape (B, D): an MLP with tanh hidden layers."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
            blocks += [nn.Linear(n_in, n_out), nn.Tanh()]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], dim))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvField(nn.Module):
    """dz/dt for a spatial latent z of shape (B, D, h, w): 3x3 convolutions with tanh hidden layers.

    Being convolutional, it can move content across the latent map (advection), the motion a video needs.
    """

    def __init__(self, dim: int, hidden: int = 32, layers: int = 1) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
            blocks += [nn.Conv2d(n_in, n_out, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*blocks, nn.Conv2d(sizes[-1], dim, 3, padding=1))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
