"""The latent Neural ODE video model (Voleti et al., 2019).

    context frames --ConvEncoder--> features --GRU run backwards--> z0 at t_context[0]
    z0 --solve(field)--> z(t) for every query time --ConvDecoder--> frames

The latent is either a vector (B, D) with an MLP field or a map (B, D, h, w) with a convolutional field; both
go through the same solver wrapper. Query times are real numbers: any t >= t_context[0] can be decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from odevideo.config import SolverConfig
from odevideo.models.blocks import ConvGRUCell
from odevideo.models.compose import EXTRA_CHANNELS, compose, flow_of, init_composition
from odevideo.models.decoder import ConvDecoder
from odevideo.models.encoder import ConvEncoder
from odevideo.models.inputs import check_inputs, whole_steps
from odevideo.ode import ConvField, GatedConvField, MLPField, solve
from odevideo.ode.solve import FIXED


@dataclass
class Generation:
    """Output of :meth:`LatentODE.forward`.

    Attributes:
        logits: frame logits, (B, Tq, C, H, W); ``frames = sigmoid(logits)``.
        z_traj: latent states at the query times, (B, Tq, *latent_shape).
        z0_mean: mean of z0, (B, *latent_shape).
        z0_logvar: log-variance of z0 (variational models), else ``None``.
        nfe: function evaluations of the solve.
        flow: the composition's flow in pixels, (B, Tq, 2, H, W), for models whose output is ``warp``, else
            ``None`` (it backward-warps the source context frame to each query time).
        source: the context frame each query time was composed from, (B, Tq, C, H, W), for ``warp`` models,
            else ``None``.
    """

    logits: torch.Tensor
    z_traj: torch.Tensor
    z0_mean: torch.Tensor
    z0_logvar: torch.Tensor | None
    nfe: int
    flow: torch.Tensor | None = None
    source: torch.Tensor | None = None

    @property
    def frames(self) -> torch.Tensor:
        """Generated frames in [0, 1], (B, Tq, C, H, W)."""
        return torch.sigmoid(self.logits)

    def kl(self) -> torch.Tensor:
        """KL(q(z0) || N(0, I)) per sequence, averaged over the batch (0 for deterministic models)."""
        if self.z0_logvar is None:
            return self.z0_mean.new_zeros(())
        mean, logvar = self.z0_mean.flatten(1), self.z0_logvar.flatten(1)
        return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()


class LatentODE(nn.Module):
    """Latent Neural ODE: encode the context, integrate the latent, decode at any times.

    Args:
        latent: ``vector`` or ``spatial``.
        channels: image channels.
        size: frame side in pixels (frames are square).
        patch: space-to-depth factor of the encoder (and depth-to-space of the decoder).
        width: convolution channels.
        depth: convolution blocks per encoder/decoder.
        downsample: stride-2 stages after the patch folding.
        latent_dim: D.
        field_hidden: hidden width of the vector field.
        field_layers: hidden layers of the vector field.
        variational: z0 ~ N(mean, exp(logvar)) with a KL term.
        field: ``conv`` (tanh hidden layers) or ``gated`` (hidden a * sigmoid(b): multiplicative, so the field can
            scale a displacement by a velocity stored in other channels). Spatial latents only; vector latents
            use an MLP.
        skip: also feed the decoder the encoder features of the last context frame (content), so the latent
            only needs to carry where things are and how they move.
        output: ``direct`` (the decoder draws each frame) or ``warp`` (the decoder also gives a flow and a mask;
            the frame is a context frame warped by the flow, blended through the mask with the drawn frame: see
            :mod:`odevideo.models.compose`).
        warp_source: which context frame ``warp`` composes from: the ``last`` one, or the ``previous`` one
            (the latest at or before each query time), whose time gap to the query the decoder then also sees.
        solver: options of the ODE solve.
    """

    def __init__(self, *, latent: Literal["vector", "spatial"] = "spatial", channels: int = 1, size: int = 64,
                 patch: int = 4, width: int = 32, depth: int = 2, downsample: int = 0, latent_dim: int = 16,
                 field_hidden: int = 32, field_layers: int = 1, variational: bool = False,
                 field: Literal["conv", "gated"] = "conv", skip: bool = False,
                 output: Literal["direct", "warp"] = "direct", warp_source: Literal["last", "previous"] = "last",
                 solver: SolverConfig | None = None) -> None:
        super().__init__()
        scale = patch * 2**downsample
        if size % scale:
            raise ValueError(f"frame size {size} must be divisible by patch * 2**downsample = {scale}")
        self.latent, self.channels, self.size, self.variational = latent, channels, size, variational
        self.skip, self.output = skip, output
        self.told_gap = output == "warp" and warp_source == "previous"
        out_channels = channels + EXTRA_CHANNELS if output == "warp" else channels
        # decoder input channels added by the content skip and by the time gap to the warped frame
        extra = (width if skip else 0) + (1 if self.told_gap else 0)
        self.solver = solver or SolverConfig()
        side = size // scale
        self.encoder = ConvEncoder(channels, width, patch, depth, downsample)
        n_stats = 2 * latent_dim if variational else latent_dim
        if latent == "vector":
            self.latent_shape: tuple[int, ...] = (latent_dim,)
            flat = width * side * side
            self.to_features = nn.Sequential(nn.Flatten(), nn.Linear(flat, 4 * latent_dim), nn.SiLU())
            self.cell: nn.Module = nn.GRUCell(4 * latent_dim + 1, 4 * latent_dim)  # + the time gap
            self.head: nn.Module = nn.Linear(4 * latent_dim, n_stats)
            self.field: nn.Module = MLPField(latent_dim, field_hidden, field_layers)
            self.from_latent: nn.Module = nn.Sequential(nn.Linear(latent_dim, flat),
                                                        nn.Unflatten(1, (width, side, side)))
            self.decoder = ConvDecoder(width + extra, out_channels, width, patch, depth, downsample)
        else:
            self.latent_shape = (latent_dim, side, side)
            self.to_features = nn.Identity()
            self.cell = ConvGRUCell(width + 1, width)  # + the time gap, as a constant map
            self.head = nn.Conv2d(width, n_stats, 1)
            field_cls = GatedConvField if field == "gated" else ConvField
            self.field = field_cls(latent_dim, field_hidden, field_layers)
            self.from_latent = nn.Identity()
            self.decoder = ConvDecoder(latent_dim + extra, out_channels, width, patch, depth, downsample)
        if output == "warp":
            init_composition(self.decoder.net[-1], channels, patch)
        self.state_shape = (4 * latent_dim,) if latent == "vector" else (width, side, side)

    # ---------------------------------------------------------------- encode
    def encode(self, frames: torch.Tensor, t_context: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Context frames (B, M, C, H, W) at times ``t_context`` (B, M) (default 0, 1, ...) -> z0 mean and
        log-variance (None if deterministic), (B, *latent), and the encoder features of the last context frame,
        (B, width, h, w). The aggregator sees, with each frame, the time gap to the frame it saw before (the
        next one in time), so irregularly spaced context frames are told apart from regular ones."""
        b, m = frames.shape[:2]
        if t_context is None:
            t_context = torch.arange(m, dtype=frames.dtype, device=frames.device).expand(b, -1)
        gaps = torch.cat([t_context[:, 1:] - t_context[:, :-1], t_context.new_zeros(b, 1)], dim=1)  # (B, M)
        maps = self.encoder(frames.flatten(0, 1)).unflatten(0, (b, m))  # (B, M, width, h, w)
        feats = self.to_features(maps.flatten(0, 1)).unflatten(0, (b, m))  # (B, M, F...)
        gaps = gaps.to(feats).view(b, m, *[1] * (feats.ndim - 2)).expand(*feats.shape[:2], 1, *feats.shape[3:])
        feats = torch.cat([feats, gaps], dim=2)
        h = feats.new_zeros((b, *self.state_shape))
        for i in reversed(range(m)):  # backwards in time: h ends at the first context frame, where z0 lives
            h = self.cell(feats[:, i], h)
        stats = self.head(h)
        if self.variational:
            mean, logvar = stats.chunk(2, dim=1)
            return mean, logvar, maps[:, -1]
        return stats, None, maps[:, -1]

    # ---------------------------------------------------------------- decode
    def decode(self, z: torch.Tensor, content: torch.Tensor | None = None, source: torch.Tensor | None = None,
               gap: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, T, *latent) -> frame logits (B, T, C, H, W). ``content`` (B, width, h, w), the last
        context frame's features, is required when the model has ``skip``; ``source`` (B, T, C, H, W), the
        context frame warped to each time, when its output is ``warp``; ``gap`` (B, T), the time from each
        source frame to its query, when its ``warp_source`` is ``previous``."""
        return self._decode(z, content, source, gap)[0]

    def _decode(self, z: torch.Tensor, content: torch.Tensor | None, source: torch.Tensor | None,
                gap: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`decode`, and the flow (B, T, 2, H, W) of ``warp`` models (else ``None``)."""
        b, t = z.shape[:2]
        x = self.from_latent(z.flatten(0, 1))  # (B*T, C_in, h, w)
        if self.skip:
            if content is None:
                raise ValueError("this model decodes with a content skip: pass the context features")
            x = torch.cat([x, content[:, None].expand(-1, t, *content.shape[1:]).flatten(0, 1)], dim=1)
        if self.told_gap:
            if gap is None:
                raise ValueError("this model is told the time gap to the frame it warps: pass it")
            x = torch.cat([x, gap.reshape(b * t, 1, 1, 1).to(x).expand(-1, 1, *x.shape[2:])], dim=1)
        out = self.decoder(x)
        if self.output != "warp":
            return out.unflatten(0, (b, t)), None
        if source is None:
            raise ValueError("this model composes frames from context frames: pass them")
        flow = flow_of(out, self.channels)
        return compose(out, source.flatten(0, 1)).unflatten(0, (b, t)), flow.unflatten(0, (b, t))

    def warp_sources(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context frame each query time composes from, (B, Tq, C, H, W), and the time gap to it, (B, Tq).

        ``last``: the last context frame for every query. ``previous``: the latest context frame at or before
        the query time (every query time is at or after its sample's first context time)."""
        b, m = t_context.shape
        if self.told_gap:
            index = (t_context[:, None, :] <= t_query[:, :, None]).sum(-1).sub(1).clamp(0, m - 1)  # (B, Tq)
        else:
            index = torch.full_like(t_query, m - 1, dtype=torch.long)
        rows = torch.arange(b, device=frames.device)[:, None]
        return frames[rows, index], t_query - t_context[rows, index]

    # ---------------------------------------------------------------- forward
    def forward(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                generator: torch.Generator | None = None) -> Generation:
        """Generate frames at ``t_query`` from context ``frames`` observed at ``t_context``.

        Args:
            frames: context frames, (B, M, C, H, W), float in [0, 1].
            t_context: times of the context frames, (M,) shared by the batch or (B, M) per sample; strictly
                increasing, at any spacing.
            t_query: times to generate, (Tq,) or (B, Tq), strictly increasing, each >= its sample's first
                context time; real numbers, so times between, at or beyond the context frames are all fine.
            generator: RNG for sampling z0 in variational models while training (the mean is used in eval).

        Returns:
            Generation with logits (B, Tq, C, H, W).
        """
        t_context, t_query = check_inputs(frames, t_context, t_query, channels=self.channels, size=self.size)
        t_context, t_query = t_context.to(frames), t_query.to(frames)
        mean, logvar, content = self.encode(frames, t_context)
        z0 = mean
        if logvar is not None and self.training:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z0 = mean + torch.exp(0.5 * logvar) * eps
        z_traj, nfe = self.trajectory(z0, t_context[:, :1], t_query)
        source, gap = self.warp_sources(frames, t_context, t_query) if self.output == "warp" else (None, None)
        logits, flow = self._decode(z_traj, content, source, gap)
        return Generation(logits=logits, z_traj=z_traj, z0_mean=mean, z0_logvar=logvar, nfe=nfe, flow=flow,
                          source=source)

    def trajectory(self, z0: torch.Tensor, t0: torch.Tensor, t_query: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent states (B, Tq, *latent) at ``t_query`` (B, Tq) from ``z0`` at ``t0`` (B, 1), and the NFE.

        The field is autonomous (it does not read t), so each sample is solved in its own clock, t - t0. A
        fixed-step solver steps the whole batch on one grid 0, h, 2h, ... and each sample interpolates its
        own times linearly between grid states, so its frames are exactly those it would get alone. An
        adaptive solver solves once over the sorted union of every sample's times; it picks its steps from the
        whole batch's error, so results then agree with solving alone only to the solver tolerance.
        """
        rel = t_query - t0  # (B, Tq), >= 0
        rows = torch.arange(z0.shape[0], device=z0.device)[:, None]
        h = self.solver.step_size
        if self.solver.method in FIXED and h is not None:
            n = max(1, math.ceil(round(float(rel.max()) / h, 6)))
            grid = torch.arange(n + 1, device=z0.device, dtype=z0.dtype) * h
            sol = solve(self.field, z0, grid, **vars(self.solver))
            pos = rel / h
            index = pos.floor().long().clamp(0, n - 1)  # (B, Tq): the grid step each time falls in
            frac = (pos - index).view(*rel.shape, *[1] * len(self.latent_shape))
            lo, hi = sol.z[rows, index], sol.z[rows, index + 1]
            return lo + frac * (hi - lo), sol.nfe
        t_all = torch.unique(torch.cat([rel.new_zeros(1), rel.flatten()]))  # sorted
        sol = solve(self.field, z0, t_all, **vars(self.solver))
        return sol.z[rows, torch.searchsorted(t_all, rel.contiguous())], sol.nfe


class LatentRNN(LatentODE):
    """The ablation of the latent ODE: the same encoder, aggregator and decoder, but the latent moves by a
    discrete gated recurrence, one step per frame, instead of an ODE. Query times must lie on each sample's frame
    grid (t0 + integer)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        dim = self.latent_shape[0]
        self.step_cell = nn.GRUCell(dim, dim) if self.latent == "vector" else ConvGRUCell(dim, dim)
        del self.field

    def trajectory(self, z0: torch.Tensor, t0: torch.Tensor, t_query: torch.Tensor) -> tuple[torch.Tensor, int]:
        index = whole_steps(t_query, t0, "a latent RNN")  # (B, Tq)
        states, z = [z0], z0
        for _ in range(int(index.max())):
            z = self.step_cell(z, z)
            states.append(z)
        rows = torch.arange(z0.shape[0], device=z0.device)[:, None]
        return torch.stack(states, dim=1)[rows, index], 0
