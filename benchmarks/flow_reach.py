"""How far a warp model's flow reaches into the future, against how far the digit really moved (1 digit).

    python benchmarks/flow_reach.py --run NAME=benchmarks/runs/RUN_DIR [--run ...] --n 200 \
        --mnist-dir ../shared/data/mnist

For each future step of the standard 10 -> 10 protocol on the first N sequences of the 1-digit quality test set:
the mean length of the decoded flow on the pixels where the true frame shows the digit (> 0.5), and the true
displacement of the digit from the last context frame (the shift of its centre of mass). A flow shorter than
the displacement cannot move the digit far enough, and the composition fills in with the (blurry) drawn frame.
Writes benchmarks/results/flow_reach.json.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import provenance, write
from quality import test_file

from odevideo.data.moving_mnist import as_float_frames, load_standard
from odevideo.inference import generate, load_checkpoint


def centre_of_mass(frames: torch.Tensor) -> torch.Tensor:
    """(N, T, 1, H, W) -> (N, T, 2) centre of mass (x, y) in pixels."""
    h, w = frames.shape[-2:]
    mass = frames.sum(dim=(-1, -2, -3)).clamp_min(1e-6)
    x = (frames.sum(dim=(-2, -3)) * torch.arange(w, dtype=frames.dtype)).sum(-1) / mass
    y = (frames.sum(dim=(-1, -3)) * torch.arange(h, dtype=frames.dtype)).sum(-1) / mass
    return torch.stack([x, y], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="NAME=run directory of a warp model")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--mnist-dir", default=None)
    args = parser.parse_args()
    frames = load_standard(test_file(1, args.mnist_dir, 1000, 0))[:args.n]
    frames = as_float_frames(torch.from_numpy(np.ascontiguousarray(frames)))  # (N, 20, 1, 64, 64)
    truth = frames[:, 10:]
    moved = (centre_of_mass(truth) - centre_of_mass(frames[:, 9:10])).norm(dim=-1).mean(0)
    rows = {}
    for spec in args.run:
        name, path = spec.split("=", 1)
        model = load_checkpoint(path).model.eval()
        with torch.no_grad():
            out = generate(model, frames[:, :10], range(10), range(10, 20))
        if out.flow is None:
            raise SystemExit(f"{name}: not a warp model (model.output=warp), it has no flow")
        on = (truth[:, :, 0] > 0.5).float()  # (N, T, H, W)
        length = (out.flow.norm(dim=2) * on).sum(dim=(0, 2, 3)) / on.sum(dim=(0, 2, 3)).clamp_min(1)
        rows[name] = {"run": path, "flow_on_digit_px": [round(float(v), 2) for v in length]}
        print(name, "flow on the digit:", rows[name]["flow_on_digit_px"])
    print("true displacement:", [round(float(v), 2) for v in moved])
    path = write("flow_reach.json", {"sequences": args.n, "true_displacement_px": [round(float(v), 2) for v in moved],
                                     "models": rows, **provenance()})
    print("wrote", path)


if __name__ == "__main__":
    main()
