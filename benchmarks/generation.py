"""Generation speed: the data (Moving MNIST sequences drawn per second, one core) and the models (future
frames generated per second by each shipped model, all cores).

    python benchmarks/generation.py [--seconds 10] [--batch 256] [--models mmnist1 mmnist2 balls natural]
                                    [--model-batch 64] [--skip-data] [--results generation.json]

Data: the uint8 frames the training stream ships (the trainer converts them to float on its device) and the
float32 frames of ``MovingMNIST.batch()``, with torch and numpy on one thread. Models (on ``--model-threads``,
default every core): ``odevideo.generate``
of 10 future frames from 10 context frames of their own test data, ``--model-batch`` sequences a call, the
best of 3 calls after a warm-up, in frames/s and seconds per 1,000 sequences.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import provenance, write  # noqa: E402

from odevideo.data.moving_mnist import MovingMNIST  # noqa: E402

ROOT = Path(__file__).resolve().parent


def rate(fn, batch: int, seconds: float) -> float:
    fn(np.arange(batch))  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(np.arange(done, done + batch))
        done += batch
    return done / (time.perf_counter() - start)


def model_rate(name: str, batch: int) -> dict[str, float]:
    """Future frames/s of the shipped model ``name`` generating 10 frames from 10, ``batch`` sequences a call."""
    from odevideo.evaluation import test_split
    from odevideo.inference import generate, load_checkpoint

    ckpt = load_checkpoint(name)
    data = ckpt.config.data
    if data.kind == "folder":  # a folder model: the natural-video benchmark's test clips (natural_clips.py)
        data = dataclasses.replace(data, path=str(ROOT / "data" / "natural"),
                                   cache_dir=str(ROOT / "data" / "natural_cache"))
    frames = test_split(data, n=batch, n_frames=20)["frames"]
    context = torch.as_tensor(np.asarray(frames[:, :10])).float() / 255
    t_context = torch.arange(10.0).expand(len(context), -1)
    t_query = torch.arange(10.0, 20.0).expand(len(context), -1)
    generate(ckpt.model, context, t_context, t_query)  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        generate(ckpt.model, context, t_context, t_query)
        best = min(best, time.perf_counter() - start)
    n = len(context)
    return {"kind": ckpt.config.model.kind, "batch": n, "seconds_per_call": round(best, 4),
            "frames_per_s": round(10 * n / best, 1), "seconds_per_1000_sequences": round(1000 * best / n, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--models", nargs="*", default=["mmnist1", "mmnist2", "balls", "natural"])
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--model-threads", type=int, default=os.cpu_count(), help="torch threads for the models")
    parser.add_argument("--skip-data", action="store_true", help="measure the models only")
    parser.add_argument("--results", default="generation.json")
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "generation", **provenance(),
                                 "config_note": "each row is a shipped model, with its own config (odevideo info NAME)"}
    if not args.skip_data:
        torch.set_num_threads(1)
        gen = MovingMNIST("train", digits=2, size=64, n_frames=20, seed=0)
        uint8 = rate(lambda idx: gen.batch(idx, as_float=False), args.batch, args.seconds)
        float32 = rate(lambda idx: gen.batch(idx), args.batch, args.seconds)
        result.update({"setting": {"digits": 2, "size": 64, "frames": 20, "batch": args.batch, "threads": 1},
                       "uint8_sequences_per_s": round(uint8), "float32_sequences_per_s": round(float32),
                       "target_sequences_per_s": 5000})
        print(f"uint8: {uint8:.0f} seq/s   float32: {float32:.0f} seq/s   (target 5000)")
    threads = args.model_threads
    torch.set_num_threads(threads)
    models = {}
    for name in args.models:
        models[name] = model_rate(name, args.model_batch)
        print(f"{name:8s} {models[name]['frames_per_s']:8.0f} future frames/s, "
              f"{models[name]['seconds_per_1000_sequences']:.2f} s per 1,000 sequences")
    result["models"] = {"threads": threads, "context": 10, "future": 10, "rows": models}
    print("wrote", write(args.results, result))


if __name__ == "__main__":
    main()
