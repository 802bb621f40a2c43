"""Video models. ``build_model`` turns a config into a model with plain keyword arguments.

Every model is called as ``model(frames, t_context, t_query) -> Generation``, so the trainer, the losses and
the metrics treat them alike: the latent ODE (ours), its discrete ablation (latent RNN) and ConvLSTM.
"""

from __future__ import annotations

import dataclasses

from odevideo.config import Config
from odevideo.models.convlstm import ConvLSTM
from odevideo.models.latent_ode import Generation, LatentODE, LatentRNN

LATENT_MODELS = {"latent_ode": LatentODE, "latent_rnn": LatentRNN}
VideoModel = LatentODE | ConvLSTM  # LatentRNN is a LatentODE


def build_model(config: Config) -> VideoModel:
    """The model described by ``config.model`` (``kind`` picks the class), ``config.data`` and ``config.solver``."""
    m = config.model
    if m.kind == "convlstm":
        return ConvLSTM(channels=m.channels, size=config.data.size, patch=m.patch, width=m.width, depth=m.depth)
    kwargs = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name not in ("aggregator", "kind")}
    return LATENT_MODELS[m.kind](size=config.data.size, solver=config.solver, **kwargs)


__all__ = ["ConvLSTM", "Generation", "LatentODE", "LatentRNN", "VideoModel", "build_model"]
