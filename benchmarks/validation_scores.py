"""MSE and LPIPS of runs on a config's validation split (the split design choices are made on).

    python benchmarks/validation_scores.py --config balls --run NAME=RUN_DIR ...
    python benchmarks/validation_scores.py --config natural64 --set data.path=benchmarks/data/natural \
        --run new=RUN_DIR --run shipped=natural

The first ``--n`` validation sequences (synthetic data: their own seed; a folder: its validation windows, at
most ``--n``), 10 -> 10, and copy-last on the same sequences. With ``--k K``, a stochastic model also draws K
futures per sequence (generator seeded 0): the best of K (per sequence, the draw of least MSE), the mean of K
and the diversity (the per-frame sum of squared differences between two draws, averaged over pairs).

A run is a run directory, a checkpoint file or a shipped model's name. Train options removed since a run was
made (``train.difference_weight``, code at 4cc7e70) are dropped when its checkpoint is read, and options added
since take the values the run had.
Prints one line a run.
"""

from __future__ import annotations

import argparse
import json

import torch
from safetensors import safe_open

from odevideo import metrics
from odevideo.config import Config, load_config, without_ignored_options
from odevideo.inference import generate, resolve_checkpoint, sample_futures
from odevideo.perceptual.lpips import lpips

REMOVED_TRAIN = ("difference_weight",)


def load(run: str) -> torch.nn.Module:
    with safe_open(str(resolve_checkpoint(run)), framework="pt") as f:
        tree = json.loads(f.metadata()["config"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    for key in REMOVED_TRAIN:
        tree["train"].pop(key, None)
    model = Config.from_dict(without_ignored_options(tree)).build_model()  # older runs: the options they had
    model.load_state_dict(tensors)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="balls")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--run", action="append", default=[], help="NAME=run directory, file or shipped name")
    parser.add_argument("--set", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--k", type=int, default=1, help="futures drawn per sequence from stochastic models")
    args = parser.parse_args()
    source = load_config(args.config, args.set).data.open("val")
    n = args.n if source.count is None else min(args.n, source.count)
    batch = source.batch(range(n))
    frames, times = batch["frames"], batch["times"]
    copy = frames[:, 9:10].expand(-1, 10, -1, -1, -1)
    mse = metrics.score({"c": copy}, frames[:, 10:20])["c"]["mse"].mean()
    print(f"copy-last: validation MSE {float(mse):.2f}, LPIPS {float(lpips(copy, frames[:, 10:20]).mean()):.4f} "
          f"({n} sequences)")
    for spec in args.run:
        name, _, path = spec.partition("=")
        model = load(path)
        out = torch.cat([generate(model, frames[i:i + 64, :10], times[i:i + 64, :10], times[i:i + 64, 10:20]).frames
                         for i in range(0, n, 64)])
        mse = metrics.score({"m": out}, frames[:, 10:20])["m"]["mse"].mean()
        print(f"{name}: validation MSE {float(mse):.2f}, LPIPS {float(lpips(out, frames[:, 10:20]).mean()):.4f}")
        if args.k > 1 and model.stochastic:
            generator = torch.Generator().manual_seed(0)
            draws = torch.cat([sample_futures(model, frames[i:i + 64, :10], times[i:i + 64, :10],
                                              times[i:i + 64, 10:20], args.k, generator=generator)
                               for i in range(0, n, 64)])  # (N, K, 10, C, H, W)
            per_draw = (draws - frames[:, None, 10:20]).pow(2).flatten(3).sum(-1).mean(-1)  # (N, K)
            pairs = [(a, b) for a in range(args.k) for b in range(a + 1, args.k)]
            spread = torch.stack([(draws[:, a] - draws[:, b]).pow(2).flatten(2).sum(-1).mean() for a, b in pairs])
            print(f"{name}: best of {args.k} {float(per_draw.min(1).values.mean()):.2f}, mean of {args.k} "
                  f"{float(per_draw.mean()):.2f}, diversity {float(spread.mean()):.2f}")


if __name__ == "__main__":
    main()
