"""odevideo: video generation with a Neural ODE in latent space.

The public API::

    from odevideo import load_checkpoint, generate, evaluate, MovingMNIST

    ckpt = load_checkpoint("runs/demo")                         # a run directory or a .safetensors file
    batch = MovingMNIST("test", digits=1).batch(range(8))       # frames (8, 20, 1, 64, 64), times (8, 20)
    out = generate(ckpt.model, batch["frames"][:, :10], range(10), [9.5, 10, 12.25, 30])
    out.frames                                                  # (8, 4, 1, 64, 64) at those real times
"""

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "Config": "odevideo.config", "load_config": "odevideo.config",
    "MovingMNIST": "odevideo.data.moving_mnist", "load_standard": "odevideo.data.moving_mnist",
    "read_frames": "odevideo.data.videos",
    "LatentODE": "odevideo.models", "build_model": "odevideo.models", "Generation": "odevideo.models",
    "VideoModel": "odevideo.models", "LatentView": "odevideo.models",
    "solve": "odevideo.ode", "ODESolution": "odevideo.ode",
    "generate": "odevideo.inference", "load_checkpoint": "odevideo.inference",
    "save_checkpoint": "odevideo.inference",
    "evaluate": "odevideo.evaluation", "load_test_sequences": "odevideo.evaluation",
    "train": "odevideo.training.run",
    "comparison_grid": "odevideo.visualize", "latent_plot": "odevideo.visualize", "plot_latent": "odevideo.visualize",
    "write_frames": "odevideo.visualize", "side_by_side": "odevideo.visualize",
    "run_demo": "odevideo.demo",
}
__all__ = sorted(_EXPORTS)  # no name here is also a submodule's: `from odevideo import evaluate` is the function


def __getattr__(name: str) -> Any:  # lazy: `import odevideo` stays cheap, torch loads on first use
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'odevideo' has no attribute {name!r}")
