"""Sprite geometry and rendering for the object model: walls, cutting windows out of frames, and placing
sprites on a canvas. Every operation is a differentiable bilinear resampling (``grid_sample``).

Positions of objects are kept in units of the free range of a box inside the canvas: 0 and 1 where the box
touches the walls. ``fold`` maps unfolded positions (where a bouncing object moves on a straight line) back
into that range.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

Walls = Literal["fold", "none"]
Composition = Literal["max", "over"]


def fold(u: torch.Tensor, walls: Walls = "fold") -> torch.Tensor:
    """Unfolded positions -> positions in the canvas. ``fold``: in [0, 1], as a ball bouncing between walls at
    0 and 1 (a triangle wave of period 2: the Moving MNIST generator's reflection). ``none``: unchanged (objects
    leave the canvas)."""
    if walls == "none":
        return u
    u = torch.remainder(u, 2.0)
    return torch.where(u > 1.0, 2.0 - u, u)


def unfold_near(pos: torch.Tensor, line: torch.Tensor, walls: Walls = "fold") -> torch.Tensor:
    """The unfolded copy of positions in [0, 1] (x + 2n or -x + 2n) nearest to ``line``, axis by axis; with
    ``walls=none``, the positions themselves."""
    if walls == "none":
        return torch.broadcast_tensors(pos, line)[0]
    up = pos + 2 * torch.round((line - pos) / 2)
    down = -pos + 2 * torch.round((line + pos) / 2)
    return torch.where((up - line).abs() <= (down - line).abs(), up, down)


def place(images: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Paste images (N, C, S, S) onto blank size x size canvases with their centres at ``centres`` (N, 2),
    (row, col) in pixels, by bilinear sampling (zeros outside the image): (N, C, size, size)."""
    s = images.shape[-1]
    pix = torch.arange(size, device=images.device, dtype=images.dtype)
    # canvas pixel (y, x) reads the image at (y - row + (S-1)/2, x - col + (S-1)/2); align_corners=True maps
    # image pixel i to 2 i / (S - 1) - 1
    ys = (pix.view(1, size) - centres[:, :1] + (s - 1) / 2) * (2 / (s - 1)) - 1  # (N, size)
    xs = (pix.view(1, size) - centres[:, 1:] + (s - 1) / 2) * (2 / (s - 1)) - 1
    grid = torch.stack([xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def render(sprites: torch.Tensor, centres: torch.Tensor, size: int, composition: Composition = "max"
           ) -> torch.Tensor:
    """Sprites (B, K, C, S, S) at centres (B, T, K, 2) -> frames (B, T, C, size, size) in [0, 1].

    ``max``: the objects combined with a pixel-wise maximum, as Moving MNIST combines its digits. ``over``:
    each object drawn over the ones after it (slot order), opaque where it is bright: its alpha is its
    brightest channel, and ``out = c_1 + (1 - a_1) (c_2 + (1 - a_2) (...))``."""
    b, t, k = centres.shape[:3]
    images = sprites[:, None].expand(-1, t, -1, -1, -1, -1).flatten(0, 2)  # (B*T*K, C, S, S)
    placed = place(images, centres.reshape(-1, 2), size).view(b, t, k, -1, size, size)
    if composition == "max":
        return placed.amax(2)
    out = placed[:, :, -1]
    for i in range(k - 2, -1, -1):  # back to front
        front = placed[:, :, i]
        out = front + (1 - front.amax(2, keepdim=True)) * out
    return out


def crop(frames: torch.Tensor, centres: torch.Tensor, side: int) -> torch.Tensor:
    """Cut side x side windows out of frames (N, C, H, W), K per frame, centred at ``centres`` (N, K, 2),
    (row, col) in pixels, by bilinear sampling (zeros outside the frame): (N, K, C, side, side). One sampling
    grid holds the K windows of a frame, so the frames are never copied per window."""
    n, k = centres.shape[:2]
    h, w = frames.shape[-2:]
    offs = torch.arange(side, device=frames.device, dtype=frames.dtype) - (side - 1) / 2
    ys = (centres[..., :1] + offs) * (2 / (h - 1)) - 1  # (N, K, side)
    xs = (centres[..., 1:] + offs) * (2 / (w - 1)) - 1
    grid = torch.stack([xs[:, :, None, :].expand(-1, -1, side, -1), ys[:, :, :, None].expand(-1, -1, -1, side)],
                       dim=-1).flatten(1, 2)  # (N, K * side, side, 2): the K windows stacked by rows
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.unflatten(2, (k, side)).transpose(1, 2)
