"""ConvLSTM baseline (Shi et al., 2015) as configured in OpenSTL for Moving MNIST: frames folded by a patch
(64x64 -> 16x16x16 for patch 4), stacked ConvLSTM layers with 5x5 kernels, a 1x1 convolution back to the
patch and depth-to-space.

It shares the latent ODE's interface, ``model(frames, t_context, t_query) -> Generation``, so the same trainer,
losses and metrics apply. Being discrete, it generates frames at whole steps after the first context time:
step k reads frame k-1 (the context frame while there is one, else its own prediction; nothing at k = 0)
and predicts frame k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import ConfigError
from odevideo.models.base import Generation, KindConfig, VideoModel
from odevideo.ode import SolverConfig
from odevideo.options import check_choices, check_positive
from odevideo.times import grid_steps


@dataclass
class ConvLSTMConfig(KindConfig):
    """The ConvLSTM baseline (``kind: convlstm``), laid out as OpenSTL's Moving MNIST ConvLSTM.

    Attributes:
        kind: the model kind.
        patch: space-to-depth factor of the frames (OpenSTL: 4).
        hidden: hidden channels of each layer (OpenSTL: 128).
        layers: stacked ConvLSTM layers (OpenSTL: 4).
        kernel: convolution kernel of the gates (OpenSTL: 5).
    """

    kind: Literal["convlstm"] = "convlstm"
    patch: int = 4
    hidden: int = 128
    layers: int = 4
    kernel: int = 5

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "patch", "hidden", "layers", "kernel")
        if self.kernel % 2 == 0:
            raise ConfigError(f"model.kernel must be odd (same-size convolutions), got {self.kernel}")


class ConvLSTMCell(nn.Module):
    """x (N, C_in, h, w), state (h, c) each (N, C_h, h, w) -> new state."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(VideoModel):
    """Stacked ConvLSTM video predictor (deterministic, on the frame grid).

    Args:
        config: the layout (:class:`ConvLSTMConfig`).
        channels: image channels.
        size: frame side in pixels.
        solver: unused (a discrete model); accepted so that every model kind is built alike.
    """

    continuous: ClassVar[bool] = False

    def __init__(self, config: ConvLSTMConfig, *, channels: int, size: int, solver: SolverConfig | None = None
                 ) -> None:
        super().__init__(channels=channels, size=size)
        if size % config.patch:
            raise ConfigError(f"frame size {size} must be divisible by model.patch {config.patch}")
        self.config = config
        self.patch, self.hidden = config.patch, config.hidden
        folded = channels * config.patch**2
        self.cells = nn.ModuleList(ConvLSTMCell(folded if i == 0 else config.hidden, config.hidden, config.kernel)
                                   for i in range(config.layers))
        self.out = nn.Conv2d(config.hidden, folded, 1)

    def forward(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                sample: bool = False, generator: torch.Generator | None = None) -> Generation:
        """Frames at ``t_query`` (whole steps after ``t_context[0]``) from ``context`` (B, M, C, H, W); the
        contract's call (:meth:`odevideo.models.base.VideoModel.forward`). ``z_traj`` is the top layer's hidden
        state after each step, (B, Tq, hidden, h, w)."""
        frames = context
        t_context, t_query = (t.to(frames) for t in self.check(context, t_context, t_query))
        b, m = frames.shape[:2]
        index = grid_steps(t_query, t_context[:, :1], "ConvLSTM", t_context=t_context)  # (B, Tq)
        side = self.size // self.patch
        state = [(frames.new_zeros(b, self.hidden, side, side),) * 2 for _ in self.cells]
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
        return Generation(logits=torch.stack(logits, dim=1)[rows, index], z_traj=z)
