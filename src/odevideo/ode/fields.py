"""Vector fields f(t, z) = dz/dt. Both are autonomous (they ignore t), which suits extrapolation: the
dynamics learned on the observed window apply unchanged beyond it. Their sizes come from the model's config
(``field_hidden``, ``field_layers``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class TanhField(nn.Module):
    """dz/dt = out(tanh(... tanh(in(z)))): ``layers`` hidden layers of ``hidden`` units made by ``layer``."""

    def __init__(self, layer: Callable[[int, int], nn.Module], dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [layer(n_in, n_out), nn.Tanh()]
        self.net = nn.Sequential(*blocks, layer(sizes[-1], dim))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPField(TanhField):
    """dz/dt for a vector latent z of shape (B, D): an MLP with tanh hidden layers."""

    def __init__(self, dim: int, hidden: int, layers: int) -> None:
        super().__init__(nn.Linear, dim, hidden, layers)


class ConvField(TanhField):
    """dz/dt for a spatial latent z of shape (B, D, h, w): 3x3 convolutions with tanh hidden layers.

    Being convolutional, it can move content across the latent map (advection), the motion a video needs.
    """

    def __init__(self, dim: int, hidden: int, layers: int) -> None:
        super().__init__(lambda n_in, n_out: nn.Conv2d(n_in, n_out, 3, padding=1), dim, hidden, layers)
