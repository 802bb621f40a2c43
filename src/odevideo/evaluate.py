"""Generation and evaluation: run a model on context frames, score it and the baselines, write results.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from odevideo import metrics
from odevideo.data.moving_mnist import MovingMNIST, as_float_frames, load_standard
from odevideo.errors import DataError
from odevideo.models import Generation, VideoModel

BASELINES = ("copy_last", "zeros")


def _times(values: Sequence[float] | Sequence[Sequence[float]] | torch.Tensor) -> torch.Tensor:
    """Times as float32, (T,) or (B, T); a scalar becomes (1,)."""
    t = torch.as_tensor(values, dtype=torch.float32)
    return t.reshape(-1) if t.ndim < 2 else t


@torch.no_grad()
def generate(model: VideoModel, frames: torch.Tensor, t_context: Sequence[float] | torch.Tensor,
             t_query: Sequence[float] | torch.Tensor) -> Generation:
    """Frames at ``t_query`` from context ``frames`` (B, M, C, H, W) observed at ``t_context``, in eval mode.

    ``frames`` may be uint8 (0..255) or float in [0, 1]; times are real numbers (frame index units), shared by
    the batch, (T,), or per sample, (B, T): samples with different times are still generated in one pass.
    """
    model.eval()
    device = next(model.parameters()).device
    return model(as_float_frames(frames).to(device), _times(t_context).to(device), _times(t_query).to(device))


def baseline(name: str, context: torch.Tensor, n_future: int) -> torch.Tensor:
    """Baseline futures (B, n_future, C, H, W): ``copy_last`` repeats the last context frame, ``zeros`` is black."""
    last = context[:, -1:]
    if name == "copy_last":
        return last.expand(-1, n_future, -1, -1, -1)
    if name == "zeros":
        return torch.zeros_like(last).expand(-1, n_future, -1, -1, -1)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def evaluate(model: VideoModel, sequences: np.ndarray | torch.Tensor, *, n_context: int = 10, n_future: int = 10,
             batch_size: int = 64, progress: bool = False) -> dict[str, object]:
    """Score ``model`` and the baselines on the futures of ``sequences``.

    Args:
        model: a latent ODE.
        sequences: (N, T, C, H, W), uint8 or float in [0, 1], T >= n_context + n_future; the first
            ``n_context`` frames condition, the next ``n_future`` are the targets.
        n_context, n_future: frames to condition on and to predict.
        batch_size: sequences per forward pass.
        progress: print a progress bar to stderr.

    Returns:
        A JSON-ready dict: the model's metrics at the top level (``mse``, ``mse_per_pixel``, ``mae``, ``psnr``,
        ``ssim``, ``per_step``), ``nfe``, ``baselines`` with the same metrics for each baseline,
        ``n_sequences`` and the metric ``conventions``.
    """
    if sequences.ndim != 5:
        raise DataError(f"sequences must be (N, T, C, H, W), got shape {tuple(sequences.shape)}")
    n, t = sequences.shape[:2]
    if n_context < 1 or n_future < 1:
        raise DataError(f"n_context and n_future must be >= 1, got {n_context} and {n_future}")
    if n_context + n_future > t:
        raise DataError(f"n_context + n_future = {n_context + n_future} exceeds the {t} frames per sequence")
    times = torch.arange(n_context + n_future, dtype=torch.float32)
    per_frame: dict[str, dict[str, list[torch.Tensor]]] = {
        k: {m: [] for m in metrics.METRICS} for k in ("model", *BASELINES)}
    nfe = []
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluate", unit="batch")
    for i in starts:
        chunk = as_float_frames(torch.as_tensor(np.array(sequences[i:i + batch_size])))  # copy: may be a memmap
        context, target = chunk[:, :n_context], chunk[:, n_context:n_context + n_future]
        out = generate(model, context, times[:n_context], times[n_context:])
        nfe.append(out.nfe)
        preds = {"model": out.frames.cpu(), **{b: baseline(b, context, n_future) for b in BASELINES}}
        for key, pred in preds.items():
            for name, fn in metrics.METRICS.items():
                per_frame[key][name].append(fn(pred, target))
    result: dict[str, object] = {"n_sequences": int(n), "n_context": n_context, "n_future": n_future}
    result.update(metrics.summarize(per_frame["model"]))
    result["nfe"] = float(np.mean(nfe))
    result["baselines"] = {b: metrics.summarize(per_frame[b]) for b in BASELINES}
    result["conventions"] = metrics.CONVENTIONS
    return result


def load_test_sequences(*, test_file: str | Path | None = None, digits: int = 2, n: int = 1000, seed: int = 0,
                   size: int = 64, n_frames: int = 20, mnist_dir: str | Path | None = None) -> np.ndarray:
    """Test sequences uint8 (N, T, 1, H, W): from a file in the mnist_test_seq.npy layout, or generated from
    the test digits with ``digits``, ``n`` and ``seed``."""
    if test_file is not None:
        return load_standard(test_file)
    return MovingMNIST("test", digits=digits, size=size, n_frames=n_frames, seed=seed,
                       mnist_dir=mnist_dir).render_uint8(np.arange(n))[:, :, None]


def write_json(path: str | Path, payload: dict[str, object]) -> Path:
    """Write ``payload`` as indented JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
