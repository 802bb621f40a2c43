"""``run_demo``: train a small model on 1-digit Moving MNIST and write pictures and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from odevideo.config import load_config
from odevideo.data.moving_mnist import as_float_frames
from odevideo.evaluation import evaluate, load_test_sequences, write_json
from odevideo.inference import generate, load_checkpoint
from odevideo.models import LatentView
from odevideo.training.run import train
from odevideo.visualize import comparison_grid, html_report, plot_latent, side_by_side, write_frames

N_TEST = 256  # demo test sequences (generated from MNIST test digits, seed 0)
N_SHOWN = 8  # sequences in the latent plot; the first 4 are in the grid, the first in the GIF


@dataclass
class DemoResult:
    """Files the demo wrote and its headline numbers."""

    files: dict[str, Path]
    mse: float
    baselines: dict[str, float]


def run_demo(out_dir: str | Path = "odevideo-demo", *, steps: int | None = None, overrides: tuple[str, ...] = (),
             n_test: int = N_TEST, progress: bool = True) -> DemoResult:
    """Train the ``demo`` config for ``steps`` (default: the config's), then evaluate and plot. The run is
    step-bound, so its result does not depend on the machine's speed, only its duration does.

    Args:
        out_dir: where the pictures, ``metrics.json`` and the run directory ``run/`` go.
        steps: training steps; default the demo config's ``train.max_steps``.
        overrides: ``section.key=value`` overrides of the demo config.
        n_test: test sequences to score.
        progress: show progress bars.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    config = load_config("demo", [*overrides, *([f"train.max_steps={steps}"] if steps is not None else [])])
    run = train(config, out_dir / "run", overwrite=True, progress=progress)
    ckpt = load_checkpoint(run.best)
    d = config.data
    seqs = load_test_sequences(digits=d.digits, n=n_test, seed=0, size=d.size, digit_size=d.digit_size,
                               n_frames=d.n_frames)
    results = evaluate(ckpt.model, seqs, n_context=d.n_context, n_future=d.n_frames - d.n_context,
                       progress=progress)
    results = {"checkpoint": str(ckpt.path), "config": "demo", "model_kind": config.model.kind,
               "train_steps": run.steps, "train_seconds": round(run.seconds, 1),
               "test_set": f"{n_test} sequences, MovingMNIST('test', digits={d.digits}, seed=0), built-in digits",
               **results}

    # Pictures: reconstruction of the context and extrapolation of the future, decoded at every frame time.
    shown = as_float_frames(torch.from_numpy(seqs[:N_SHOWN]))  # (8, T, 1, H, W)
    times = torch.arange(d.n_frames, dtype=torch.float32)
    out = generate(ckpt.model, shown[:, :d.n_context], times[:d.n_context], times)
    generated = out.frames.cpu()
    files = {
        "grid": comparison_grid(list(shown[:4]), list(generated[:4]), d.n_context, out_dir / "comparison.png"),
        "gif": write_frames(out_dir / "truth_vs_generated.gif", side_by_side(shown[0], generated[0]), fps=4),
        "latent": latent_picture(ckpt.model.latent_view(out), shown, d.n_context, out_dir),
        "checkpoint": ckpt.path,
    }
    results["seconds_total"] = round(time.perf_counter() - start, 1)  # training, scoring and drawing
    files["metrics"] = write_json(out_dir / "metrics.json", results)
    files["report"] = html_report(
        out_dir / "report.html", title="odevideo demo: 1-digit Moving MNIST",
        intro=f"The model (kind {config.model.kind}) after {run.steps} training steps on the demo config, scored on "
              f"{n_test} test sequences ({d.n_context} frames in, {d.n_frames - d.n_context} predicted) beside "
              "copying the last context frame and predicting black frames.",
        pictures={"Per sequence, the truth (top) and the model (bottom); left of the red bar the context, right "
                  "of it the prediction.": files["grid"],
                  "One sequence: truth (left) and generated (right).": files["gif"],
                  "The latent path.": files["latent"]}, results=results)
    base = {name: float(res["mse"]) for name, res in results["baselines"].items()}  # type: ignore[union-attr]
    return DemoResult(files=files, mse=float(results["mse"]), baselines=base)  # type: ignore[arg-type]


def latent_picture(view: LatentView | None, frames: torch.Tensor, n_context: int, out_dir: Path) -> Path | None:
    """The picture of a model's latent path (:func:`~odevideo.visualize.plot_latent`): ``latent_poses.png``
    for object tracks, ``latent_pca.png`` for principal components; ``None`` for a model without a latent."""
    if view is None:
        return None
    return plot_latent(view, frames, n_context, out_dir / f"latent_{'poses' if view.kind == 'tracks' else 'pca'}.png")
