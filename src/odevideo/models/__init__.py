"""Video models and their registry.

Every model kind has its own module with its own config dataclass, and one line in ``MODELS``. Every model is
a :class:`~odevideo.models.base.VideoModel`, built as ``cls(config, channels=..., size=..., solver=...)`` and
called as ``model(context, t_context, t_query) -> Generation``, so the trainer, the losses and the metrics
treat them alike: the latent ODEs (spatial, and the object tracker), its discrete ablation (the latent RNN) and
the ConvLSTM and SimVP baselines.
"""

from __future__ import annotations

from typing import NamedTuple

from odevideo.models.base import Generation, LatentView, VideoModel, to_logits
from odevideo.models.convlstm import ConvLSTM, ConvLSTMConfig
from odevideo.models.latent_ode import LatentODE, LatentODEConfig
from odevideo.models.latent_rnn import LatentRNN, LatentRNNConfig
from odevideo.models.objects import ObjectODE, ObjectsConfig
from odevideo.models.simvp import SimVP, SimVPConfig
from odevideo.ode import SolverConfig


class ModelKind(NamedTuple):
    """A registry entry: the config dataclass of a model kind and the model class it builds."""

    config: type
    model: type[VideoModel]


MODELS: dict[str, ModelKind] = {
    "latent_ode": ModelKind(LatentODEConfig, LatentODE),
    "latent_rnn": ModelKind(LatentRNNConfig, LatentRNN),
    "convlstm": ModelKind(ConvLSTMConfig, ConvLSTM),
    "objects": ModelKind(ObjectsConfig, ObjectODE),
    "simvp": ModelKind(SimVPConfig, SimVP),
}
ModelConfig = LatentODEConfig | LatentRNNConfig | ConvLSTMConfig | ObjectsConfig | SimVPConfig


def build_model(model: ModelConfig, *, channels: int, size: int, solver: SolverConfig) -> VideoModel:
    """The model that the config section ``model`` describes (its ``kind`` picks the class), for frames of
    ``channels`` x ``size`` x ``size``, solving its ODE (if any) with ``solver``."""
    return MODELS[model.kind].model(model, channels=channels, size=size, solver=solver)


__all__ = ["MODELS", "ConvLSTM", "ConvLSTMConfig", "Generation", "LatentODE", "LatentODEConfig", "LatentRNN",
           "LatentRNNConfig", "LatentView", "ModelConfig", "ModelKind", "ObjectODE", "ObjectsConfig", "SimVP",
           "SimVPConfig", "VideoModel", "build_model", "to_logits"]
