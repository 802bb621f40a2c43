"""The latent Neural ODE video model (Voleti et al., 2019).

    context frames --ConvEncoder--> features --GRU run backwards--> z0 at t_context[0]
    z0 --solve(field)--> z(t) for every query time --ConvDecoder--> frames

The latent is either a vector (B, D) with an MLP field or a map (B, D, h, w) with a convolutional field; both
go through the one solver wrapper. Query times are real numbers: any t >= t_context[0] can be decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from odevideo.errors import ConfigError
from odevideo.models.base import Generation, KindConfig, VideoModel
from odevideo.models.blocks import ConvGRUCell
from odevideo.models.compose import EXTRA_CHANNELS, compose, flow_of, init_composition
from odevideo.models.decoder import ConvDecoder
from odevideo.models.encoder import ConvEncoder
from odevideo.ode import ConvField, MLPField, SolverConfig, integrate
from odevideo.options import check_choices, check_positive


# ------------------------------------------------------------------------------------------------- config
@dataclass
class EncoderDecoderConfig(KindConfig):
    """The encoder, aggregator and decoder shared by the latent models.

    Attributes:
        kind: the model kind (the registry key in :mod:`odevideo.models`).
        latent: ``spatial`` (z is a D x h x w map, convolutional vector field) or ``vector`` (z is a D-vector,
            MLP vector field).
        patch: pixels folded into channels before the first convolution (space-to-depth).
        width: channels of the encoder and decoder convolutions.
        depth: convolution blocks in the encoder and in the decoder.
        downsample: extra stride-2 stages after the patch folding (latent side = size / patch / 2**downsample).
        latent_dim: D, the latent size (vector) or latent channels (spatial).
        variational: z0 drawn from N(mean, exp(logvar)) while training, with a KL term in the loss
            (``train.kl_weight``); the mean is used to generate.
        output: ``warp`` (Vid-ODE-style composition: a context frame warped by a decoded flow, blended through
            a decoded mask with a drawn frame; the default, which won on every dataset, docs/benchmarks.md) or
            ``direct`` (the decoder draws every frame).
        warp_source: the context frame a ``warp`` model warps to each query time: the ``previous`` one (the
            latest at or before the query time; the decoder is then also told the time gap from that frame to
            the query) or the ``last`` one; ``None`` (the default): ``previous`` with ``output=warp``. A
            ``direct`` model warps nothing, so it refuses a value.
        anchor: where the aggregator leaves the latent: at the ``last`` context frame (the default: the GRU
            runs forwards; later times are integrated forwards from there and earlier ones backwards, so the
            future starts from the most recent frame) or at the ``first`` one (the GRU runs backwards in time and
            the ODE integrates forwards, as in Voleti et al. and Rubanova et al.; checkpoints written before
            the option was added). Issue 23's steps in docs/benchmarks.md measured the choice.
        noise_dim: channels of a stochastic code drawn beside the latent (spatial latents; 0: none). While
            training it is drawn from a posterior that also sees the frames to predict, and at generation from a
            prior learned from the context alone (SVG-LP, Denton and Fergus 2018); the loss holds the KL between
            the two (``train.kl_weight``). Samples then differ where the context leaves the future open, so best
            of K can pay. Exclusive with ``variational`` (z0 drawn around the context's mean against a fixed
            N(0, I) prior, which collapses: issue 23).
        source_features: a ``warp`` decoder also reads the encoder's features of the frame it warps, so the
            latent need only say where things go, not where they were. ``None`` (the default): on for a
            ``warp`` model with a spatial latent, off otherwise.
    """

    kind: str = "latent_ode"
    latent: Literal["spatial", "vector"] = "spatial"
    patch: int = 4
    width: int = 32
    depth: int = 4
    downsample: int = 0
    latent_dim: int = 16
    variational: bool = False
    output: Literal["warp", "direct"] = "warp"
    warp_source: Literal["previous", "last"] | None = None
    anchor: Literal["first", "last"] = "last"
    source_features: bool | None = None
    noise_dim: int = 0

    def __post_init__(self) -> None:
        check_choices(self, "model")
        check_positive(self, "model", "patch", "width", "depth", "latent_dim")
        if self.downsample < 0:
            raise ConfigError(f"model.downsample must be >= 0, got {self.downsample}")
        if self.noise_dim < 0:
            raise ConfigError(f"model.noise_dim must be >= 0, got {self.noise_dim}")
        if self.noise_dim and (self.variational or self.latent != "spatial"):
            raise ConfigError("model.noise_dim draws a code from a learned prior beside a spatial latent: set "
                              "model.latent=spatial and model.variational=false, or model.noise_dim=0")
        if self.warp_source not in (None, "previous", "last"):
            raise ConfigError(f"model.warp_source={self.warp_source!r} is not one of ['previous', 'last', null]")
        if self.warp_source is not None and self.output != "warp":
            raise ConfigError(f"model.warp_source={self.warp_source} chooses the frame a warp model warps: set "
                              "model.output=warp, or drop model.warp_source")
        if self.source_features is None:
            self.source_features = self.output == "warp" and self.latent == "spatial"
        elif self.source_features and (self.output != "warp" or self.latent != "spatial"):
            raise ConfigError("model.source_features gives the decoder the features of the frame it warps, beside "
                              "a spatial latent: set model.output=warp and model.latent=spatial, or "
                              "model.source_features=false")


@dataclass
class LatentODEConfig(EncoderDecoderConfig):
    """The latent ODE (``kind: latent_ode``): the encoder, aggregator and decoder of
    :class:`EncoderDecoderConfig`, with a latent that moves by an ODE.

    Attributes:
        field_hidden: hidden width of the vector field.
        field_layers: hidden layers of the vector field.
    """

    kind: Literal["latent_ode"] = "latent_ode"
    field_hidden: int = 32
    field_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "model", "field_hidden", "field_layers")



# ------------------------------------------------------------------------------------------------- model
class LatentODE(VideoModel):
    """Latent Neural ODE: encode the context, integrate the latent, decode at any times.

    Args:
        config: the architecture (:class:`LatentODEConfig`).
        channels: image channels.
        size: frame side in pixels (frames are square).
        solver: options of the ODE solve.
    """

    def __init__(self, config: EncoderDecoderConfig, *, channels: int, size: int, solver: SolverConfig) -> None:
        super().__init__(channels=channels, size=size)
        c = config
        scale = c.patch * 2**c.downsample
        if size % scale:
            raise ConfigError(f"frame size {size} must be divisible by model.patch * 2**model.downsample = {scale}")
        self.config, self.solver = c, solver
        self.told_gap = c.output == "warp" and c.warp_source != "last"  # None: previous
        out_channels = channels + EXTRA_CHANNELS if c.output == "warp" else channels
        extra = 1 if self.told_gap else 0  # the time gap to the warped frame, as one more decoder input channel
        if c.source_features:
            extra += c.width  # the encoder's features of the warped frame
        side = size // scale
        self.encoder = ConvEncoder(channels, c.width, c.patch, c.depth, c.downsample)
        n_stats = 2 * c.latent_dim if c.variational else c.latent_dim
        if c.latent == "vector":
            self.latent_shape: tuple[int, ...] = (c.latent_dim,)
            flat = c.width * side * side
            self.to_features: nn.Module = nn.Sequential(nn.Flatten(), nn.Linear(flat, 4 * c.latent_dim), nn.SiLU())
            self.cell: nn.Module = nn.GRUCell(4 * c.latent_dim + 1, 4 * c.latent_dim)  # + the time gap
            self.head: nn.Module = nn.Linear(4 * c.latent_dim, n_stats)
            self.from_latent: nn.Module = nn.Sequential(nn.Linear(c.latent_dim, flat),
                                                        nn.Unflatten(1, (c.width, side, side)))
            self.decoder = ConvDecoder(c.width + extra, out_channels, c.width, c.patch, c.depth, c.downsample)
            self.state_shape: tuple[int, ...] = (4 * c.latent_dim,)
        else:
            self.latent_shape = (c.latent_dim + c.noise_dim, side, side)  # the stochastic code moves with z
            self.to_features = nn.Identity()
            self.cell = ConvGRUCell(c.width + 1, c.width)  # + the time gap, as a constant map
            self.head = nn.Conv2d(c.width, n_stats, 1)
            self.from_latent = nn.Identity()
            self.decoder = ConvDecoder(self.latent_shape[0] + extra, out_channels, c.width, c.patch, c.depth,
                                       c.downsample)
            self.state_shape = (c.width, side, side)
            if c.noise_dim:
                self.prior = nn.Conv2d(c.width, 2 * c.noise_dim, 3, padding=1)  # the context's state -> p(u)
                self.posterior = nn.Conv2d(2 * c.width, 2 * c.noise_dim, 3, padding=1)  # + the targets -> q(u)
        if c.output == "warp":
            init_composition(self.decoder.net[-1], channels, c.patch)
        self.build_dynamics()

    def build_dynamics(self) -> None:
        """The module that moves the latent: here the vector field of the ODE."""
        c = self.config
        field_cls = MLPField if c.latent == "vector" else ConvField
        self.field = field_cls(self.latent_shape[0], c.field_hidden, c.field_layers)

    # ---------------------------------------------------------------- encode
    def encode(self, frames: torch.Tensor, t_context: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Context frames (B, M, C, H, W) at times ``t_context`` (B, M) -> the latent's mean and log-variance
        (``None`` unless variational), each (B, latent_dim, ...), at the anchor frame (``model.anchor``), the
        encoder's feature maps of every frame, (B, M, width, h, w), and the aggregator's final state (B, *state).
        The aggregator sees, with each frame, the time gap to the frame it saw before, so irregularly spaced
        context frames are told apart."""
        b, m = frames.shape[:2]
        steps = t_context[:, 1:] - t_context[:, :-1]
        forwards = self.config.anchor == "last"
        zero = t_context.new_zeros(b, 1)
        gaps = torch.cat([zero, steps] if forwards else [steps, zero], dim=1)  # (B, M)
        maps = self.encoder(frames.flatten(0, 1))  # (B*M, width, h, w)
        feats = self.to_features(maps).unflatten(0, (b, m))  # (B, M, F...)
        gaps = gaps.to(feats).view(b, m, *[1] * (feats.ndim - 2)).expand(*feats.shape[:2], 1, *feats.shape[3:])
        feats = torch.cat([feats, gaps], dim=2)
        h = feats.new_zeros((b, *self.state_shape))
        for i in (range(m) if forwards else reversed(range(m))):  # h ends at the anchor frame
            h = self.cell(feats[:, i], h)
        stats = self.head(h)
        maps = maps.unflatten(0, (b, m))
        if self.config.variational:
            mean, logvar = stats.chunk(2, dim=1)
            return mean, logvar, maps, h
        return stats, None, maps, h

    def code(self, state: torch.Tensor, targets: torch.Tensor | None, sample: bool,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stochastic code u (B, noise_dim, h, w) beside the latent, and KL(q || p) per sample (``None``
        without targets). With ``targets`` (training) u is drawn from the posterior q(u | context, targets),
        whose input is the aggregator's ``state`` and the mean of the targets' encoder maps over time (any
        number of targets, at any times); else from the learned prior p(u | context) when ``sample``, or its
        mean."""
        p_mean, p_logvar = self.prior(state).chunk(2, dim=1)
        if targets is None:
            if not sample:
                return p_mean, None
            return _draw(p_mean, p_logvar, generator), None
        seen = self.encoder(targets.flatten(0, 1)).unflatten(0, targets.shape[:2]).mean(1)
        q_mean, q_logvar = self.posterior(torch.cat([state, seen], dim=1)).chunk(2, dim=1)
        # KL(N(q_mean, q_var) || N(p_mean, p_var)) in closed form (a NaN is then the training step's to skip)
        kl = 0.5 * (p_logvar - q_logvar + (q_logvar.exp() + (q_mean - p_mean).pow(2)) / p_logvar.exp() - 1)
        return _draw(q_mean, q_logvar, generator), kl.float().flatten(1).sum(1)

    # ---------------------------------------------------------------- decode
    def decode(self, z: torch.Tensor, source: torch.Tensor | None = None, gap: torch.Tensor | None = None,
               features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents (B, T, *latent) -> frame logits (B, T, C, H, W), and the flow (B, T, 2, H, W) of ``warp``
        models (else ``None``). ``source`` (B, T, C, H, W), the context frame warped to each time, is needed
        when the output is ``warp``; ``gap`` (B, T), the time from each source frame to its query, when the
        warp source is ``previous``; ``features`` (B, T, width, h, w), the encoder's maps of each source frame,
        with ``model.source_features`` (see :meth:`warp_sources`)."""
        b, t = z.shape[:2]
        x = self.from_latent(z.flatten(0, 1))  # (B*T, C_in, h, w)
        if self.config.source_features:
            if features is None:
                raise ValueError("this model reads the features of the frame it warps: pass them")
            x = torch.cat([x, features.flatten(0, 1).to(x)], dim=1)
        if self.told_gap:
            if gap is None:
                raise ValueError("this model is told the time gap to the frame it warps: pass it")
            x = torch.cat([x, gap.reshape(b * t, 1, 1, 1).to(x).expand(-1, 1, *x.shape[2:])], dim=1)
        out = self.decoder(x)
        if self.config.output != "warp":
            return out.unflatten(0, (b, t)), None
        if source is None:
            raise ValueError("this model composes frames from context frames: pass them")
        flow = flow_of(out, self.channels)
        return compose(out, source.flatten(0, 1)).unflatten(0, (b, t)), flow.unflatten(0, (b, t))

    def warp_sources(self, frames: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The context frame each query time composes from, (B, Tq, C, H, W), the time gap to it, (B, Tq), and
        its index among the context frames, (B, Tq).

        ``last``: the last context frame for every query. ``previous``: the latest context frame at or before
        the query time (every query time is at or after its sample's first context time)."""
        b, m = t_context.shape
        if self.told_gap:
            index = (t_context[:, None, :] <= t_query[:, :, None]).sum(-1).sub(1).clamp(0, m - 1)  # (B, Tq)
        else:
            index = torch.full_like(t_query, m - 1, dtype=torch.long)
        rows = torch.arange(b, device=frames.device)[:, None]
        return frames[rows, index], t_query - t_context[rows, index], index

    # ---------------------------------------------------------------- forward
    @property
    def stochastic(self) -> bool:
        """Whether z0 is a distribution to sample from (``model.variational`` or ``model.noise_dim``)."""
        return self.config.variational or self.config.noise_dim > 0

    @property
    def reads_targets(self) -> bool:
        """A learned prior's posterior reads the frames to predict while training (``model.noise_dim``)."""
        return self.config.noise_dim > 0

    def forward(self, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor, *,
                sample: bool = False, generator: torch.Generator | None = None,
                targets: torch.Tensor | None = None) -> Generation:
        """The contract's call (:meth:`odevideo.models.base.VideoModel.forward`): query times are real numbers,
        so times between, at or beyond the context frames are all fine. A variational model draws z0 while
        training, and in eval mode with ``sample``; otherwise it uses the mean. A model with a learned prior
        (``model.noise_dim``) draws its code from the posterior given ``targets``, the frames at ``t_query``
        (training), else from the prior with ``sample``, else takes the prior's mean."""
        t_context, t_query = self.check(context, t_context, t_query)
        t_context, t_query = t_context.to(context), t_query.to(context)
        mean, logvar, maps, state = self.encode(context, t_context)
        z0, kl = mean, None
        if logvar is not None and (self.training or sample):
            z0 = _draw(mean, logvar, generator)
        if self.config.noise_dim:
            u, kl = self.code(state, targets, sample, generator)
            z0 = torch.cat([z0, u], dim=1)
        anchor = t_context[:, 0] if self.config.anchor == "first" else t_context[:, -1]
        z_traj, nfe = self.trajectory(z0, anchor, t_query)
        source = gap = features = None
        if self.config.output == "warp":
            source, gap, index = self.warp_sources(context, t_context, t_query)
            if self.config.source_features:
                features = maps[torch.arange(maps.shape[0], device=maps.device)[:, None], index]
        logits, flow = self.decode(z_traj, source, gap, features)
        return Generation(logits=logits, z_traj=z_traj, z0_mean=mean, z0_logvar=logvar, nfe=nfe, flow=flow, kl=kl)

    def trajectory(self, z0: torch.Tensor, t0: torch.Tensor, t_query: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent states (B, Tq, *latent) at ``t_query`` (B, Tq) from ``z0`` at ``t0`` (B,), and the NFE.

        The field is autonomous, so the batch is solved in one pass with each sample in its own clock (see
        :func:`~odevideo.ode.solve.integrate`): a sample's frames are those it would get alone. Times before
        ``t0`` are reached by integrating the negated field forwards over ``t0 - t`` (the same ODE backwards
        in time)."""
        before = t_query < t0[:, None]  # (B, Tq)
        z, nfe = None, 0
        if not bool(before.all()):
            sol = integrate(self.field, z0, torch.maximum(t_query, t0[:, None]), t0, self.solver)
            z, nfe = sol.z, sol.nfe
        if bool(before.any()):
            back = integrate(_Backwards(self.field), z0, t0[:, None] + (t0[:, None] - t_query).clamp(min=0), t0,
                             self.solver)
            nfe += back.nfe
            mask = before.view(*before.shape, *[1] * (back.z.ndim - 2))
            z = back.z if z is None else torch.where(mask, back.z, z)
        return z, nfe


def _draw(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A draw from N(mean, exp(logvar)), differentiable in both (the reparameterisation)."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


class _Backwards(nn.Module):
    """The negated field: integrating it forwards over a span runs the ODE of ``field`` backwards over it."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -self.field(t, z)
