"""Pixel-level composition (as in Vid-ODE): a generated frame is an observed frame (the source: the last
context frame, or the latest one at or before the query time) warped by a decoded flow, blended through a
decoded mask with a frame drawn from scratch.

    frame(t) = mask(t) * warp(source, flow(t)) + (1 - mask(t)) * sigmoid(draw(t))

Moving things keep their sharp pixels (they are copied and moved, not redrawn), and the drawn part fills in
what the warp cannot explain (disocclusions, digits entering). The flow runs from the source frame straight
to the query time, so it is defined at any real time, like the latent it is decoded from.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.models.base import EPS, to_logits  # noqa: F401 (EPS: the margin of the composed logits)

# Channels per image channel of the decoder output in composition mode: draw logits, then (after all image
# channels) 2 flow channels and 1 mask channel.
EXTRA_CHANNELS = 3
FLOW_SCALE = 4.0  # pixels of displacement per unit of decoder output
MASK_INIT = 3.0  # initial mask logit: start by copying the source frame (sigmoid(3) = 0.95), so the flow gets
# gradients from the start instead of the mask closing before the flow has learnt to move anything


def init_composition(last_conv: nn.Conv2d, channels: int, patch: int) -> None:
    """Start the decoder's last convolution (before depth-to-space by ``patch``) at zero flow and a mask that
    copies the source frame."""
    with torch.no_grad():
        n = patch * patch
        last_conv.weight[channels * n:].mul_(0.1)
        last_conv.bias[channels * n:(channels + 2) * n] = 0.0
        last_conv.bias[(channels + 2) * n:] = MASK_INIT


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out[..., y, x] = image[..., y + flow_y, x + flow_x]`` (bilinear, zeros outside).

    Args:
        image: (N, C, H, W).
        flow: displacements in pixels, (N, 2, H, W), channel 0 along x (width), channel 1 along y.
    """
    n, _, h, w = image.shape
    ys = torch.arange(h, device=image.device, dtype=image.dtype)
    xs = torch.arange(w, device=image.device, dtype=image.dtype)
    x = xs.view(1, 1, w) + flow[:, 0]
    y = ys.view(1, h, 1) + flow[:, 1]
    # align_corners=True: -1 and 1 are the centres of the first and last pixels.
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def flow_of(out: torch.Tensor, channels: int) -> torch.Tensor:
    """The flow in pixels, (N, 2, H, W), in a decoder output (N, channels + 3, H, W)."""
    return out[:, channels:channels + 2].float() * FLOW_SCALE


def compose(out: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Decoder output (N, C + 3, H, W) and the source frame (N, C, H, W) in [0, 1] -> frame logits
    (N, C, H, W) of the composed frame."""
    # In float32 even under bf16/fp16 autocast: in bf16, 1 - 2 * EPS rounds to 1 and the logit to infinity.
    with torch.autocast(out.device.type, enabled=False):
        out, source = out.float(), source.float()
        c = source.shape[1]
        draw, flow, mask = out[:, :c], flow_of(out, c), torch.sigmoid(out[:, c + 2:c + 3])
        frame = mask * warp(source, flow) + (1 - mask) * torch.sigmoid(draw)
        return to_logits(frame)
