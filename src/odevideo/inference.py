"""Inference: checkpoints on disk and generation from them. Depends on the models and their config, never on
training.

A checkpoint file holds a model's tensors and, in the safetensors metadata, the resolved config (JSON), the
training step and the validation MSE: enough to rebuild the model with no other file. Nothing is unpickled on
load. Writes are atomic: a temporary file is written, flushed to disk and renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from odevideo.config import Config, upgrade_legacy, without_ignored_options
from odevideo.data.moving_mnist import as_float_frames
from odevideo.errors import CheckpointError, ConfigError
from odevideo.models import Generation, VideoModel
from odevideo.times import as_times

FORMAT = "odevideo/2"  # 1: odevideo 0.1 (one model section for every kind), upgraded on load
FORMATS = ("odevideo/1", FORMAT)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode, on its device), its config and metadata."""

    model: VideoModel
    config: Config
    path: Path
    step: int
    val_mse: float | None

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the first CUDA GPU when there is one, else the CPU; other names pass through, checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {str(device)!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    return device


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: Config, *, step: int,
                    val_mse: float | None = None) -> Path:
    """Write ``model``'s weights and ``config`` to ``path`` (a .safetensors file), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(config.to_dict()), "step": str(step),
            "val_mse": "" if val_mse is None else repr(float(val_mse))}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a run directory (its ``checkpoints/best.safetensors``, else ``last``), or the name
    of a shipped model (``odevideo models``) where no such file or directory exists."""
    from odevideo import pretrained

    path = Path(path)
    if not path.exists() and str(path) in pretrained.names():
        return pretrained.path(str(path))
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise CheckpointError(f"{path} is a directory without checkpoints/best.safetensors or last.safetensors")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (nor is it a shipped model: "
                              f"{', '.join(pretrained.names())})")
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint file or run directory, on ``device`` (``auto``: a GPU if present).

    Raises:
        CheckpointError: missing, truncated or corrupt file, or weights that do not fit the stored config.
    """
    from safetensors import SafetensorError, safe_open

    path = resolve_checkpoint(path)
    device = resolve_device(device)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {exc}") from None
    if meta.get("format") not in FORMATS or "config" not in meta:
        raise CheckpointError(f"{path} is a safetensors file but not an odevideo checkpoint (no config metadata)")
    try:
        tree = json.loads(meta["config"])
        config = Config.from_dict(upgrade_legacy(tree) if meta["format"] == "odevideo/1"
                                  else without_ignored_options(tree))
    except (json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an unreadable config: {exc}") from None
    model = config.build_model()
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {path} do not fit its config: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    val = meta.get("val_mse") or None
    return Checkpoint(model=model, config=config, path=path, step=int(meta.get("step", 0)),
                      val_mse=None if val is None else float(val))


@torch.no_grad()
def generate(model: VideoModel, frames: torch.Tensor, t_context: Sequence[float] | torch.Tensor,
             t_query: Sequence[float] | torch.Tensor) -> Generation:
    """Frames at ``t_query`` from context ``frames`` (B, M, C, H, W) observed at ``t_context``, in eval mode.

    ``frames`` may be uint8 (0..255) or float in [0, 1], on any device (they are moved to the model's); times
    are real numbers (frame index units), shared by the batch, (T,), or per sample, (B, T): samples with
    different times are still generated in one pass. The outputs stay on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    return model(as_float_frames(frames.to(device)), as_times(t_context).to(device), as_times(t_query).to(device))


def require_stochastic(model: VideoModel) -> None:
    """``ConfigError`` unless ``model`` draws its futures from a distribution (its ``stochastic`` property)."""
    if not model.stochastic:
        raise ConfigError("this model is deterministic (one future per context): samples need a stochastic "
                          "model (model.kind=latent_ode or latent_rnn with model.variational=true, "
                          "model.kind=latent_ode with model.noise_dim > 0, or "
                          "model.kind=objects with model.track_temperature > 0)")


@torch.no_grad()
def sample_futures(model: VideoModel, frames: torch.Tensor, t_context: Sequence[float] | torch.Tensor,
                   t_query: Sequence[float] | torch.Tensor, samples: int, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``samples`` draws of the frames at ``t_query``, (B, K, Tq, C, H, W), from a stochastic model: each
    draws its own z0 (from q(z0 | context) in a variational model, a set of tracks in an object model). Pass a
    seeded ``generator`` (on the model's device) to reproduce them.

    Raises:
        ConfigError: the model is deterministic (it has one future per context), or ``samples`` < 1.
    """
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    require_stochastic(model)
    model.eval()
    device = next(model.parameters()).device
    frames = as_float_frames(frames.to(device))
    b, k = frames.shape[0], samples
    t_context, t_query = as_times(t_context).to(device), as_times(t_query).to(device)
    repeat = (lambda t: t.repeat_interleave(k, 0) if t.ndim == 2 else t)  # noqa: E731
    out = model(frames.repeat_interleave(k, 0), repeat(t_context), repeat(t_query), generator=generator, sample=True)
    return out.frames.view(b, k, *out.frames.shape[1:])
