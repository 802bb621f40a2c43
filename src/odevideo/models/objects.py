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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from odevideo.errors import ConfigError
from odevideo.models.inputs import check_inputs
from odevideo.models.output import Generation
from odevideo.ode import SolverConfig, solve
from odevideo.options import check_choices, check_positive

FORCE_SCALE = 1e-3  # units of the force's output: a unit acceleration moves an object 1.8 pixels in 10 frames
KMEANS_SIGMA = 6.0  # pixels: the spread of a cluster in the soft k-means of detect()
KMEANS_STEPS = 10
TRACK_TOLERANCE = 3.0  # pixels: a detection this close to a track's line is an inlier
TRACK_REFINE_STEPS = 3  # least-squares refinements of each track hypothesis
REFINE_LR = 0.3  # pixels per step of the analysis-by-synthesis refinement (Adam, cosine to 0)
SOFTMIN_TEMPERATURE = 10.0  # of the soft minimum over the context windows in the refinement's objective
EPS = 1e-4  # keeps rendered probabilities off 0 and 1 so their logits (and BCE gradients) stay finite


@dataclass
class ObjectsConfig:
    """The object latent ODE (``kind: objects``).

    Attributes:
        kind: the model kind.
        slots: objects per video, K (the number of digits, or more: spare slots may track the same object).
        box: side in pixels of the box whose edges bounce off the frame's edges (Moving MNIST's digits: 28).
        sprite: side in pixels of the sprite copied for each object (at least ``box``).
        hidden: width of the force's hidden layer.
        refine_steps: steps of the analysis-by-synthesis refinement of each object's track (0: the tracks
            fitted to the detections are used as they are).
        sprite_pool: how the windows cut from the context frames become one sprite: their ``mean``, or their
            pixel-wise ``min`` (another object passing by only ever adds intensity under a max composition,
            so the minimum removes it; it needs well-placed windows).
        track_temperature: how widely samples (``generate(..., sample=True)``, ``--samples K``) spread over
            the sets of tracks that explain the context, in detections left unexplained (see
            :func:`fit_tracks`); 0 makes the model deterministic. Training and plain generation always take the
            best tracks.
    """

    kind: Literal["objects"] = "objects"
    slots: int = 2
    box: int = 28
    sprite: int = 32
    hidden: int = 64
    refine_steps: int = 40
    sprite_pool: Literal["mean", "min"] = "mean"
    track_temperature: float = 1.0

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "slots", "box", "sprite", "hidden")
        if self.refine_steps < 0:
            raise ConfigError(f"model.refine_steps must be >= 0, got {self.refine_steps}")
        if not self.track_temperature >= 0:
            raise ConfigError(f"model.track_temperature must be >= 0, got {self.track_temperature}")
        if self.sprite < self.box:
            raise ConfigError(f"model.sprite ({self.sprite}) must be at least model.box ({self.box})")


def fold(u: torch.Tensor) -> torch.Tensor:
    """Unfolded positions -> positions in [0, 1], as a ball bouncing between walls at 0 and 1 (a triangle
    wave of period 2): the same reflection as the Moving MNIST generator's."""
    u = torch.remainder(u, 2.0)
    return torch.where(u > 1.0, 2.0 - u, u)


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


def box_peaks(x: torch.Tensor, k: int, box: int) -> torch.Tensor:
    """Intensity maps (N, H, W) -> the k brightest box-sized regions, (N, k, 2), (row, col) in whole pixels:
    peaks of the mass inside a box around each pixel, each peak's neighbourhood (half a box each way) left out
    before the next is taken."""
    n, h, w = x.shape
    side = box - 1 + box % 2  # odd, so the box sum of each pixel sits on that pixel
    mass = F.avg_pool2d(x[:, None], (side, 1), stride=1, padding=(side // 2, 0))  # separable: rows, then columns
    mass = F.avg_pool2d(mass, (1, side), stride=1, padding=(0, side // 2)).flatten(1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    found = []
    for _ in range(k):
        index = mass.argmax(1)
        r, c = (index // w).view(n, 1, 1), (index % w).view(n, 1, 1)
        found.append(torch.cat([r, c], dim=1).view(n, 2))
        near = ((rows - r).abs() <= box // 2) & ((cols - c).abs() <= box // 2)
        mass = mass.masked_fill(near.flatten(1), float("-inf"))
    return torch.stack(found, dim=1).to(x.dtype)


def detect(frames: torch.Tensor, k: int, box: int) -> torch.Tensor:
    """Frames (N, C, H, W) -> k object centres per frame, (N, k, 2), (row, col) in pixels, in no order.

    The intensity of the frame is split between k clusters by soft k-means over pixel coordinates, weighted
    by intensity, started from the k brightest box-sized regions (:func:`box_peaks`). Clustering follows
    two objects closer than a box far better than a window around each peak (which takes in the other
    object): on 2-digit Moving MNIST the median error per digit is 1.0 pixel against 3.8. It runs at half
    resolution, at little cost in accuracy. Objects must be brighter than the background.
    """
    x = frames.mean(1)
    centres = box_peaks(x, k, box)
    down = 2 if x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0 else 1
    x = F.avg_pool2d(x[:, None], down)[:, 0]
    h, w = x.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                                torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    pix = torch.stack([rows.flatten(), cols.flatten()], dim=-1) * down + (down - 1) / 2  # (HW, 2) in pixels
    mass = x.flatten(1)[..., None]  # (N, HW, 1)
    for _ in range(KMEANS_STEPS):
        # log of a Gaussian of each pixel's distance to each centre, less the terms common to all centres
        logits = (pix @ centres.transpose(1, 2) - 0.5 * centres.pow(2).sum(-1)[:, None]) / KMEANS_SIGMA**2
        weights = logits.softmax(-1) * mass  # (N, HW, k)
        centres = (weights.transpose(1, 2) @ pix) / weights.sum(1)[..., None].clamp_min(1e-6)
    return centres


def _unfold_near(pos: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
    """The unfolded copy of positions in [0, 1] (x + 2n or -x + 2n) nearest to ``line``, axis by axis."""
    up = pos + 2 * torch.round((line - pos) / 2)
    down = -pos + 2 * torch.round((line + pos) / 2)
    return torch.where((up - line).abs() <= (down - line).abs(), up, down)


def fit_tracks(pos: torch.Tensor, t: torch.Tensor, tolerance: float, *, temperature: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The K folded straight lines that best explain K unordered detections per frame.

    Hypotheses: a line through a detection in frame a and one in frame a + s (s = 1, 2, 3), for every pair.
    Each is refined a few times by least squares: in every frame the detection nearest the line (unfolded to
    its nearest copy, so that bounces fold away) is an inlier if within ``tolerance``, and a line is fitted
    through the inliers. Then K lines are chosen greedily, each the one that explains most of what the lines
    chosen before it leave unexplained (every detection costs its squared distance to the nearest chosen line,
    capped at tolerance squared). No track is ever followed frame to frame, so no identity can swap where two
    objects cross, and a detection merged from two overlapping objects is one outlier among many frames.

    With a ``temperature`` T > 0 each line is drawn instead of chosen: hypothesis h with probability
    proportional to exp(-cost(h) / (T tolerance^2)), a cost counted in detections left unexplained. Where two
    objects overlap through much of the context several sets of lines explain the detections almost equally
    well, and draws spread over them.

    Args:
        pos: detections, (B, M, K, 2), in units of the free range (0 and 1 at the walls), in any order.
        t: their times, (B, M).
        tolerance: inlier distance, in the same units.
        temperature: 0 chooses the best line each time; T > 0 draws lines as above.
        generator: RNG of the draws.

    Returns:
        z0 = (position, velocity) of K objects at t[:, 0], (B, K, 4), in unfolded units.
    """
    b, m, k, _ = pos.shape
    rel = (t - t[:, :1]).to(pos)  # (B, M)
    if m < 2:
        return torch.cat([pos[:, 0], torch.zeros_like(pos[:, 0])], dim=-1)
    pairs = [(a, a + s) for s in (1, 2, 3) for a in range(m - s)]
    first = torch.tensor([a for a, _ in pairs], device=pos.device)
    last = torch.tensor([c for _, c in pairs], device=pos.device)
    # every (pair of frames, detection in the first, detection in the second): (B, H, 2), H = pairs * K * K
    p_a = pos[:, first][:, :, :, None].expand(-1, -1, -1, k, -1).flatten(1, 3)
    p_b = pos[:, last][:, :, None].expand(-1, -1, k, -1, -1).flatten(1, 3)
    t_a = rel[:, first].repeat_interleave(k * k, dim=1)[..., None]
    t_b = rel[:, last].repeat_interleave(k * k, dim=1)[..., None]
    velocity = (p_b - p_a) / (t_b - t_a)
    start = p_a - velocity * t_a
    r = rel[:, None, :, None]  # (B, 1, M, 1)
    for step in range(TRACK_REFINE_STEPS + 1):
        line = start[:, :, None] + velocity[:, :, None] * r  # (B, H, M, 2)
        unfolded = _unfold_near(pos[:, None], line[:, :, :, None])  # (B, H, M, K, 2)
        dist2 = (unfolded - line[:, :, :, None]).pow(2).sum(-1)  # (B, H, M, K)
        if step == TRACK_REFINE_STEPS:
            break
        near, which = dist2.min(-1)  # (B, H, M)
        u = torch.gather(unfolded, 3, which[..., None, None].expand(-1, -1, -1, 1, 2))[:, :, :, 0]  # (B, H, M, 2)
        w = (near < tolerance**2).to(pos)
        n = w.sum(-1, keepdim=True)
        mean_t = (w * r[..., 0]).sum(-1, keepdim=True) / n.clamp_min(1)
        mean_u = (w[..., None] * u).sum(2) / n.clamp_min(1)
        var_t = (w * (r[..., 0] - mean_t) ** 2).sum(-1, keepdim=True)
        cov = (w[..., None] * (r[..., 0] - mean_t)[..., None] * (u - mean_u[:, :, None])).sum(2)
        ok = (n >= 3) & (var_t > 1e-9)  # too few inliers: keep the hypothesis as it is
        velocity = torch.where(ok, cov / var_t.clamp_min(1e-9), velocity)
        start = torch.where(ok, mean_u - velocity * mean_t, start)
    cost = dist2.clamp_max(tolerance**2)  # (B, H, M, K)
    left = torch.full((b, m, k), tolerance**2, device=pos.device, dtype=pos.dtype)
    chosen = []
    for _ in range(k):
        total = torch.minimum(left[:, None], cost).sum((2, 3))  # (B, H)
        if temperature > 0:
            weights = torch.softmax(-total / (temperature * tolerance**2), dim=1)
            best = torch.multinomial(weights, 1, generator=generator)[:, 0]
        else:
            best = total.argmin(1)  # (B,)
        chosen.append(best)
        left = torch.minimum(left, cost[torch.arange(b, device=pos.device), best])
    index = torch.stack(chosen, dim=1)[..., None].expand(-1, -1, 2)  # (B, K, 2)
    return torch.cat([start.gather(1, index), velocity.gather(1, index)], dim=-1)


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
        if c.box >= size:
            raise ConfigError(f"model.box ({c.box}) must be smaller than the frame ({size})")
        self.config, self.channels, self.size, self.solver = c, channels, size, solver
        self.latent_shape = (c.slots, 4)
        self.field = PoseField(c.hidden)

    # ---------------------------------------------------------------- geometry
    def to_pixels(self, f: torch.Tensor) -> torch.Tensor:
        """Positions in [0, 1] (the box's free range) -> the box centre in pixels."""
        return (self.config.box - 1) / 2 + f * (self.size - self.config.box)

    def from_pixels(self, centre: torch.Tensor) -> torch.Tensor:
        """The box centre in pixels -> positions in units of the free range (0 and 1 at the walls)."""
        return (centre - (self.config.box - 1) / 2) / (self.size - self.config.box)

    def centres(self, z_traj: torch.Tensor) -> torch.Tensor:
        """Object states (..., K, 4) -> the centres where they are drawn, (..., K, 2), (row, col) in pixels."""
        return self.to_pixels(fold(z_traj[..., :2]))

    def line(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Centres in pixels, (B, T, K, 2), of objects moving from z0 (B, K, 4) at constant velocity (folded at
        the walls), at times ``t`` (B, T) counted from t[:, :1]'s own start."""
        rel = (t - t[:, :1]).to(z0)[:, :, None, None]
        return self.to_pixels(fold(z0[:, None, :, :2] + z0[:, None, :, 2:] * rel))

    # ---------------------------------------------------------------- encoder
    def encode(self, frames: torch.Tensor, t_context: torch.Tensor, *, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """z0 (B, K, 4): each object's position and velocity at t_context[:, 0], in unfolded units.

        Detect K objects in every context frame (:func:`detect`), fit K folded straight lines to the
        detections (:func:`fit_tracks`; with ``sample``, drawn at ``track_temperature``), then refine each line
        so that the windows cut along it agree across the context frames (:meth:`refine`). Nothing here is
        learned, and nothing is differentiated through.
        """
        b, m = frames.shape[:2]
        with torch.no_grad():
            found = detect(frames.flatten(0, 1), self.config.slots, self.config.box).unflatten(0, (b, m))
            tolerance = TRACK_TOLERANCE / (self.size - self.config.box)
            temperature = self.config.track_temperature if sample else 0.0
            z0 = fit_tracks(self.from_pixels(found), t_context, tolerance, temperature=temperature,
                            generator=generator)
        return self.refine(frames, z0, t_context)

    def refine(self, frames: torch.Tensor, z0: torch.Tensor, t_context: torch.Tensor) -> torch.Tensor:
        """Analysis by synthesis: move each object's track so that the windows cut along it from the context
        frames agree, pixel by pixel, as a rigid sprite's would.

        The objective is the total over the window of a soft minimum over frames: an object's own pixels stay
        bright in every window only when the track follows it, while another object crossing one window adds
        nothing to a minimum. Each track is parametrised by its centres at the first and last context times
        (pixels, so both get the same step size), and moved by ``refine_steps`` Adam steps (``REFINE_LR``
        pixels, cosine to 0). On 2-digit Moving MNIST it halves the error at the tenth future frame.
        """
        steps, m = self.config.refine_steps, t_context.shape[1]
        if steps == 0 or m < 2:
            return z0
        span = self.size - self.config.box
        side = self.config.sprite
        # autograd of its own, even under torch.inference_mode (generation) or inside a training step; tensors
        # made under inference mode must be cloned outside it before autograd may record them
        with torch.inference_mode(False), torch.enable_grad():
            rel = (t_context - t_context[:, :1]).to(z0).clone()
            end = rel[:, -1:, None]  # (B, 1, 1)
            s = (rel / rel[:, -1:])[:, :, None, None]  # (B, M, 1, 1): 0 at the first context time, 1 at the last
            flat = frames.detach().flatten(0, 1).clone()  # (B*M, C, H, W)
            a = (z0[..., :2] * span).detach().clone().requires_grad_(True)
            e = ((z0[..., :2] + z0[..., 2:] * end) * span).detach().clone().requires_grad_(True)
            opt = torch.optim.Adam([a, e], lr=REFINE_LR)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            for _ in range(steps):
                centres = self.to_pixels(fold((a[:, None] + (e - a)[:, None] * s) / span))  # (B, M, K, 2)
                windows = crop(flat, centres.flatten(0, 1), side).unflatten(0, (-1, m))  # (B, M, K, C, S, S)
                loss = (torch.logsumexp(-SOFTMIN_TEMPERATURE * windows, dim=1) / SOFTMIN_TEMPERATURE).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                schedule.step()
            a, e = a.detach() / span, e.detach() / span
        return torch.cat([a, (e - a) / end], dim=-1).clone()

    def sprites(self, frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Each object's appearance, (B, K, C, S, S): the windows around its centres in the context frames
        (B, M, K, 2), pooled over the frames (``sprite_pool``)."""
        b, m = centres.shape[:2]
        windows = crop(frames.flatten(0, 1), centres.flatten(0, 1), self.config.sprite).unflatten(0, (b, m))
        return windows.mean(1) if self.config.sprite_pool == "mean" else windows.amin(1)

    def render(self, sprites: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Sprites (B, K, C, S, S) at centres (B, T, K, 2) -> frames (B, T, C, H, W): see :func:`render`."""
        return render(sprites, centres, self.size)

    # ---------------------------------------------------------------- forward
    @property
    def stochastic(self) -> bool:
        """Whether samples draw the tracks (``model.track_temperature`` > 0)."""
        return self.config.track_temperature > 0

    def forward(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                generator: torch.Generator | None = None, sample: bool = False) -> Generation:
        """Frames at ``t_query`` from context ``frames`` (B, M, C, H, W) observed at ``t_context``; the same
        contract as :meth:`odevideo.models.latent_ode.LatentODE.forward`. ``z_traj`` holds each object's
        unfolded position and velocity, (B, Tq, K, 4). With ``sample``, the tracks are drawn (see
        :class:`ObjectsConfig`'s ``track_temperature``) with ``generator``; otherwise they are the best ones."""
        t_context, t_query = check_inputs(frames, t_context, t_query, channels=self.channels, size=self.size)
        t_context, t_query = t_context.float(), t_query.float()
        # All in float32, even under bf16 autocast: a bf16 position is off by up to 0.1 pixel, and the model is
        # small enough that its convolutions cost little.
        with torch.autocast(frames.device.type, enabled=False):
            frames = frames.float()
            z0 = self.encode(frames, t_context, sample=sample, generator=generator)
            sol = solve(self.field, z0, t_query, t0=t_context[:, 0], **vars(self.solver))
            frame = self.render(self.sprites(frames, self.line(z0, t_context)), self.centres(sol.z))
            logits = torch.logit(EPS + (1 - 2 * EPS) * frame)
        return Generation(logits=logits, z_traj=sol.z, z0_mean=z0, z0_logvar=None, nfe=sol.nfe)
