"""ConvLSTM baseline (Shi et al., 2015) as configured in OpenSTL for Moving MNIST: frames folded by a patch
(64x64 -> 16x16x16 for patch 4), stacked ConvLSTM layers with 5x5 kernels, a 1x1 convolution back to the
patch and depth-to-space.

It shares the latent ODE's interface, ``model(frames, t_context, t_query) -> Generation``, so the same trainer,
losses and metrics apply. Being discrete, it generates frames at whole steps after the first context time:
step k reads frame k-1 (the context frame while there is one, else its own prediction; nothing at k = 0)
and predicts frame k.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import DataError
from odevideo.models.inputs import check_inputs, whole_steps
from odevideo.models.latent_ode import Generation


class ConvLSTMCell(nn.Module):
    """x (N, C_in, h, w), state (h, c) each (N, C_h, h, w) -> new state."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 5) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM video predictor.

    Args:
        channels: image channels.
        size: frame side in pixels.
        patch: space-to-depth factor (OpenSTL: 4).
        width: hidden channels per layer (OpenSTL: 128).
        depth: layers (OpenSTL: 4).
        kernel: convolution kernel (OpenSTL: 5).
    """

    def __init__(self, *, channels: int = 1, size: int = 64, patch: int = 4, width: int = 128, depth: int = 4,
                 kernel: int = 5) -> None:
        super().__init__()
        if size % patch:
            raise ValueError(f"frame size {size} must be divisible by patch {patch}")
        self.channels, self.size, self.patch, self.width = channels, size, patch, width
        folded = channels * patch * patch
        self.cells = nn.ModuleList(ConvLSTMCell(folded if i == 0 else width, width, kernel) for i in range(depth))
        self.out = nn.Conv2d(width, folded, 1)

    def forward(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                generator: torch.Generator | None = None) -> Generation:
        """Frames at ``t_query`` (whole steps after ``t_context[0]``) from context ``frames`` (B, M, C, H, W)."""
        t_context, t_query = check_inputs(frames, t_context, t_query, channels=self.channels, size=self.size)
        b, m = frames.shape[:2]
        gaps = t_context[:, 1:] - t_context[:, :-1]
        if gaps.numel() and not torch.allclose(gaps, torch.ones_like(gaps)):
            raise DataError(f"ConvLSTM needs consecutive context frames one step apart, got {t_context.tolist()}")
        index = whole_steps(t_query.to(frames), t_context[:, :1].to(frames), "ConvLSTM")  # (B, Tq)
        side = self.size // self.patch
        state = [(frames.new_zeros(b, self.width, side, side),) * 2 for _ in self.cells]
        x = frames.new_zeros(b, self.channels * self.patch**2, side, side)  # step 0 reads nothing
        logits, hidden = [], []
        for k in range(int(index.max()) + 1):
            if 0 < k <= m:
                x = F.pixel_unshuffle(frames[:, k - 1], self.patch)
            elif k > m:
                x = F.pixel_unshuffle(torch.sigmoid(logits[-1]), self.patch)  # its own prediction
            h = x
            for i, cell in enumerate(self.cells):
                state[i] = cell(h, state[i])
                h = state[i][0]
            logits.append(F.pixel_shuffle(self.out(h), self.patch))  # (B, C, H, W)
            hidden.append(h)
        rows = torch.arange(b, device=frames.device)[:, None]
        z = torch.stack(hidden, dim=1)[rows, index]
        return Generation(logits=torch.stack(logits, dim=1)[rows, index], z_traj=z, z0_mean=hidden[0],
                          z0_logvar=None, nfe=0)
