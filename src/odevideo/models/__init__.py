"""Video models. ``build_model`` turns a config into a model with plain keyword arguments."""

from __future__ import annotations

import dataclasses

from odevideo.config import Config
from odevideo.models.latent_ode import Generation, LatentODE


def build_model(config: Config) -> LatentODE:
    """The latent ODE described by ``config.model``, ``config.data`` and ``config.solver``."""
    m = config.model
    kwargs = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name != "aggregator"}
    return LatentODE(size=config.data.size, solver=config.solver, **kwargs)


__all__ = ["Generation", "LatentODE", "build_model"]
