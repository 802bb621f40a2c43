"""Moving MNIST generation speed on one core: two-digit, 20-frame, 64x64 sequences per second.

    python benchmarks/generation.py [--seconds 10] [--batch 256]

Measures the uint8 frames the training stream ships (the trainer converts them to float on its device) and
the float32 frames of ``MovingMNIST.batch()``, with torch and numpy on one thread.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import provenance, write  # noqa: E402

from odevideo.data.moving_mnist import MovingMNIST  # noqa: E402


def rate(fn, batch: int, seconds: float) -> float:
    fn(np.arange(batch))  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(np.arange(done, done + batch))
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = MovingMNIST("train", digits=2, size=64, n_frames=20, seed=0)
    uint8 = rate(lambda idx: gen.batch(idx, as_float=False), args.batch, args.seconds)
    float32 = rate(lambda idx: gen.batch(idx), args.batch, args.seconds)
    result = {"benchmark": "generation", **provenance(),
              "setting": {"digits": 2, "size": 64, "frames": 20, "batch": args.batch, "threads": 1},
              "uint8_sequences_per_s": round(uint8), "float32_sequences_per_s": round(float32),
              "target_sequences_per_s": 5000}
    print(f"uint8: {uint8:.0f} seq/s   float32: {float32:.0f} seq/s   (target 5000)")
    print("wrote", write("generation.json", result))


if __name__ == "__main__":
    main()
