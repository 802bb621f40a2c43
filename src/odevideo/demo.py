"""``run_demo``: train a small model on 1-digit Moving MNIST and write pictures and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from odevideo.config import load_config
from odevideo.data.moving_mnist import as_float_frames
from odevideo.evaluate import evaluate, generate, load_test_sequences, write_json
from odevideo.train.checkpoint import load_checkpoint
from odevideo.train.run import train
from odevideo.visualize import comparison_grid, latent_plot, side_by_side, write_frames

N_TEST = 256  # demo test sequences (generated from MNIST test digits, seed 0)


@dataclass
class DemoResult:
    """Files the demo wrote and its headline numbers."""

    files: dict[str, Path]
    mse: float
    baselines: dict[str, float]


def run_demo(out_dir: str | Path = "odevideo-demo", *, minutes: float | None = None,
             progress: bool = True) -> DemoResult:
    """Train the ``demo`` config for ``minutes`` (default: the config's budget), then evaluate and plot."""
    out_dir = Path(out_dir)
    config = load_config("demo")
    if minutes is not None:
        config.train.max_minutes = minutes
    run = train(config, out_dir / "run", overwrite=True, progress=progress)
    ckpt = load_checkpoint(run.best)
    d = config.data
    seqs = load_test_sequences(digits=d.digits, n=N_TEST, seed=0, size=d.size, n_frames=d.n_frames)
    results = evaluate(ckpt.model, seqs, n_context=d.n_context, n_future=d.n_frames - d.n_context)
    results = {"checkpoint": str(ckpt.path), "config": "demo", "train_steps": run.steps,
               "train_seconds": round(run.seconds, 1), "test_set": f"{N_TEST} sequences, MovingMNIST('test', "
               f"digits={d.digits}, seed=0), built-in digits", **results}

    # Pictures: reconstruction of the context and extrapolation of the future, decoded at every frame time.
    shown = as_float_frames(torch.from_numpy(seqs[:8]))  # (8, T, 1, H, W)
    times = torch.arange(d.n_frames, dtype=torch.float32)
    out = generate(ckpt.model, shown[:, :d.n_context], times[:d.n_context], times)
    files = {
        "grid": comparison_grid(list(shown[:4]), list(out.frames[:4]), d.n_context, out_dir / "comparison.png"),
        "gif": write_frames(out_dir / "truth_vs_generated.gif", side_by_side(shown[0], out.frames[0]), fps=4),
        "latent": latent_plot(out.z_traj, d.n_context, out_dir / "latent_pca.png"),
        "checkpoint": ckpt.path,
        "metrics": write_json(out_dir / "metrics.json", results),
    }
    base = {name: float(res["mse"]) for name, res in results["baselines"].items()}  # type: ignore[union-attr]
    return DemoResult(files=files, mse=float(results["mse"]), baselines=base)  # type: ignore[arg-type]
