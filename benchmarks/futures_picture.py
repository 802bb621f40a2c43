"""A picture of long futures: the truth above each model's frames, for a few test sequences (issue 23).

    python benchmarks/futures_picture.py --config balls --n-future 30 --model "latent ODE=RUN" \\
        --model SimVP=RUN --out balls_futures.png
    python benchmarks/futures_picture.py --config natural64 --set data.path=benchmarks/data/natural \\
        --n-future 30 --model ... --out natural_futures.png

Sequences come from the dataset's test split (seed 0 for synthetic data; a folder's test files), 10 context
frames then ``--n-future`` frames. Rows, top to bottom for each sequence: the truth, then each ``--model`` in
the order given; a red bar marks the end of the context. Every frame is shown (``--every`` thins long futures).
The PNG goes under benchmarks/results/, with a line per model of its MSE on the sequences shown.
"""

from __future__ import annotations

import argparse

import torch
from common import RESULTS

from odevideo.config import load_config
from odevideo.data.clips import as_float_frames
from odevideo.evaluation import test_split
from odevideo.inference import generate, load_checkpoint
from odevideo.visualize import comparison_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="balls")
    parser.add_argument("--set", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--model", action="append", required=True, help="NAME=run directory, file or shipped name")
    parser.add_argument("--n-future", type=int, default=30)
    parser.add_argument("--sequences", default="0,1,2", help="indices into the test split")
    parser.add_argument("--every", type=int, default=1, help="show every k-th frame")
    parser.add_argument("--out", required=True, help="PNG file name under benchmarks/results/")
    args = parser.parse_args()

    data = load_config(args.config, args.set).data
    m = data.n_context
    pick = [int(i) for i in args.sequences.split(",")]
    split = test_split(data, n=max(pick) + 1, seed=None if data.kind == "folder" else 0, n_frames=m + args.n_future)
    frames = as_float_frames(torch.as_tensor(split["frames"][pick]))
    times = torch.as_tensor(split["times"][pick]).float()
    shown = list(range(0, m + args.n_future, args.every))
    truth = [seq[shown] for seq in frames]
    rows: list[list[torch.Tensor]] = [[] for _ in pick]
    for spec in args.model:
        name, _, where = spec.partition("=")
        model = load_checkpoint(where).model
        out = generate(model, frames[:, :m], times[:, :m], times[:, m:]).frames.clamp(0, 1)
        full = torch.cat([frames[:, :m], out], dim=1)
        mse = (out - frames[:, m:]).pow(2).sum(dim=(2, 3, 4)).mean()
        print(f"{name}: MSE {float(mse):.1f} per frame over the {len(pick)} sequences shown, frames "
              f"{m}..{m + args.n_future - 1}")
        for i, seq in enumerate(full):
            rows[i].append(seq[shown])
    path = comparison_grid(truth, rows, sum(i < m for i in shown), RESULTS / args.out)  # context frames shown
    print(f"wrote {path} (rows per sequence: truth, {', '.join(s.partition('=')[0] for s in args.model)})")


if __name__ == "__main__":
    main()
