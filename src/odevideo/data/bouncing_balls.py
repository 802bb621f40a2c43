"""Bouncing balls (Sutskever, Hinton and Taylor, 2009), the physics benchmark of latent-dynamics papers.

Balls of one radius and one mass move on straight lines in the unit square and collide elastically with the
walls and with each other. The motion is simulated event by event: the next collision (ball-wall or
ball-ball) is found in closed form, everything advances to it, and the velocities change there. Between events
motion is exact, so a ball's position, and hence a frame, is exact at any real time.

A sequence is a pure function of ``(seed, split, index)``: its start comes from
``numpy.random.default_rng([seed, split, index])``. Frames are anti-aliased discs (grey, or one colour per
ball with 3 channels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from odevideo.data.clips import ClipsConfig, as_float_frames
from odevideo.errors import ConfigError, DataError
from odevideo.options import check_positive

STREAMS = {"train": 0, "val": 1, "test": 2}
PALETTE = np.array([[230, 60, 50], [60, 180, 75], [65, 105, 225], [255, 200, 40], [170, 70, 200],
                    [70, 200, 220], [250, 130, 40], [240, 240, 240]], np.float32) / 255.0
EPS = 1e-12


@dataclass
class BouncingBallsConfig(ClipsConfig):
    """Bouncing balls (``kind: bouncing_balls``): the usual setting is 3 balls in 32x32 frames.

    Attributes:
        balls: balls per sequence.
        radius: ball radius as a fraction of the frame side.
        speed: distance each ball travels per frame, as a fraction of the frame side (collisions between
            equal masses keep the total energy, not each ball's speed).
        colour: ``false``: grey frames (1 channel); ``true``: RGB, each ball its own colour.
    """

    kind: Literal["bouncing_balls"] = "bouncing_balls"
    size: int = 32
    balls: int = 3
    radius: float = 0.1
    speed: float = 0.05
    colour: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "data", "balls", "radius", "speed")
        if self.balls > len(PALETTE):
            raise ConfigError(f"data.balls must be at most {len(PALETTE)}, got {self.balls}")
        if not free_fraction(self.balls, self.radius) > 0.5:
            raise ConfigError(f"{self.balls} balls of radius {self.radius} leave too little room to move: "
                              "use fewer or smaller balls")

    @property
    def channels(self) -> int:
        return 3 if self.colour else 1

    def open(self, split: str, progress: bool = False) -> BouncingBalls:
        """The generator of one split (rendered on demand: nothing to show progress for)."""
        return BouncingBalls(split, balls=self.balls, radius=self.radius, speed=self.speed, size=self.size,
                             n_frames=self.n_frames, colour=self.colour, seed=self.seed)


def free_fraction(balls: int, radius: float) -> float:
    """The share of the unit square the balls' discs leave uncovered."""
    return 1.0 - balls * math.pi * radius**2


def simulate(pos: np.ndarray, vel: np.ndarray, radius: float, t_end: float) -> tuple[np.ndarray, ...]:
    """Elastic motion of equal balls in the unit square, from time 0 to ``t_end``.

    Args:
        pos, vel: (K, 2) centres (inside [radius, 1 - radius], not overlapping) and velocities (per frame).

    Returns:
        ``times`` (E,), ``positions`` (E, K, 2) and ``velocities`` (E, K, 2): the state just after each event,
        the first at time 0; between events every ball moves on a straight line.
    """
    p = [list(map(float, row)) for row in pos]
    v = [list(map(float, row)) for row in vel]
    lo, hi = radius, 1.0 - radius
    t = 0.0
    times, positions, velocities = [0.0], [[r[:] for r in p]], [[r[:] for r in v]]
    while True:
        best, event = _next_event(p, v, lo, hi, (2 * radius) ** 2)
        if event is None or t + best > t_end:
            return np.array(times), np.array(positions), np.array(velocities)
        t += best
        for row, speed in zip(p, v, strict=True):
            row[0] += speed[0] * best
            row[1] += speed[1] * best
        _bounce(p, v, event, lo, hi)
        times.append(t)
        positions.append([r[:] for r in p])
        velocities.append([r[:] for r in v])


def _next_event(p: list[list[float]], v: list[list[float]], lo: float, hi: float, touch: float
                ) -> tuple[float, tuple | None]:
    """The time to the next event and the event: ``("wall", ball, axis)`` or ``("pair", i, j)``; ``None`` if
    nothing will ever happen. ``touch``: the squared distance of two touching centres."""
    k = len(p)
    best, event = math.inf, None
    for i in range(k):
        for axis in (0, 1):
            speed = v[i][axis]
            if speed > EPS:
                dt = (hi - p[i][axis]) / speed
            elif speed < -EPS:
                dt = (lo - p[i][axis]) / speed
            else:
                continue
            if dt < best:
                best, event = max(dt, 0.0), ("wall", i, axis)
        for j in range(i + 1, k):
            dx, dy = p[j][0] - p[i][0], p[j][1] - p[i][1]
            ux, uy = v[j][0] - v[i][0], v[j][1] - v[i][1]
            b = dx * ux + dy * uy
            if b >= 0:
                continue  # moving apart
            a, c = ux * ux + uy * uy, dx * dx + dy * dy - touch
            disc = b * b - a * c
            if disc < 0:
                continue  # they pass each other
            dt = max((-b - math.sqrt(disc)) / a, 0.0)
            if dt < best:
                best, event = dt, ("pair", i, j)
    return best, event


def _bounce(p: list[list[float]], v: list[list[float]], event: tuple, lo: float, hi: float) -> None:
    """Change the velocities (in place) at an event of :func:`_next_event`."""
    if event[0] == "wall":
        _, i, axis = event
        v[i][axis] = -v[i][axis]
        p[i][axis] = min(max(p[i][axis], lo), hi)
        return
    _, i, j = event  # equal masses: they swap the velocity components along the line of centres
    nx, ny = p[j][0] - p[i][0], p[j][1] - p[i][1]
    norm = math.hypot(nx, ny) or 1.0
    nx, ny = nx / norm, ny / norm
    along = (v[i][0] - v[j][0]) * nx + (v[i][1] - v[j][1]) * ny
    v[i][0] -= along * nx
    v[i][1] -= along * ny
    v[j][0] += along * nx
    v[j][1] += along * ny


class BouncingBalls:
    """A deterministic bouncing-balls generator for one split: a source of endless sequences
    (:mod:`odevideo.data.clips`).

    Args:
        split: ``train``, ``val`` or ``test``, each its own random stream.
        balls, radius, speed, colour: as in :class:`BouncingBallsConfig`.
        size: frame side in pixels.
        n_frames: frames per sequence at the default times 0, 1, ..., n_frames - 1.
        seed: seed; sequence ``i`` is a pure function of ``(seed, split, i)``.
    """

    def __init__(self, split: str, *, balls: int = 3, radius: float = 0.1, speed: float = 0.05, size: int = 32,
                 n_frames: int = 20, colour: bool = False, seed: int = 0) -> None:
        if split not in STREAMS:
            raise DataError(f"split must be one of {list(STREAMS)}, got {split!r}")
        self.split, self.balls, self.radius, self.speed, self.size = split, balls, radius, speed, size
        self.n_frames, self.colour, self.seed = n_frames, colour, seed
        self.channels, self.continuous, self.count = (3 if colour else 1), True, None

    def start(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sequence ``index``'s centres and velocities at time 0, (K, 2) each: uniform non-overlapping
        centres, uniform directions, speed ``speed``."""
        rng = np.random.default_rng([self.seed, STREAMS[self.split], int(index)])
        r, k = self.radius, self.balls
        pos = np.empty((k, 2))
        placed = 0
        while placed < k:
            candidate = rng.uniform(r, 1 - r, 2)
            if placed == 0 or np.min(np.linalg.norm(pos[:placed] - candidate, axis=1)) > 2 * r:
                pos[placed] = candidate
                placed += 1
        theta = rng.uniform(0, 2 * np.pi, k)
        return pos, self.speed * np.stack([np.sin(theta), np.cos(theta)], axis=-1)

    def positions(self, indices: Sequence[int] | np.ndarray, times: np.ndarray) -> np.ndarray:
        """Ball centres in the unit square, (B, T, K, 2) (row, col), at real ``times`` (T,) or (B, T), >= 0."""
        times = np.broadcast_to(np.asarray(times, np.float64), (len(indices), np.shape(times)[-1]))
        if times.size and times.min() < 0:
            raise DataError(f"bouncing balls start at time 0; got a time {times.min()}")
        out = np.empty((len(indices), times.shape[1], self.balls, 2))
        for row, index in enumerate(indices):
            event_t, event_p, event_v = simulate(*self.start(index), self.radius, float(times[row].max(initial=0)))
            last = np.searchsorted(event_t, times[row], side="right") - 1  # the event each time follows
            dt = (times[row] - event_t[last])[:, None, None]
            out[row] = event_p[last] + event_v[last] * dt
        return out

    def render_uint8(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Sequences as uint8 (B, T, C, H, W) at ``times`` (default 0, 1, ..., n_frames - 1)."""
        times = np.arange(self.n_frames, dtype=np.float64) if times is None else np.asarray(times, np.float64)
        centres = self.positions(indices, times) * self.size  # pixel units
        grid = np.arange(self.size) + 0.5  # pixel centres
        dy = grid[:, None] - centres[..., 0, None, None]  # (B, T, K, H, 1)
        dx = grid[None, :] - centres[..., 1, None, None]  # (B, T, K, 1, W)
        cover = np.clip(self.radius * self.size - np.sqrt(dy**2 + dx**2) + 0.5, 0.0, 1.0)  # (B, T, K, H, W)
        if self.colour:
            frames = np.einsum("btkhw,kc->btchw", cover, PALETTE[:self.balls])
        else:
            frames = cover.max(axis=2)[:, :, None]
        return np.rint(np.clip(frames, 0.0, 1.0) * 255).astype(np.uint8)

    def batch(self, indices: Sequence[int] | np.ndarray, times: np.ndarray | None = None, *,
              as_float: bool = True) -> dict[str, torch.Tensor]:
        """A batch: ``frames`` (B, T, C, H, W) and ``times`` float (B, T)."""
        times = np.arange(self.n_frames, dtype=np.float32) if times is None else np.asarray(times, np.float32)
        frames = torch.from_numpy(self.render_uint8(indices, times))
        times_b = np.broadcast_to(times, (len(indices), times.shape[-1])).copy()
        return {"frames": as_float_frames(frames) if as_float else frames, "times": torch.from_numpy(times_b)}
