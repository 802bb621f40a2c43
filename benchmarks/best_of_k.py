"""Best of K: how close the closest of K sampled futures comes, for stochastic models beside deterministic ones.

    python benchmarks/best_of_k.py --digits 2 --n 256 --k 10 --mnist-dir ../shared/data/mnist \
        --model objects=RUN_DIR --model latent_ode_variational=RUN_DIR --model latent_ode=RUN_DIR

For each model, on the first ``--n`` generated Moving MNIST test sequences (seed 0, 10 -> 10): the scores of
its one plain prediction (z0's mean, or an object model's best tracks) and, if it is stochastic, those of
``--k`` futures drawn with a generator seeded ``--sample-seed``: the best of K per sequence (SVG/SAVP), the
mean over the K, and their diversity (:func:`odevideo.evaluation.evaluate`). A deterministic model has only
the plain row: its best of K would be its one prediction. ``--temperature T`` draws an object model's tracks
at ``model.track_temperature`` T (recorded in the row's config). Rows go to benchmarks/results/best_of_k.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import time

import torch
from common import RESULTS, provenance

from odevideo.evaluation import evaluate, load_test_sequences
from odevideo.inference import load_checkpoint
from odevideo.perceptual import lpips as perceptual_lpips

SCORES = ("mse", "ssim", "psnr", "lpips")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--k", type=int, default=10, help="samples per sequence")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--model", action="append", default=[], help="NAME=checkpoint file or run directory")
    parser.add_argument("--temperature", type=float, default=None,
                        help="draw an object model's tracks at this model.track_temperature instead of its own")
    parser.add_argument("--sitting", default=None)
    args = parser.parse_args()
    seqs = load_test_sequences(digits=args.digits, n=args.n, seed=0, mnist_dir=args.mnist_dir)
    perceptual = perceptual_lpips.available()
    rows = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        ckpt = load_checkpoint(path)
        if args.temperature is not None and ckpt.config.model.kind != "objects":
            parser.error(f"--temperature applies to object models only; {name} is {ckpt.config.model.kind}")
        if args.temperature is not None:
            ckpt.model.config = dataclasses.replace(ckpt.model.config, track_temperature=args.temperature)
            ckpt.config = dataclasses.replace(ckpt.config, model=ckpt.model.config)
        stochastic = ckpt.model.stochastic
        start = time.perf_counter()
        torch.manual_seed(0)
        result = evaluate(ckpt.model, seqs, perceptual=perceptual, samples=args.k if stochastic else 1,
                          generator=torch.Generator().manual_seed(args.sample_seed), progress=True)
        row = {"method": name, "digits": args.digits, "stochastic": stochastic,
               "plain": {s: result[s] for s in SCORES if s in result},
               "plain_per_step_mse": result["per_step"]["mse"],
               "copy_last": {s: result["baselines"]["copy_last"][s] for s in SCORES if s in result},
               "k": args.k if stochastic else 1, "sample_seed": args.sample_seed,
               **({"samples": result["samples"]} if stochastic else
                  {"samples_note": "deterministic: one future per context, so its best of K is its plain row"}),
               "conventions": result["conventions"],
               "test_set": f"first {args.n} generated test sequences, seed 0, 10 -> 10, "
                           f"{'full MNIST test digits' if args.mnist_dir else 'built-in digits'}",
               "checkpoint": str(ckpt.path), "train_steps": ckpt.step, "config_resolved": ckpt.config.to_dict(),
               "seconds": round(time.perf_counter() - start, 1), **provenance(),
               "date": datetime.date.today().isoformat(), **({"sitting": args.sitting} if args.sitting else {})}
        rows.append(row)
        line = f"{name:28s} plain MSE {result['mse']:7.2f}"
        if stochastic:
            s = result["samples"]
            line += (f"  best of {args.k} {s['best_of_k']['mse']:7.2f}  mean of {args.k} {s['mean_of_k']['mse']:7.2f}"
                     f"  diversity {s['diversity']['mse_between_samples']:6.2f}")
        print(f"{line}  ({row['seconds']} s)", flush=True)
    path = RESULTS / "best_of_k.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(old + rows, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
