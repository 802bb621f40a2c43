"""The object latent ODE: a few objects, each a sprite copied from the context and a pose integrated in time.

    context frames --encoder + brightness--> K heatmaps per frame --soft-argmax--> observed centres (B, M, K, 2)
    observed centres --fit a folded straight line--> z0 = (position, velocity) of each object at t_context[0]
    z0 --solve(dp/dt = v, dv/dt = 1e-3 force(p, v))--> z(t) --fold into the canvas--> centres at any time
    context frames --crop at the observed centres, pool over frames--> a sprite per object
    sprites placed at the centres (a differentiable spatial transformer) --max over objects--> frames

What an object looks like never enters the ODE, so it cannot fade; only its pose moves. Walls: the pose is
integrated in unfolded coordinates, where Moving MNIST's motion is a straight line, and positions are folded
back into the canvas (a triangle wave) only to render, so a constant velocity bounces off the walls exactly
as the generator's digits do. The force starts at zero, so an untrained model moves every object at a
constant velocity; it is there to learn what constant velocity cannot explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import ConfigError
from odevideo.models.encoder import ConvEncoder
from odevideo.models.inputs import check_inputs
from odevideo.models.output import Generation
from odevideo.ode import SolverConfig, solve
from odevideo.options import check_choices, check_positive

FORCE_SCALE = 1e-3  # units of the force's output: a unit acceleration moves an object 1.8 pixels in 10 frames
REFINE_STEPS = 3  # least-squares refinements of the fitted motion
EPS = 1e-4  # keeps rendered probabilities off 0 and 1 so their logits (and BCE gradients) stay finite


@dataclass
class ObjectsConfig:
    """The object latent ODE (``kind: objects``).

    Attributes:
        kind: the model kind.
        slots: objects per video, K (the number of digits, or more: spare slots may track the same object).
        box: side in pixels of the box whose edges bounce off the frame's edges (Moving MNIST's digits: 28).
        sprite: side in pixels of the sprite copied for each object (at least ``box``).
        patch: space-to-depth factor of the heatmap encoder (its maps are ``size / patch`` on a side, then
            repeated to full resolution).
        width: channels of the heatmap encoder.
        depth: convolution blocks of the heatmap encoder.
        hidden: width of the force's hidden layer.
        sprite_pool: how the windows cut from the context frames become one sprite: their ``mean``, or their
            pixel-wise ``min`` (another object passing by only ever adds intensity under a max composition,
            so the minimum removes it; it needs well-placed windows).
    """

    kind: Literal["objects"] = "objects"
    slots: int = 2
    box: int = 28
    sprite: int = 32
    patch: int = 2
    width: int = 16
    depth: int = 2
    hidden: int = 64
    sprite_pool: Literal["mean", "min"] = "mean"

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "slots", "box", "sprite", "patch", "width", "depth", "hidden")
        if self.sprite < self.box:
            raise ConfigError(f"model.sprite ({self.sprite}) must be at least model.box ({self.box})")


def fold(u: torch.Tensor) -> torch.Tensor:
    """Unfolded positions -> positions in [0, 1], as a ball bouncing between walls at 0 and 1 (a triangle
    wave of period 2): the same reflection as the Moving MNIST generator's."""
    u = torch.remainder(u, 2.0)
    return torch.where(u > 1.0, 2.0 - u, u)


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Heatmap logits (N, K, h, w) -> the expected (row, col) of each softmax-normalised map, (N, K, 2), in
    units of map cells (cell centres at 0, 1, ...)."""
    n, k, h, w = logits.shape
    p = logits.flatten(2).softmax(-1).view(n, k, h, w)
    rows = torch.arange(h, device=logits.device, dtype=p.dtype)
    cols = torch.arange(w, device=logits.device, dtype=p.dtype)
    return torch.stack([(p.sum(3) * rows).sum(-1), (p.sum(2) * cols).sum(-1)], dim=-1)


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


def render(sprites: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Sprites (B, K, C, S, S) at centres (B, T, K, 2) -> frames (B, T, C, size, size) in [0, 1]: the objects
    combined with a pixel-wise max, as Moving MNIST combines its digits."""
    b, t, k = centres.shape[:3]
    images = sprites[:, None].expand(-1, t, -1, -1, -1, -1).flatten(0, 2)  # (B*T*K, C, S, S)
    return place(images, centres.reshape(-1, 2), size).view(b, t, k, -1, size, size).amax(2)


def crop(frames: torch.Tensor, centres: torch.Tensor, side: int) -> torch.Tensor:
    """Cut side x side windows out of frames (N, C, H, W) centred at ``centres`` (N, 2), (row, col) in pixels,
    by bilinear sampling (zeros outside the frame): (N, C, side, side)."""
    n, _, h, w = frames.shape
    offs = torch.arange(side, device=frames.device, dtype=frames.dtype) - (side - 1) / 2
    ys = (centres[:, :1] + offs) * (2 / (h - 1)) - 1  # (N, side)
    xs = (centres[:, 1:] + offs) * (2 / (w - 1)) - 1
    grid = torch.stack([xs[:, None, :].expand(-1, side, -1), ys[:, :, None].expand(-1, -1, side)], dim=-1)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def fit_motion(pos: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The constant-velocity motion, folded at the walls, that best explains observed positions.

    Each axis of each object moves independently. A first guess: its speed is the median over the context
    intervals of |change in position| / time gap (an interval with a bounce in it looks slower, so the median
    ignores the few that have one), its start is the first observed position, and its direction is the sign
    whose folded straight line, fold(start + sign * speed * (t - t0)), lies closer to all the observations.
    Then a few least-squares refinements: each observation is unfolded to the copy nearest the current line,
    and a straight line is fitted through them. Differentiable in the observations.

    Args:
        pos: observed positions, (B, M, K, 2), in units of the free range (0 and 1 at the walls).
        t: their times, (B, M).

    Returns:
        z0 = (position, velocity) at t[:, 0], (B, K, 4), in unfolded units.
    """
    b, m = t.shape
    start = pos[:, 0]
    if m < 2:
        return torch.cat([start, torch.zeros_like(start)], dim=-1)
    dt = (t[:, 1:] - t[:, :-1])[:, :, None, None].to(pos)  # (B, M-1, 1, 1)
    speed = ((pos[:, 1:] - pos[:, :-1]).abs() / dt).median(dim=1).values  # (B, K, 2)
    rel = (t - t[:, :1])[:, :, None, None].to(pos)  # (B, M, 1, 1)
    errors = [(fold(start[:, None] + sign * speed[:, None] * rel) - pos).pow(2).sum(1) for sign in (1.0, -1.0)]
    start, velocity = start, torch.where(errors[0] <= errors[1], 1.0, -1.0) * speed
    # Refine by least squares: unfold each observation to the copy (x + 2n or -x + 2n) nearest the current
    # line, then fit a straight line through them. This also undoes the bias of the median of whole-pixel
    # steps (a digit moving 2.85 pixels a frame is drawn moving 3, 3, 3, 2, ...).
    mean_t = rel.mean(1, keepdim=True)
    var_t = (rel - mean_t).pow(2).mean(1, keepdim=True).clamp_min(1e-12)
    for _ in range(REFINE_STEPS):
        line = start[:, None] + velocity[:, None] * rel  # (B, M, K, 2)
        up = pos + 2 * torch.round((line - pos) / 2)
        down = -pos + 2 * torch.round((line + pos) / 2)
        unfolded = torch.where((up - line).abs() <= (down - line).abs(), up, down)
        mean_u = unfolded.mean(1, keepdim=True)
        velocity = (((rel - mean_t) * (unfolded - mean_u)).mean(1, keepdim=True) / var_t)[:, 0]
        start = (mean_u - velocity[:, None] * mean_t)[:, 0]
    return torch.cat([start, velocity], dim=-1)


class PoseField(nn.Module):
    """dz/dt of the object states z (B, K, 4) = (position (2), velocity (2)) in unfolded units:
    dp/dt = v and dv/dt = FORCE_SCALE * force(fold(p), v), one small MLP shared by the objects, whose last
    layer starts at zero (constant velocity until the data says otherwise). At full scale the force trained
    the model away from its good start (docs/benchmarks.md). Autonomous, like every field here."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.force = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        nn.init.zeros_(self.force[-1].weight)
        nn.init.zeros_(self.force[-1].bias)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        p, v = z[..., :2], z[..., 2:]
        return torch.cat([v, FORCE_SCALE * self.force(torch.cat([fold(p), v], dim=-1))], dim=-1)


class ObjectODE(nn.Module):
    """Latent ODE over object poses, with sprites copied from the context (see the module docstring).

    Args:
        config: the layout (:class:`ObjectsConfig`).
        channels: image channels.
        size: frame side in pixels (frames are square).
        solver: options of the ODE solve.
    """

    def __init__(self, config: ObjectsConfig, *, channels: int, size: int, solver: SolverConfig) -> None:
        super().__init__()
        c = config
        if size % c.patch:
            raise ConfigError(f"frame size {size} must be divisible by model.patch {c.patch}")
        if c.box >= size:
            raise ConfigError(f"model.box ({c.box}) must be smaller than the frame ({size})")
        self.config, self.channels, self.size, self.solver = c, channels, size, solver
        self.latent_shape = (c.slots, 4)
        self.encoder = ConvEncoder(channels, c.width, c.patch, c.depth, 0)
        self.heatmaps = nn.Conv2d(c.width, c.slots, 1)
        # The heatmaps start out drawn to bright pixels (their logits get the frame's intensity times this
        # learnable weight), so soft-argmax starts near the objects instead of at the centre: one batch of
        # 1-digit sequences overfits to a loss of 0.0033 instead of 0.0096 in 150 steps.
        self.brightness = nn.Parameter(torch.tensor(10.0))
        self.field = PoseField(c.hidden)

    # ---------------------------------------------------------------- geometry
    def to_pixels(self, f: torch.Tensor) -> torch.Tensor:
        """Positions in [0, 1] (the box's free range) -> the box centre in pixels."""
        return (self.config.box - 1) / 2 + f * (self.size - self.config.box)

    def from_pixels(self, centre: torch.Tensor) -> torch.Tensor:
        """The box centre in pixels -> positions in units of the free range (0 and 1 at the walls)."""
        return (centre - (self.config.box - 1) / 2) / (self.size - self.config.box)

    def observe(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, M, C, H, W) -> each object's centre in each frame, (B, M, K, 2), (row, col) in pixels."""
        b, m = frames.shape[:2]
        x = frames.flatten(0, 1)
        learned = F.interpolate(self.heatmaps(self.encoder(x)), scale_factor=self.config.patch, mode="nearest")
        # at full resolution: soft-argmax of the brightness follows an object pixel for pixel as it moves
        maps = learned + self.brightness * x.mean(1, keepdim=True)  # (B*M, K, H, W)
        return soft_argmax(maps).unflatten(0, (b, m))

    def sprites(self, frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Each object's appearance, (B, K, C, S, S): the windows around its observed centres, pooled over the
        context frames (``sprite_pool``)."""
        b, m, k = centres.shape[:3]
        s = self.config.sprite
        flat = frames[:, :, None].expand(-1, -1, k, -1, -1, -1).flatten(0, 2)  # (B*M*K, C, H, W)
        windows = crop(flat, centres.reshape(-1, 2), s).view(b, m, k, -1, s, s)
        return windows.mean(1) if self.config.sprite_pool == "mean" else windows.amin(1)

    def render(self, sprites: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Sprites (B, K, C, S, S) at centres (B, T, K, 2) -> frames (B, T, C, H, W): see :func:`render`."""
        return render(sprites, centres, self.size)

    # ---------------------------------------------------------------- forward
    def encode(self, frames: torch.Tensor, t_context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z0 (B, K, 4), position and velocity at the first context time in unfolded units, fitted to the
        observed centres, and those centres (B, M, K, 2) in pixels (see :func:`fit_motion`)."""
        centres = self.observe(frames)
        return fit_motion(self.from_pixels(centres), t_context), centres

    def forward(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                generator: torch.Generator | None = None) -> Generation:
        """Frames at ``t_query`` from context ``frames`` (B, M, C, H, W) observed at ``t_context``; the same
        contract as :meth:`odevideo.models.latent_ode.LatentODE.forward`. ``z_traj`` holds each object's
        unfolded position and velocity, (B, Tq, K, 4)."""
        t_context, t_query = check_inputs(frames, t_context, t_query, channels=self.channels, size=self.size)
        t_context, t_query = t_context.float(), t_query.float()
        # All in float32, even under bf16 autocast: a bf16 position is off by up to 0.1 pixel, and the model is
        # small enough that its convolutions cost little.
        with torch.autocast(frames.device.type, enabled=False):
            frames = frames.float()
            z0, centres = self.encode(frames, t_context)
            sol = solve(self.field, z0, t_query, t0=t_context[:, 0], **vars(self.solver))
            frame = self.render(self.sprites(frames, centres), self.centres(sol.z))
            logits = torch.logit(EPS + (1 - 2 * EPS) * frame)
        return Generation(logits=logits, z_traj=sol.z, z0_mean=z0, z0_logvar=None, nfe=sol.nfe)

    def centres(self, z_traj: torch.Tensor) -> torch.Tensor:
        """Object states (..., K, 4) -> the centres where they are drawn, (..., K, 2), (row, col) in pixels."""
        return self.to_pixels(fold(z_traj[..., :2]))
