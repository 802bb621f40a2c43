"""Where evaluation spends its time, on a test file in the layout of Srivastava's ``mnist_test_seq.npy``
(10,000 two-digit sequences, 20 frames, 10 -> 10), as ``odevideo evaluate --test-file`` reads it.

    python benchmarks/evaluation.py [--checkpoint mmnist2] [--test-file PATH] [--n 10000] [--batch-size 32]
                                    [--fvd-videos 256] [--results evaluation.json]

The standard file cannot be downloaded here: unless ``--test-file`` names one that exists, ``--n`` two-digit
sequences are generated from the MNIST test digits (seed 0) and written in its layout ((T, N, H, W) uint8,
time first) to ``--test-file`` (default: a temporary folder), the same shape, type and reading path. The file
is then scored twice by ``odevideo.evaluate``: cold (a fresh cache: the baselines are scored, LPIPS where
installed) and warm (the baselines' scores read back from the cache, as for every later model on that file).
Each run records its wall time split into hashing, generating, pixel metrics and LPIPS, and the peak memory.
With ``--fvd-videos N``, FVD's cost is measured on N 20-frame videos: seconds a video for the I3D features,
against the matmul floor (the I3D's FLOPs a video at the box's measured matmul rate).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import provenance, write

from odevideo.data.moving_mnist import MovingMNIST, load_standard
from odevideo.evaluation import evaluate
from odevideo.inference import load_checkpoint


def test_file(path: Path, n: int, mnist_dir: str | None, chunk: int = 500) -> Path:
    """``path``, written first (``n`` generated sequences, a chunk at a time, so that this process's peak
    memory is evaluate's) unless it exists."""
    if not path.is_file():
        print(f"writing {n} generated 2-digit sequences in the mnist_test_seq.npy layout to {path}", flush=True)
        out = None
        for start in range(0, n, chunk):
            seqs = MovingMNIST("test", digits=2, seed=0, mnist_dir=mnist_dir).render_uint8(
                np.arange(start, min(n, start + chunk)))  # (B, T, H, W)
            if out is None:
                out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(seqs.shape[1], n,
                                                                                       *seqs.shape[2:]))
            out[:, start:start + len(seqs)] = seqs.swapaxes(0, 1)
        out.flush()
        del out
    return path


def scored(model: torch.nn.Module, path: Path, cache: Path, batch_size: int) -> dict[str, object]:
    sequences = load_standard(path)  # memory-mapped: evaluate reads it a batch at a time
    start = time.perf_counter()
    result = evaluate(model, sequences, batch_size=batch_size, progress=True, cache=cache)
    seconds = {k: round(v, 2) for k, v in result["seconds"].items()}  # type: ignore[union-attr]
    scoring = sum(v for k, v in seconds.items() if k in ("pixels", "lpips"))
    return {"seconds_total": round(time.perf_counter() - start, 2), "seconds": seconds,
            "seconds_pixels_and_lpips": round(scoring, 2),
            "scoring_over_generating": round(scoring / seconds["generate"], 3),
            "baselines_cached": result["baselines_cached"], "mse": round(float(result["mse"]), 3),
            "lpips": round(float(result["lpips"]), 4) if "lpips" in result else None,
            "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_memory_note": "the process's peak resident set (ru_maxrss), which counts the pages of the "
                                "memory-mapped test file read so far (file-backed: the kernel can drop them)"}


def fvd_cost(videos: np.ndarray) -> dict[str, object]:
    """Seconds a 20-frame video for I3D features (after a warm-up), the FLOPs a video and the matmul floor."""
    from common import flop_counter, matmul_peak

    from odevideo.perceptual import fvd

    clips = torch.from_numpy(np.array(videos)).float() / 255
    fvd.embed(clips[:2])  # warm-up (loads the weights)
    start = time.perf_counter()
    fvd.embed(clips)
    per_video = (time.perf_counter() - start) / len(clips)
    with flop_counter() as count:
        fvd.embed(clips[:1])
    rate = matmul_peak() * 1e9
    return {"videos": len(clips), "frames": clips.shape[1], "seconds_per_video": round(per_video, 4),
            "gflop_per_video": round(count.get_total_flops() / 1e9, 2), "matmul_gflops": round(rate / 1e9, 1),
            "floor_seconds_per_video": round(count.get_total_flops() / rate, 4),
            "over_floor": round(per_video * rate / count.get_total_flops(), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="mmnist2")
    parser.add_argument("--test-file", default=None)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fvd-videos", type=int, default=0)
    parser.add_argument("--results", default="evaluation.json")
    args = parser.parse_args()
    model = load_checkpoint(args.checkpoint).model
    with tempfile.TemporaryDirectory() as tmp:
        path = test_file(Path(args.test_file or Path(tmp) / "mnist_test_seq.npy"), args.n, args.mnist_dir)
        n = load_standard(path).shape[0]
        cache = Path(tmp) / "cache"
        runs = {"cold": scored(model, path, cache, args.batch_size)}
        runs["warm"] = scored(model, path, cache, args.batch_size)
        for name, row in runs.items():
            print(f"{name}: {row}", flush=True)
        result = {"benchmark": "evaluation", **provenance(), "checkpoint": args.checkpoint,
                  "config_note": f"the checkpoint's own config (odevideo info {args.checkpoint})",
                  "test_file": args.test_file or f"generated: {n} two-digit sequences, seed 0, mnist_test_seq layout",
                  "n_sequences": n, "batch_size": args.batch_size, "threads": torch.get_num_threads(), **runs}
        if args.fvd_videos:
            result["fvd"] = fvd_cost(load_standard(path)[:args.fvd_videos])
            print("fvd:", result["fvd"])
    print("wrote", write(args.results, result))


if __name__ == "__main__":
    main()
