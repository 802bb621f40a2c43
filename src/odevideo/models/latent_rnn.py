"""The ablation of the latent ODE: the same encoder, aggregator and decoder, but the latent moves by a discrete
gated recurrence, one step per frame, instead of an ODE. What it loses against the latent ODE is what the ODE
adds. Query times must lie on each sample's frame grid (its first context time + a whole number)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from odevideo.models.blocks import ConvGRUCell
from odevideo.models.latent_ode import EncoderDecoderConfig, LatentODE
from odevideo.times import grid_steps


@dataclass
class LatentRNNConfig(EncoderDecoderConfig):
    """The latent RNN (``kind: latent_rnn``): the encoder, aggregator and decoder of
    :class:`~odevideo.models.latent_ode.EncoderDecoderConfig`, with a latent that moves by a GRU step per frame.
    """

    kind: Literal["latent_rnn"] = "latent_rnn"
    anchor: Literal["first"] = "first"  # it steps forwards from the first context frame only


class LatentRNN(LatentODE):
    """:class:`~odevideo.models.latent_ode.LatentODE` with a GRU cell stepping the latent once per frame."""

    continuous: ClassVar[bool] = False

    def build_dynamics(self) -> None:
        dim = self.latent_shape[0]
        self.step_cell = nn.GRUCell(dim, dim) if self.config.latent == "vector" else ConvGRUCell(dim, dim)

    def trajectory(self, z0: torch.Tensor, t0: torch.Tensor, t_query: torch.Tensor) -> tuple[torch.Tensor, int]:
        index = grid_steps(t_query, t0[:, None], "a latent RNN")  # (B, Tq)
        states, z = [z0], z0
        for _ in range(int(index.max())):
            z = self.step_cell(z, z)
            states.append(z)
        rows = torch.arange(z0.shape[0], device=z0.device)[:, None]
        return torch.stack(states, dim=1)[rows, index], 0
