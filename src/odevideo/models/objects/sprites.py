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


def pad_frames(frames: torch.Tensor, side: int) -> torch.Tensor:
    """Frames (N, C, H, W) with a border of zeros wide enough for any ``side`` window (:func:`crop_blocks`)."""
    pad = side + 1
    return F.pad(frames.detach(), (pad, pad, pad, pad))


def crop_blocks(padded: torch.Tensor, centres: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole-pixel blocks that ``side`` x ``side`` windows centred at ``centres`` (N, K, 2) interpolate,
    (N, K, C, side + 1, side + 1), and the fractional offsets (N, K, 2) of the windows' pixels from the blocks'
    (row, col), in frames padded by :func:`pad_frames`: every pixel of a window sits at the same fraction
    between whole pixels, so bilinear sampling is a gather of whole pixels and two blends (:func:`blend`).
    Pixels outside the frame are zeros. The offsets carry gradients to ``centres``; the blocks do not."""
    n, k = centres.shape[:2]
    c, hp, wp = padded.shape[1:]
    pad = side + 1
    start = centres - (side - 1) / 2  # the window's first pixel, (row, col) in the frame
    whole = start.detach().floor()
    frac = start - whole
    # clamped so that a window far outside the frame reads only padding
    top = (whole[..., 0].long() + pad).clamp(0, hp - pad)
    left = (whole[..., 1].long() + pad).clamp(0, wp - pad)
    offs = torch.arange(side + 1, device=padded.device)
    index = ((top[..., None, None] + offs[:, None]) * wp + left[..., None, None] + offs).flatten(1)  # (N, K*(S+1)^2)
    blocks = padded.flatten(2).gather(2, index[:, None].expand(-1, c, -1)).view(n, c, k, side + 1, side + 1)
    return blocks.transpose(1, 2), frac


def blend(blocks: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Windows (N, K, C, S, S) from :func:`crop_blocks`' blocks and offsets: bilinear, rows then columns."""
    fy, fx = (frac[..., i, None, None, None] for i in (0, 1))
    rows = torch.lerp(blocks[..., :-1, :], blocks[..., 1:, :], fy)
    return torch.lerp(rows[..., :-1], rows[..., 1:], fx)


def crop(frames: torch.Tensor, centres: torch.Tensor, side: int) -> torch.Tensor:
    """Cut side x side windows out of frames (N, C, H, W), K per frame, centred at ``centres`` (N, K, 2),
    (row, col) in pixels, by bilinear sampling (zeros outside the frame): (N, K, C, side, side).
    Differentiable with respect to ``centres`` (not ``frames``)."""
    return blend(*crop_blocks(pad_frames(frames, side), centres, side))
