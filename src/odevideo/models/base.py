"""The contract every video model kind implements, and what it returns.

    model(context, t_context, t_query, *, sample=False, generator=None) -> Generation
    model.stochastic     whether ``sample=True`` draws another future each time (else there is one future)
    model.reads_targets  whether training also passes ``targets=`` (the frames at t_query) to the call
    model.continuous     whether query times may leave the frame grid (real times), or must be whole steps
    model.latent_view(out) -> LatentView | None     what the latent plot and the web page draw

Callers (training, inference, evaluation, the page) rely on this interface only; a kind that lacks a
capability says so through it (``stochastic = False``, ``latent_view`` -> ``None``), never with zero-filled
outputs. Adding a kind: see docs/design.md ("Adding a model kind").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from odevideo.errors import DataError
from odevideo.times import check_times

EPS = 1e-4  # keeps output probabilities off 0 and 1, so their logits (and BCE gradients) stay finite


def to_logits(probabilities: torch.Tensor) -> torch.Tensor:
    """Frame probabilities in [0, 1] -> the logits a model returns, kept finite: logit(EPS + (1 - 2 EPS) p).
    Computed in float32 (in bf16, 1 - 2 EPS rounds to 1 and the logit to infinity)."""
    with torch.autocast(probabilities.device.type, enabled=False):
        return torch.logit(EPS + (1 - 2 * EPS) * probabilities.float())


@dataclass
class Generation:
    """The output of a video model called as ``model(context, t_context, t_query)``.

    Attributes:
        logits: frame logits, (B, Tq, C, H, W); ``frames = sigmoid(logits)``.
        z_traj: latent states at the query times, (B, Tq, *latent_shape); ``None`` for a model that keeps no
            state per time (SimVP predicts a block of frames at once).
        z0_mean: the initial latent (its mean for variational models) without a learned prior's code, or
            ``None``.
        z0_logvar: log-variance of z0 for variational models, else ``None``.
        kl: KL(posterior || learned prior) of the stochastic code per sample, (B,), while a model with a
            learned prior trains on the frames to predict (:attr:`VideoModel.reads_targets`), else ``None``.
        nfe: function evaluations of the ODE solve (0 for discrete models).
        flow: for models that warp a context frame (``output=warp``), the flow in pixels, (B, Tq, 2, H, W),
            that backward-warps it to each query time; else ``None``.
    """

    logits: torch.Tensor
    z_traj: torch.Tensor | None = None
    z0_mean: torch.Tensor | None = None
    z0_logvar: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    nfe: int = 0
    flow: torch.Tensor | None = None

    @property
    def frames(self) -> torch.Tensor:
        """Generated frames in [0, 1], (B, Tq, C, H, W)."""
        return torch.sigmoid(self.logits)


@dataclass
class LatentView:
    """A model's latent path as the latent plot and the web page draw it.

    Attributes:
        kind: ``tracks`` (each object's centre, drawn over a frame) or ``pca`` (the latent state on its first
            two principal components).
        points: ``tracks``: (B, T, K, 2), (row, col) in pixels; ``pca``: (B, T, 2), float64.
        explained: ``pca``: the fraction of the variance each component explains; else ``None``.
    """

    kind: Literal["tracks", "pca"]
    points: torch.Tensor
    explained: list[float] | None = None


def principal_components(flat: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Points (N, D) -> their coordinates on the first two principal components, (N, 2) float64 (zeros where
    there are fewer components), and the fraction of the variance each explains."""
    flat = flat.detach().double().cpu()
    centred = flat - flat.mean(0)
    points = torch.zeros(len(flat), 2, dtype=torch.float64)
    if len(flat) < 2:
        return points, [0.0, 0.0]
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    k = min(2, v.shape[0])
    points[:, :k] = centred @ v[:k].T
    explained = (s[:2] ** 2 / (s**2).sum().clamp_min(1e-12)).tolist()
    return points, explained + [0.0] * (2 - len(explained))


class KindConfig:
    """The base of every model kind's config dataclass (its ``model:`` section)."""

    def check_with(self, data: Any, train: Any) -> None:
        """Raise ``ConfigError`` where this model cannot work with the ``data`` section (a
        :class:`~odevideo.data.clips.ClipsConfig`) or the ``train`` section; every combination works by default.
        (Whether the model reads times off the frame grid is checked for every kind, from ``continuous``.)"""


class VideoModel(nn.Module):
    """The base of every model kind: it holds the frame layout (``channels``, ``size``) and checks inputs.

    Subclasses set ``continuous`` and implement :meth:`forward`; a stochastic kind overrides
    :attr:`stochastic`, and a kind with a latent of its own shape overrides :meth:`latent_view`.
    """

    continuous: ClassVar[bool] = True  # query times may be any real t >= the first context time

    def __init__(self, *, channels: int, size: int) -> None:
        super().__init__()
        self.channels, self.size = channels, size

    @property
    def stochastic(self) -> bool:
        """Whether ``sample=True`` draws a future from a distribution (else there is one future per context)."""
        return False

    @property
    def reads_targets(self) -> bool:
        """Whether training passes the frames to predict to :meth:`forward` as ``targets=`` (a model with a
        learned prior reads them into its posterior; at generation there are none)."""
        return False

    def forward(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                sample: bool = False, generator: torch.Generator | None = None) -> Generation:
        """Generate frames at ``t_query`` from ``context`` frames observed at ``t_context``.

        Args:
            context: context frames, (B, M, C, H, W), float in [0, 1].
            t_context: their times, (M,) shared by the batch or (B, M) per sample, strictly increasing.
            t_query: times to generate, (Tq,) or (B, Tq), strictly increasing, each >= its sample's first
                context time; real numbers where ``continuous``, else whole steps after it.
            sample: draw the future from the model's distribution (stochastic models; a deterministic model
                gives its one future).
            generator: RNG of the draw.

        Returns:
            Generation with logits (B, Tq, C, H, W).
        """
        raise NotImplementedError

    def check(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The public entry's checks: ``DataError``/``SolverError`` unless ``context`` is (B, M, channels, size,
        size) and the times are valid (:func:`odevideo.times.check_times`); -> times per sample, (B, M), (B, Tq)."""
        c, s = self.channels, self.size
        if context.ndim != 5 or tuple(context.shape[2:]) != (c, s, s):
            raise DataError(f"context frames must be (B, M, {c}, {s}, {s}), got {tuple(context.shape)}")
        return check_times(t_context, t_query, context.shape[0], context.shape[1])

    def latent_view(self, out: Generation) -> LatentView | None:
        """The latent path of ``out`` for plots: its states on their first two principal components (over the
        batch and times together), or ``None`` when the model keeps no latent state."""
        if out.z_traj is None:
            return None
        b, t = out.z_traj.shape[:2]
        points, explained = principal_components(out.z_traj.reshape(b * t, -1))
        return LatentView(kind="pca", points=points.reshape(b, t, 2), explained=explained)
