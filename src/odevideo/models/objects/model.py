"""The object latent ODE: a few objects, each a sprite copied from the context and a pose integrated in time.

    context frames --soft k-means of the bright pixels--> K detections per frame, in no order
    detections --K folded straight lines chosen among hypotheses--> tracks (no frame-to-frame identity)
    tracks --refined so the context windows cut along them agree--> z0 = (position, velocity) per object
    z0 --solve(dp/dt = v, dv/dt = 1e-3 force(p, v))--> z(t) --fold into the canvas--> centres at any time
    context frames --crop along each track, pool over frames--> a sprite per object
    sprites placed at the centres (a differentiable spatial transformer) --max over objects--> frames

What an object looks like never enters the ODE, so it cannot fade; only its pose moves. Walls: the pose is
integrated in unfolded coordinates, where Moving MNIST's motion is a straight line, and positions are folded
back into the canvas (a triangle wave) only to render, so a constant velocity bounces off the walls exactly
as the generator's digits do. The force starts at zero, so an untrained model moves every object at a
constant velocity; it is there to learn what constant velocity cannot explain. The encoder is not learned:
it is inference by fitting (detection, line fitting, analysis by synthesis), and the force is what training
learns. The learned heatmap encoder it replaced is in commit 574997f (docs/benchmarks.md).

It builds in Moving MNIST's rules, and says so: the object count (``slots``), rigid sprites, walls that fold
(``walls``) and max-composition (``composition``). Its pixel scales (the k-means spread, the inlier tolerance,
the refinement's step) were tuned on 28-pixel digits and scale with ``model.box``.

    tracking.py   detection and line fitting
    sprites.py    walls, cutting windows and placing sprites (rendering)
    model.py      the config, the pose field and the model
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from odevideo.errors import ConfigError
from odevideo.models.base import Generation, KindConfig, LatentView, VideoModel, to_logits
from odevideo.models.objects.sprites import Composition, Walls, crop, crop_blocks, fold, pad_frames, render
from odevideo.models.objects.tracking import detect, fit_tracks
from odevideo.ode import SolverConfig, integrate
from odevideo.options import check_choices, check_positive

FORCE_SCALE = 1e-3  # units of the force's output: a unit acceleration moves an object 1.8 pixels in 10 frames
# Pixel scales tuned on Moving MNIST's 28-pixel digits (model.box = 28), scaled in proportion to model.box:
REFERENCE_BOX = 28
KMEANS_SIGMA = 6.0  # the spread of a cluster in the soft k-means of detect()
TRACK_TOLERANCE = 3.0  # a detection this close to a track's line is an inlier
REFINE_LR = 0.3  # the step of the analysis-by-synthesis refinement (Adam, cosine to 0)


@dataclass
class ObjectsConfig(KindConfig):
    """The object latent ODE (``kind: objects``): a tracker that builds in Moving MNIST's rules.

    Attributes:
        kind: the model kind.
        slots: objects per video, K (the number of digits, or more: spare slots may track the same object).
        box: side in pixels of the box whose edges bounce off the frame's edges; on Moving MNIST it must equal
            ``data.digit_size`` (28). The tracker's pixel scales grow with it.
        sprite: side in pixels of the sprite copied for each object (at least ``box``).
        hidden: width of the force's hidden layer.
        refine_steps: steps of the analysis-by-synthesis refinement of each object's track (0: the tracks
            fitted to the detections are used as they are).
        refine_sharpness: how closely the refinement's soft minimum over the context windows follows the true
            minimum, per unit of intensity.
        track_gaps: a track hypothesis runs through detections 1, 2, ..., ``track_gaps`` frames apart.
        sprite_pool: how the windows cut from the context frames become one sprite: their ``mean``, or their
            pixel-wise ``min`` (another object passing by only ever adds intensity under a max composition,
            so the minimum removes it; it needs well-placed windows).
        track_temperature: how widely samples (``generate(..., sample=True)``, ``--samples K``) spread over
            the sets of tracks that explain the context, in detections left unexplained (see
            :func:`~odevideo.models.objects.tracking.choose_lines`); 0 makes the model deterministic. Training
            and plain generation always take the best tracks.
        walls: ``fold`` (objects bounce off the frame's edges, as Moving MNIST's digits do) or ``none``.
        composition: how objects combine: ``max`` (pixel-wise maximum, as Moving MNIST) or ``over`` (each slot
            drawn over the later ones, opaque where bright).
    """

    kind: Literal["objects"] = "objects"
    slots: int = 2
    box: int = 28
    sprite: int = 32
    hidden: int = 64
    refine_steps: int = 40
    refine_sharpness: float = 10.0
    track_gaps: int = 3
    sprite_pool: Literal["mean", "min"] = "mean"
    track_temperature: float = 1.0
    walls: Walls = "fold"
    composition: Composition = "max"

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "slots", "box", "sprite", "hidden", "refine_sharpness", "track_gaps")
        if self.refine_steps < 0:
            raise ConfigError(f"model.refine_steps must be >= 0, got {self.refine_steps}")
        if not self.track_temperature >= 0:
            raise ConfigError(f"model.track_temperature must be >= 0, got {self.track_temperature}")
        if self.sprite < self.box:
            raise ConfigError(f"model.sprite ({self.sprite}) must be at least model.box ({self.box})")

    def check_with(self, data: Any, train: Any) -> None:
        """Refuse a box that is not the data's object size, where the data has one (Moving MNIST's digits)."""
        size = data.object_size
        if size is not None and size != self.box:
            raise ConfigError(f"model.box ({self.box}) must equal the data's object size ({size}, "
                              "data.digit_size): set model.box to it")


class PoseField(nn.Module):
    """dz/dt of the object states z (B, K, 4) = (position (2), velocity (2)) in unfolded units:
    dp/dt = v and dv/dt = FORCE_SCALE * force(fold(p), v), one small MLP shared by the objects, whose last
    layer starts at zero (constant velocity until the data says otherwise). At full scale the force trained
    the model away from its good start (docs/benchmarks.md). Autonomous, like every field here."""

    def __init__(self, hidden: int, walls: Walls = "fold") -> None:
        super().__init__()
        self.walls = walls
        self.force = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        nn.init.zeros_(self.force[-1].weight)
        nn.init.zeros_(self.force[-1].bias)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        p, v = z[..., :2], z[..., 2:]
        return torch.cat([v, FORCE_SCALE * self.force(torch.cat([fold(p, self.walls), v], dim=-1))], dim=-1)


class ObjectODE(VideoModel):
    """Latent ODE over object poses, with sprites copied from the context (see the module docstring).

    Args:
        config: the layout (:class:`ObjectsConfig`).
        channels: image channels.
        size: frame side in pixels (frames are square).
        solver: options of the ODE solve.
    """

    def __init__(self, config: ObjectsConfig, *, channels: int, size: int, solver: SolverConfig) -> None:
        super().__init__(channels=channels, size=size)
        c = config
        if c.box >= size:
            raise ConfigError(f"model.box ({c.box}) must be smaller than the frame ({size})")
        self.config, self.solver = c, solver
        self.latent_shape = (c.slots, 4)
        self.field = PoseField(c.hidden, c.walls)
        scale = c.box / REFERENCE_BOX  # the pixel scales, in proportion to the box
        self.kmeans_sigma, self.track_tolerance, self.refine_lr = (KMEANS_SIGMA * scale, TRACK_TOLERANCE * scale,
                                                                   REFINE_LR * scale)

    # ---------------------------------------------------------------- geometry
    def fold(self, u: torch.Tensor) -> torch.Tensor:
        """Unfolded positions -> positions in the canvas, by the configured walls."""
        return fold(u, self.config.walls)

    def fold_slope(self, u: torch.Tensor) -> torch.Tensor:
        """d fold(u) / d u: +1 where the folded position moves with u, -1 where a wall has turned it back."""
        if self.config.walls == "none":
            return torch.ones_like(u)
        return torch.where(torch.remainder(u, 2.0) > 1.0, -1.0, 1.0).to(u)

    def to_pixels(self, f: torch.Tensor) -> torch.Tensor:
        """Positions in [0, 1] (the box's free range) -> the box centre in pixels."""
        return (self.config.box - 1) / 2 + f * (self.size - self.config.box)

    def from_pixels(self, centre: torch.Tensor) -> torch.Tensor:
        """The box centre in pixels -> positions in units of the free range (0 and 1 at the walls)."""
        return (centre - (self.config.box - 1) / 2) / (self.size - self.config.box)

    def centres(self, z_traj: torch.Tensor) -> torch.Tensor:
        """Object states (..., K, 4) -> the centres where they are drawn, (..., K, 2), (row, col) in pixels."""
        return self.to_pixels(self.fold(z_traj[..., :2]))

    def line(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Centres in pixels, (B, T, K, 2), of objects moving from z0 (B, K, 4) at constant velocity (folded at
        the walls), at times ``t`` (B, T) counted from t[:, :1]'s own start."""
        rel = (t - t[:, :1]).to(z0)[:, :, None, None]
        return self.to_pixels(self.fold(z0[:, None, :, :2] + z0[:, None, :, 2:] * rel))

    # ---------------------------------------------------------------- encoder
    def encode(self, frames: torch.Tensor, t_context: torch.Tensor, *, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """z0 (B, K, 4): each object's position and velocity at t_context[:, 0], in unfolded units.

        Detect K objects in every context frame (:func:`~odevideo.models.objects.tracking.detect`), fit K
        folded straight lines to the detections (:func:`~odevideo.models.objects.tracking.fit_tracks`; with
        ``sample``, drawn at ``track_temperature``), then refine each line so that the windows cut along it
        agree across the context frames (:meth:`refine`). Nothing here is learned, and nothing is
        differentiated through.
        """
        b, m = frames.shape[:2]
        c = self.config
        with torch.no_grad():
            found = detect(frames.flatten(0, 1), c.slots, c.box, self.kmeans_sigma).unflatten(0, (b, m))
            z0 = fit_tracks(self.from_pixels(found), t_context, self.track_tolerance / (self.size - c.box),
                            gaps=c.track_gaps, walls=c.walls, temperature=c.track_temperature if sample else 0.0,
                            generator=generator)
        return self.refine(frames, z0, t_context)

    def refine(self, frames: torch.Tensor, z0: torch.Tensor, t_context: torch.Tensor) -> torch.Tensor:
        """Analysis by synthesis: move each object's track so that the windows cut along it from the context
        frames agree, pixel by pixel, as a rigid sprite's would.

        The objective is the total over the window of a soft minimum over frames: an object's own pixels stay
        bright in every window only when the track follows it, while another object crossing one window adds
        nothing to a minimum. Each track is parametrised by its centres at the first and last context times
        (pixels, so both get the same step size), and moved by ``refine_steps`` Adam steps (``refine_lr``
        pixels, cosine to 0). On 2-digit Moving MNIST it halves the error at the tenth future frame. The
        gradient is computed in closed form (:meth:`window_gradient`) and Adam written out (:class:`_Adam`):
        the arithmetic of autograd and ``torch.optim.Adam`` without their bookkeeping, several times faster.
        """
        steps, m = self.config.refine_steps, t_context.shape[1]
        if steps == 0 or m < 2:
            return z0
        span = self.size - self.config.box
        rel = (t_context - t_context[:, :1]).to(z0)
        end = rel[:, -1:, None]  # (B, 1, 1)
        s = (rel / rel[:, -1:])[:, :, None, None]  # (B, M, 1, 1): 0 at the first context time, 1 at the last
        padded = pad_frames(frames.flatten(0, 1), self.config.sprite)  # (B*M, C, H', W')
        a = z0[..., :2].detach() * span
        e = (z0[..., :2] + z0[..., 2:] * end).detach() * span
        adam = _Adam((a, e), self.refine_lr, steps)
        for _ in range(steps):
            u = (a[:, None] + (e - a)[:, None] * s) / span  # (B, M, K, 2), unfolded
            centres, slope = self.to_pixels(self.fold(u)), self.fold_slope(u)
            g = self.window_gradient(padded, centres, m) * slope  # d objective / d (u * span), (B, M, K, 2)
            a, e = adam.step(((g * (1 - s)).sum(1), (g * s).sum(1)))
        a, e = a / span, e / span
        return torch.cat([a, (e - a) / end], dim=-1)

    def window_gradient(self, padded: torch.Tensor, centres: torch.Tensor, m: int) -> torch.Tensor:
        """The gradient of the refinement's objective (the soft minimum over the M context frames of the
        windows cut along each track, summed over the window) with respect to the centres (B, M, K, 2), in
        closed form: the windows are bilinear blends of whole-pixel blocks, so their derivative along each axis
        is a difference of neighbouring pixels, weighted by the soft minimum's weights."""
        sharp, side = self.config.refine_sharpness, self.config.sprite
        blocks, frac = crop_blocks(padded, centres.flatten(0, 1), side)  # (B*M, K, C, S+1, S+1), (B*M, K, 2)
        fy, fx = (frac[..., i, None, None, None] for i in (0, 1))
        rows = torch.lerp(blocks[..., :-1, :], blocks[..., 1:, :], fy)  # (B*M, K, C, S, S+1)
        windows = torch.lerp(rows[..., :-1], rows[..., 1:], fx)
        # d objective / d window = -softmax over the frames of -sharp * window (written out: faster than
        # softmax along a dimension that is not the last)
        logits = windows.unflatten(0, (-1, m)).mul(-sharp)
        weight = logits.sub_(logits.amax(1, keepdim=True)).exp_()
        weight = weight.div_(weight.sum(1, keepdim=True)).flatten(0, 1)
        down = blocks[..., 1:, :] - blocks[..., :-1, :]  # (B*M, K, C, S, S+1)
        d_row = torch.lerp(down[..., :-1], down[..., 1:], fx)
        d_col = rows[..., 1:] - rows[..., :-1]
        grad = -torch.stack([(weight * d_row).sum((2, 3, 4)), (weight * d_col).sum((2, 3, 4))], dim=-1)
        return grad.unflatten(0, (-1, m))  # (B, M, K, 2)

    def sprites(self, frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Each object's appearance, (B, K, C, S, S): the windows around its centres in the context frames
        (B, M, K, 2), pooled over the frames (``sprite_pool``)."""
        b, m = centres.shape[:2]
        windows = crop(frames.flatten(0, 1), centres.flatten(0, 1), self.config.sprite).unflatten(0, (b, m))
        return windows.mean(1) if self.config.sprite_pool == "mean" else windows.amin(1)

    def render(self, sprites: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Sprites (B, K, C, S, S) at centres (B, T, K, 2) -> frames (B, T, C, H, W), combined by
        ``composition`` (:func:`~odevideo.models.objects.sprites.render`)."""
        return render(sprites, centres, self.size, self.config.composition)

    # ---------------------------------------------------------------- the contract
    @property
    def stochastic(self) -> bool:
        """Whether samples draw the tracks (``model.track_temperature`` > 0)."""
        return self.config.track_temperature > 0

    def forward(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                sample: bool = False, generator: torch.Generator | None = None) -> Generation:
        """The contract's call (:meth:`odevideo.models.base.VideoModel.forward`). ``z_traj`` holds each
        object's unfolded position and velocity, (B, Tq, K, 4). With ``sample``, the tracks are drawn (see
        :class:`ObjectsConfig`'s ``track_temperature``) with ``generator``; otherwise they are the best ones."""
        t_context, t_query = (t.float() for t in self.check(context, t_context, t_query))
        # All in float32, even under bf16 autocast: a bf16 position is off by up to 0.1 pixel, and the model is
        # small enough that its convolutions cost little.
        with torch.autocast(context.device.type, enabled=False):
            frames = context.float()
            z0 = self.encode(frames, t_context, sample=sample, generator=generator)
            sol = integrate(self.field, z0, t_query, t_context[:, 0], self.solver)
            frame = self.render(self.sprites(frames, self.line(z0, t_context)), self.centres(sol.z))
            return Generation(logits=to_logits(frame), z_traj=sol.z, z0_mean=z0, nfe=sol.nfe)

    def latent_view(self, out: Generation) -> LatentView:
        """Each object's centre at each time, (B, T, K, 2), (row, col) in pixels."""
        assert out.z_traj is not None  # this model always returns its trajectory
        return LatentView(kind="tracks", points=self.centres(out.z_traj))


class _Adam:
    """Adam (PyTorch's defaults: betas 0.9 and 0.999, eps 1e-8) on a few tensors, with the learning rate on a
    cosine from ``lr`` to 0 over ``steps`` (``CosineAnnealingLR``), for gradients computed in closed form:
    the arithmetic of ``torch.optim.Adam``, without autograd's bookkeeping."""

    def __init__(self, params: tuple[torch.Tensor, ...], lr: float, steps: int) -> None:
        self.params, self.lr, self.steps, self.t = params, lr, steps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, grads: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        b1, b2, eps = 0.9, 0.999, 1e-8
        lr = self.lr * (1 + math.cos(math.pi * self.t / self.steps)) / 2
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            self.m[i] = self.m[i].lerp(g, 1 - b1)
            self.v[i] = self.v[i] * b2 + (1 - b2) * g * g
            denom = self.v[i].sqrt() / math.sqrt(1 - b2**self.t) + eps
            out.append(p - (lr / (1 - b1**self.t)) * self.m[i] / denom)
        self.params = tuple(out)
        return self.params
