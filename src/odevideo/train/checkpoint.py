"""Checkpoints: safetensors weights that describe themselves.

A checkpoint file holds the model's tensors and, in the safetensors metadata, the resolved config (JSON),
the training step and the validation MSE, which is enough to rebuild the model with no other file. Nothing
is unpickled on load. Writes are atomic: a temporary file is written, flushed to disk and renamed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from odevideo.config import Config
from odevideo.errors import CheckpointError, ConfigError
from odevideo.models import VideoModel, build_model


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), its config and metadata."""

    model: VideoModel
    config: Config
    path: Path
    step: int
    val_mse: float | None


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: Config, *, step: int,
                    val_mse: float | None = None) -> Path:
    """Write ``model``'s weights and ``config`` to ``path`` (a .safetensors file), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "odevideo/1", "config": json.dumps(config.to_dict()), "step": str(step),
            "val_mse": "" if val_mse is None else repr(float(val_mse))}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its ``checkpoints/best.safetensors``, else ``last``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise CheckpointError(f"{path} is a directory without checkpoints/best.safetensors or last.safetensors")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint file or run directory.

    Raises:
        CheckpointError: missing, truncated or corrupt file, or weights that do not fit the stored config.
    """
    from safetensors import SafetensorError, safe_open

    path = resolve_checkpoint(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {exc}") from None
    if meta.get("format") != "odevideo/1" or "config" not in meta:
        raise CheckpointError(f"{path} is a safetensors file but not an odevideo checkpoint (no config metadata)")
    try:
        config = Config.from_dict(json.loads(meta["config"]))
    except (json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an unreadable config: {exc}") from None
    model = build_model(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {path} do not fit its config: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    val = meta.get("val_mse") or None
    return Checkpoint(model=model, config=config, path=path, step=int(meta.get("step", 0)),
                      val_mse=None if val is None else float(val))
