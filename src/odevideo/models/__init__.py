"""Video models and their registry.

Every model kind has its own module with its own config dataclass, and one line in ``MODELS``. Every model is
built as ``cls(config, channels=..., size=..., solver=...)`` and called as
``model(frames, t_context, t_query) -> Generation``, so the trainer, the losses and the metrics treat them
alike: the latent ODEs (ours: spatial and objects), its discrete ablation (the latent RNN) and the ConvLSTM
and SimVP baselines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from torch import nn

from odevideo.models.convlstm import ConvLSTM, ConvLSTMConfig
from odevideo.models.latent_ode import LatentODE, LatentODEConfig
from odevideo.models.latent_rnn import LatentRNN, LatentRNNConfig
from odevideo.models.objects import ObjectODE, ObjectsConfig
from odevideo.models.output import Generation
from odevideo.models.simvp import SimVP, SimVPConfig

if TYPE_CHECKING:
    from odevideo.config import Config


class ModelKind(NamedTuple):
    """A registry entry: the config dataclass of a model kind and the model class it builds."""

    config: type
    model: type[nn.Module]


MODELS: dict[str, ModelKind] = {
    "latent_ode": ModelKind(LatentODEConfig, LatentODE),
    "latent_rnn": ModelKind(LatentRNNConfig, LatentRNN),
    "convlstm": ModelKind(ConvLSTMConfig, ConvLSTM),
    "objects": ModelKind(ObjectsConfig, ObjectODE),
    "simvp": ModelKind(SimVPConfig, SimVP),
}
ModelConfig = LatentODEConfig | LatentRNNConfig | ConvLSTMConfig | ObjectsConfig | SimVPConfig
VideoModel = LatentODE | ConvLSTM | ObjectODE | SimVP  # LatentRNN is a LatentODE


def build_model(config: Config) -> VideoModel:
    """The model of ``config.model`` (its ``kind`` picks the class) for the frames of ``config.data``."""
    cls = MODELS[config.model.kind].model
    return cls(config.model, channels=config.data.channels, size=config.data.size, solver=config.solver)


__all__ = ["MODELS", "ConvLSTM", "ConvLSTMConfig", "Generation", "LatentODE", "LatentODEConfig", "LatentRNN",
           "LatentRNNConfig", "ModelConfig", "ModelKind", "ObjectODE", "ObjectsConfig", "SimVP",
           "SimVPConfig", "VideoModel", "build_model"]
