"""Training throughput: sequences/s, NFE per sequence and achieved GFLOP/s of one optimisation step.

    python benchmarks/throughput.py [--configs mmnist1 mmnist2] [--steps 20] [--warmup 3]

Runs the real training loss (``objective_loss``) with AdamW on batches from the training stream, on the
torch threads of this machine, for each config and objective, and writes benchmarks/results/throughput.json.
FLOPs are counted by ``torch.utils.flop_counter`` on one forward + backward pass.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import command, machine, train_flops_per_sequence, write

from odevideo.config import load_config
from odevideo.data.moving_mnist import MovingMNIST, as_float_frames
from odevideo.models import build_model
from odevideo.train.module import objective_loss


def measure(config_name: str, objective: str, steps: int, warmup: int) -> dict[str, object]:
    config = load_config(config_name, [f"train.objective={objective}"])
    d, tc = config.data, config.train
    torch.manual_seed(0)
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = MovingMNIST("train", digits=d.digits, size=d.size, n_frames=d.n_frames, seed=0)
    times = torch.arange(d.n_frames, dtype=torch.float32)

    def step(i: int) -> int:
        batch = gen.batch(np.arange(i * d.batch_size, (i + 1) * d.batch_size), as_float=False)
        frames = as_float_frames(batch["frames"])
        loss, _, out, _ = objective_loss(model, frames, times, n_context=d.n_context, objective=objective,
                                         loss=tc.loss, kl_weight=tc.kl_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return out.nfe

    flops_per_seq = train_flops_per_sequence(model, config)
    nfe = step(0)
    for i in range(warmup):
        step(1 + i)
    start = time.perf_counter()
    for i in range(steps):
        step(1 + warmup + i)
    seconds = time.perf_counter() - start
    seq_per_s = steps * d.batch_size / seconds
    return {"config": config_name, "objective": objective, "batch_size": d.batch_size,
            "params": sum(p.numel() for p in model.parameters()), "train_seq_per_s": round(seq_per_s, 2),
            "nfe_per_sequence": nfe, "train_gflop_per_seq": round(flops_per_seq / 1e9, 3),
            "gflops_per_s": round(flops_per_seq * seq_per_s / 1e9, 1), "steps_timed": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["mmnist1", "mmnist2"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name in args.configs:
        for objective in ("prediction", "reconstruction"):
            row = measure(name, objective, args.steps, args.warmup)
            print(row)
            rows.append(row)
    print("wrote", write("throughput.json", {"benchmark": "throughput", "command": command(),
                                            "machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
