"""SimVP with gated spatio-temporal attention (SimVP-gSTA; Gao et al. 2022, Tan et al. 2023), the efficient
peer baseline, laid out as OpenSTL's ``SimVP_Model`` with ``model_type='gSTA'`` (``openstl/models/simvp_model.py``,
``openstl/modules/simvp_modules.py``) and sized by default as its Moving MNIST config
(``configs/mmnist/simvp/SimVP_gSTA.py``: 64 / 512 channels, 4 encoder layers, 8 blocks; 46.8M parameters for
10 frames of 1 x 64 x 64).

    M context frames --per-frame conv encoder (n_s layers, every second one halves the side)--> (B, M, C, h, w)
    stacked along channels (B, M*C, h, w) --n_t gSTA blocks (the translator)--> M future frames' features
    --per-frame conv decoder (a skip from the first encoder layer)--> M future frames at once

It predicts the M frames that follow the context in one pass. Further frames are predicted M at a time from
the M frames before them (its own predictions), as OpenSTL does for longer horizons. Query times within the
context return the context frames themselves: it has no reconstruction of its own, so the
reconstruction-only objective is refused for it (:meth:`SimVPConfig.check_with`).

As OpenSTL: MLP ratio 8 (``SimVP_Model``'s default, which the Moving MNIST config keeps); the encoder and
decoder convolutions start from a normal of std 0.02 truncated at +-2 (timm's ``trunc_normal_``, whose bounds are
absolute, so at this std it truncates nothing), biases 0; the convolutions inside each gSTA block (attention and
MLP) start from a normal of std sqrt(2 / fan_out), fan_out = kernel area x output channels / groups, biases 0
(``GASubBlock._init_weights``); the blocks' 1x1 width changes and the readout keep PyTorch's default; layer
scales start at 0.01; stochastic depth on both residual branches of block i at rate 0.01 (1 - i / (n_t - 1)),
training only (OpenSTL's ``linspace(1e-2, drop_path, N_T)`` with its Moving MNIST ``drop_path = 0``).

Differences from OpenSTL: the sizes, kernel and drop path are options; ``model.drop_path`` is the first block's
rate, falling linearly to 0 at the last, where OpenSTL's ``drop_path`` argument is the last block's rate with the
first fixed at 0.01 (the two agree at OpenSTL's Moving MNIST setting, odevideo's default); the readout gives
logits, scored through a sigmoid by odevideo's pixel loss (``train.loss``), where OpenSTL's gives pixel values
under MSE; and it answers odevideo's query times as above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import ConfigError, DataError
from odevideo.models.base import Generation, KindConfig, VideoModel, to_logits
from odevideo.ode import SolverConfig
from odevideo.options import check_choices, check_positive
from odevideo.times import grid_steps


@dataclass
class SimVPConfig(KindConfig):
    """SimVP-gSTA (``kind: simvp``), laid out as OpenSTL's Moving MNIST SimVP; the defaults are OpenSTL's.

    Attributes:
        kind: the model kind.
        context: context frames it reads, M, and frames it predicts per pass (equal to ``data.n_context``).
        hid_s: channels of the per-frame encoder and decoder (OpenSTL: 64).
        hid_t: channels of the translator (OpenSTL: 512).
        n_s: encoder (and decoder) layers; every second one halves (doubles) the side (OpenSTL: 4).
        n_t: gSTA blocks of the translator (OpenSTL: 8).
        kernel: the large kernel the gated attention decomposes into a 5x5 and a dilated 7x7 (OpenSTL: 21).
        mlp_ratio: hidden width of each block's MLP, over its channels (OpenSTL: 8, ``SimVP_Model``'s default,
            which its Moving MNIST config keeps; odevideo's default was 4 before).
        drop_path: stochastic depth of the translator in training: the first block drops each residual branch
            of a sequence at this rate, falling linearly to 0 at the last block; 0 turns it off (OpenSTL's Moving
            MNIST run: 0.01 falling to 0, its ``linspace(1e-2, drop_path, N_T)`` with ``drop_path = 0``).
    """

    kind: Literal["simvp"] = "simvp"
    context: int = 10
    hid_s: int = 64
    hid_t: int = 512
    n_s: int = 4
    n_t: int = 8
    kernel: int = 21
    mlp_ratio: float = 8.0
    drop_path: float = 0.01

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "context", "hid_s", "hid_t", "n_s", "n_t", "kernel", "mlp_ratio")
        if self.n_s % 2:
            raise ConfigError(f"model.n_s must be even (layers come in pairs: one keeps the side, one halves "
                              f"it), got {self.n_s}")
        if self.n_t < 2:
            raise ConfigError(f"model.n_t must be at least 2 (a block in and a block out), got {self.n_t}")
        if not 0 <= self.drop_path < 1:
            raise ConfigError(f"model.drop_path must be in [0, 1), got {self.drop_path}")

    def check_with(self, data: Any, train: Any) -> None:
        """SimVP's translator is built for ``data.n_context`` frames, and it has no reconstruction of its own."""
        if self.context != data.n_context:
            raise ConfigError(f"model.context ({self.context}) must equal data.n_context ({data.n_context}): "
                              "SimVP's translator is built for that many frames")
        if train.objective == "reconstruction":
            raise ConfigError("model.kind=simvp predicts only beyond its context, so "
                              "train.objective=reconstruction leaves it nothing to learn: use prediction")


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth of a residual branch ``x`` (B, ...): in training, zero each sequence's branch with
    probability ``rate`` and scale the kept ones by 1 / (1 - rate); the identity otherwise."""
    if not training or rate == 0:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device) >= rate
    return x * keep.to(x.dtype) / (1 - rate)


def init_conv_fan_out(conv: nn.Conv2d) -> None:
    """The init of OpenSTL's gSTA blocks: weights from a normal of std sqrt(2 / fan_out), fan_out = kernel area x
    output channels / groups, biases 0."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, (2.0 / fan_out) ** 0.5)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ConvSC(nn.Module):
    """3x3 convolution, GroupNorm(2) and SiLU; stride 2 to halve the side, or a pixel shuffle to double it. The
    convolution starts as OpenSTL's BasicConv2d: timm's ``trunc_normal_(std=.02)``, whose bounds -2 and 2 are
    absolute (100 std, so nothing is cut), bias 0."""

    def __init__(self, c_in: int, c_out: int, *, down: bool = False, up: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * (4 if up else 1), 3, stride=2 if down else 1, padding=1)
        self.shuffle = nn.PixelShuffle(2) if up else nn.Identity()
        self.norm = nn.GroupNorm(2, c_out)
        nn.init.trunc_normal_(self.conv.weight, std=0.02, a=-2.0, b=2.0)
        nn.init.zeros_(self.conv.bias)

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
    then x + s2 * MLP(BN(x)), the MLP with a 3x3 depthwise convolution, s1 and s2 learned per channel from 0.01,
    each residual branch dropped per sequence at ``drop_rate`` in training (stochastic depth). The attention's
    and MLP's convolutions start as OpenSTL's (:func:`init_conv_fan_out`); the reduction keeps PyTorch's init."""

    def __init__(self, c_in: int, c_out: int, kernel: int, mlp_ratio: float, drop_rate: float = 0.0) -> None:
        super().__init__()
        hidden = int(c_in * mlp_ratio)
        self.drop_rate = drop_rate
        self.norm1, self.norm2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_in)
        self.attention = GatedAttention(c_in, kernel)
        self.mlp = nn.Sequential(nn.Conv2d(c_in, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                 nn.GELU(), nn.Conv2d(hidden, c_in, 1))
        for module in (*self.attention.modules(), *self.mlp.modules()):
            if isinstance(module, nn.Conv2d):
                init_conv_fan_out(module)
        self.scale1 = nn.Parameter(torch.full((c_in, 1, 1), 1e-2))
        self.scale2 = nn.Parameter(torch.full((c_in, 1, 1), 1e-2))
        self.reduce = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.scale1 * self.attention(self.norm1(x)), self.drop_rate, self.training)
        x = x + drop_path(self.scale2 * self.mlp(self.norm2(x)), self.drop_rate, self.training)
        return self.reduce(x)


class SimVP(VideoModel):
    """SimVP-gSTA video predictor (see the module docstring).

    Args:
        config: the layout (:class:`SimVPConfig`).
        channels: image channels.
        size: frame side in pixels.
        solver: unused (a discrete model); accepted so that every model kind is built alike.
    """

    continuous: ClassVar[bool] = False

    def __init__(self, config: SimVPConfig, *, channels: int, size: int, solver: SolverConfig | None = None
                 ) -> None:
        super().__init__(channels=channels, size=size)
        c = config
        if size % 2 ** (c.n_s // 2):
            raise ConfigError(f"frame size {size} must be divisible by 2 ** (model.n_s / 2) = {2 ** (c.n_s // 2)}")
        self.config = c
        downs = [False, True] * (c.n_s // 2)
        self.encoder = nn.ModuleList(ConvSC(channels if i == 0 else c.hid_s, c.hid_s, down=d)
                                     for i, d in enumerate(downs))
        widths = [c.context * c.hid_s] + [c.hid_t] * (c.n_t - 1) + [c.context * c.hid_s]
        rates = [c.drop_path * (1 - i / (c.n_t - 1)) for i in range(c.n_t)]  # linearly down to 0 at the last
        self.translator = nn.ModuleList(GSTABlock(a, b, c.kernel, c.mlp_ratio, rate)
                                        for a, b, rate in zip(widths[:-1], widths[1:], rates, strict=True))
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

    def forward(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                sample: bool = False, generator: torch.Generator | None = None) -> Generation:
        """Frames at ``t_query`` (whole steps after ``t_context[0]``) from ``context`` (B, M, C, H, W); the
        contract's call (:meth:`odevideo.models.base.VideoModel.forward`). It keeps no latent state per time,
        so ``z_traj`` is ``None``."""
        frames = context
        t_context, t_query = (t.to(frames) for t in self.check(context, t_context, t_query))
        b, m = frames.shape[:2]
        if m != self.config.context:
            raise DataError(f"this SimVP reads {self.config.context} context frames (model.context), got {m}")
        index = grid_steps(t_query, t_context[:, :1], "SimVP", t_context=t_context)  # (B, Tq)
        chunks = [to_logits(frames).to(frames.dtype)]  # indices 0..M-1: the context, passed through
        while len(chunks) * m <= int(index.max()):
            source = frames if len(chunks) == 1 else torch.sigmoid(chunks[-1])
            chunks.append(self.predict(source))
        logits = torch.cat(chunks, dim=1)
        rows = torch.arange(b, device=frames.device)[:, None]
        return Generation(logits=logits[rows, index])
