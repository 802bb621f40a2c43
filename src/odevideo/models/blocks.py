"""Convolutional building blocks shared by the encoder, the decoder and the aggregator."""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))), 3x3, same resolution and width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.SiLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ConvGRUCell(nn.Module):
    """A GRU cell whose gates are 3x3 convolutions: x (N, C_in, h, w), state (N, C_h, h, w) -> new state."""

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 2 * hidden, 3, padding=1)
        self.candidate = nn.Conv2d(in_channels + hidden, hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        cand = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * cand
