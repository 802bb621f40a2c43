"""SimVP with gated spatio-temporal attention (SimVP-gSTA; Gao et al. 2022, Tan et al. 2023), the efficient
peer baseline, laid out as OpenSTL's ``simvp`` with ``model_type='gSTA'``.

    M context frames --per-frame conv encoder (n_s layers, every second one halves the side)--> (B, M, C, h, w)
    stacked along channels (B, M*C, h, w) --n_t gSTA blocks (the translator)--> M future frames' features
    --per-frame conv decoder (a skip from the first encoder layer)--> M future frames at once

It predicts the M frames that follow the context in one pass. Further frames are predicted M at a time from
the M frames before them (its own predictions), as OpenSTL does for longer horizons. Query times within the
context return the context frames themselves: it has no reconstruction of its own, so the
reconstruction-only objective is refused for it (``odevideo.config``). Differences from OpenSTL: no drop path
(OpenSTL: 0.1), and the sizes are options, defaulting to OpenSTL's Moving MNIST layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import ConfigError, DataError
from odevideo.models.inputs import check_inputs, frame_grid_steps
from odevideo.models.output import Generation
from odevideo.ode import SolverConfig
from odevideo.options import check_choices, check_positive

EPS = 1e-4  # context frames passed through as logits are kept off 0 and 1


@dataclass
class SimVPConfig:
    """SimVP-gSTA (``kind: simvp``), laid out as OpenSTL's Moving MNIST SimVP; the defaults are OpenSTL's.

    Attributes:
        kind: the model kind.
        context: context frames it reads, M, and frames it predicts per pass (equal to ``data.n_context``).
        hid_s: channels of the per-frame encoder and decoder (OpenSTL: 64).
        hid_t: channels of the translator (OpenSTL: 512).
        n_s: encoder (and decoder) layers; every second one halves (doubles) the side (OpenSTL: 4).
        n_t: gSTA blocks of the translator (OpenSTL: 8).
        kernel: the large kernel the gated attention decomposes into a 5x5 and a dilated 7x7 (OpenSTL: 21).
        mlp_ratio: hidden width of each block's MLP, over its channels (OpenSTL: 4).
    """

    kind: Literal["simvp"] = "simvp"
    context: int = 10
    hid_s: int = 64
    hid_t: int = 512
    n_s: int = 4
    n_t: int = 8
    kernel: int = 21
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "context", "hid_s", "hid_t", "n_s", "n_t", "kernel", "mlp_ratio")
        if self.n_s % 2:
            raise ConfigError(f"model.n_s must be even (layers come in pairs: one keeps the side, one halves "
                              f"it), got {self.n_s}")
        if self.n_t < 2:
            raise ConfigError(f"model.n_t must be at least 2 (a block in and a block out), got {self.n_t}")


class ConvSC(nn.Module):
    """3x3 convolution, GroupNorm(2) and SiLU; stride 2 to halve the side, or a pixel shuffle to double it."""

    def __init__(self, c_in: int, c_out: int, *, down: bool = False, up: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * (4 if up else 1), 3, stride=2 if down else 1, padding=1)
        self.shuffle = nn.PixelShuffle(2) if up else nn.Identity()
        self.norm = nn.GroupNorm(2, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.shuffle(self.conv(x))))


class GatedAttention(nn.Module):
    """OpenSTL's SpatialAttention with its AttentionModule: a large depthwise kernel decomposed into a 5x5 and
    a dilated (3) 7x7 depthwise convolution, whose 1x1 projection splits into a value and a sigmoid gate."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        dilation = 3
        small = 2 * dilation - 1
        large = kernel // dilation + ((kernel // dilation) % 2 - 1)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.local = nn.Conv2d(dim, dim, small, padding=small // 2, groups=dim)
        self.wide = nn.Conv2d(dim, dim, large, padding=dilation * (large - 1) // 2, groups=dim, dilation=dilation)
        self.gate = nn.Conv2d(dim, 2 * dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.proj_in(x))
        value, gate = self.gate(self.wide(self.local(y))).chunk(2, dim=1)
        return x + self.proj_out(torch.sigmoid(gate) * value)


class GSTABlock(nn.Module):
    """A gSTA block (OpenSTL's GASubBlock, then a 1x1 reduction when the width changes): x + s1 * attention(BN(x)),
    then x + s2 * MLP(BN(x)), the MLP with a 3x3 depthwise convolution, s1 and s2 learned per channel from 0.01."""

    def __init__(self, c_in: int, c_out: int, kernel: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(c_in * mlp_ratio)
        self.norm1, self.norm2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_in)
        self.attention = GatedAttention(c_in, kernel)
        self.mlp = nn.Sequential(nn.Conv2d(c_in, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                 nn.GELU(), nn.Conv2d(hidden, c_in, 1))
        self.scale1 = nn.Parameter(torch.full((c_in, 1, 1), 1e-2))
        self.scale2 = nn.Parameter(torch.full((c_in, 1, 1), 1e-2))
        self.reduce = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.scale1 * self.attention(self.norm1(x))
        x = x + self.scale2 * self.mlp(self.norm2(x))
        return self.reduce(x)


class SimVP(nn.Module):
    """SimVP-gSTA video predictor (see the module docstring).

    Args:
        config: the layout (:class:`SimVPConfig`).
        channels: image channels.
        size: frame side in pixels.
        solver: unused (a discrete model); accepted so that every model kind is built alike.
    """

    def __init__(self, config: SimVPConfig, *, channels: int, size: int, solver: SolverConfig | None = None
                 ) -> None:
        super().__init__()
        c = config
        if size % 2 ** (c.n_s // 2):
            raise ConfigError(f"frame size {size} must be divisible by 2 ** (model.n_s / 2) = {2 ** (c.n_s // 2)}")
        self.config, self.channels, self.size = c, channels, size
        downs = [False, True] * (c.n_s // 2)
        self.encoder = nn.ModuleList(ConvSC(channels if i == 0 else c.hid_s, c.hid_s, down=d)
                                     for i, d in enumerate(downs))
        widths = [c.context * c.hid_s] + [c.hid_t] * (c.n_t - 1) + [c.context * c.hid_s]
        self.translator = nn.ModuleList(GSTABlock(a, b, c.kernel, c.mlp_ratio)
                                        for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.decoder = nn.ModuleList(ConvSC(c.hid_s, c.hid_s, up=u) for u in reversed(downs))
        self.readout = nn.Conv2d(c.hid_s, channels, 1)

    def predict(self, frames: torch.Tensor) -> torch.Tensor:
        """M frames (B, M, C, H, W) -> logits of the M frames that follow them, (B, M, C, H, W)."""
        b, m = frames.shape[:2]
        x = frames.flatten(0, 1)
        skip = None
        for layer in self.encoder:
            x = layer(x)
            skip = x if skip is None else skip
        h = x.unflatten(0, (b, m)).flatten(1, 2)  # (B, M*C, h, w): time stacked along channels
        for block in self.translator:
            h = block(h)
        x = h.unflatten(1, (m, -1)).flatten(0, 1)
        for i, layer in enumerate(self.decoder):
            x = layer(x + skip if i == len(self.decoder) - 1 else x)
        return self.readout(x).unflatten(0, (b, m))

    def forward(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                generator: torch.Generator | None = None) -> Generation:
        """Frames at ``t_query`` (whole steps after ``t_context[0]``) from context ``frames`` (B, M, C, H, W)."""
        t_context, t_query = check_inputs(frames, t_context, t_query, channels=self.channels, size=self.size)
        b, m = frames.shape[:2]
        if m != self.config.context:
            raise DataError(f"this SimVP reads {self.config.context} context frames (model.context), got {m}")
        index = frame_grid_steps(t_context.to(frames), t_query.to(frames), "SimVP")  # (B, Tq)
        chunks = [torch.logit(EPS + (1 - 2 * EPS) * frames)]  # indices 0..M-1: the context, passed through
        while len(chunks) * m <= int(index.max()):
            source = frames if len(chunks) == 1 else torch.sigmoid(chunks[-1])
            chunks.append(self.predict(source))
        logits = torch.cat(chunks, dim=1)
        rows = torch.arange(b, device=frames.device)[:, None]
        return Generation(logits=logits[rows, index], z_traj=logits.new_zeros(b, index.shape[1], 1),
                          z0_mean=logits.new_zeros(b, 1), z0_logvar=None, nfe=0)
