"""What every video model returns: frame logits at the query times and the latent path behind them."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Generation:
    """The output of a video model called as ``model(frames, t_context, t_query)``.

    Attributes:
        logits: frame logits, (B, Tq, C, H, W); ``frames = sigmoid(logits)``.
        z_traj: latent states at the query times, (B, Tq, *latent_shape).
        z0_mean: the initial latent (its mean for variational models), (B, *latent_shape).
        z0_logvar: log-variance of z0 for variational models, else ``None``.
        nfe: function evaluations of the ODE solve (0 for discrete models).
        flow: for models that warp a context frame (``output=warp``), the flow in pixels, (B, Tq, 2, H, W),
            that backward-warps it to each query time; else ``None``.
    """

    logits: torch.Tensor
    z_traj: torch.Tensor
    z0_mean: torch.Tensor
    z0_logvar: torch.Tensor | None
    nfe: int
    flow: torch.Tensor | None = None

    @property
    def frames(self) -> torch.Tensor:
        """Generated frames in [0, 1], (B, Tq, C, H, W)."""
        return torch.sigmoid(self.logits)
