"""FVD and LPIPS of trained models and the baselines on one test set.

    python benchmarks/perceptual.py --digits 2 --n 256 --mnist-dir ../shared/data/mnist \
        --model objects=RUN_DIR --model latent_ode=RUN_DIR ...
    python benchmarks/perceptual.py --config balls --n 256 --model latent_ode=RUN_DIR ...
    python benchmarks/perceptual.py --config colour --set data.path=benchmarks/data/natural \
        --set data.cache_dir=benchmarks/data/natural_cache --model latent_ode=RUN_DIR ...

The test set is the first ``--n`` generated Moving MNIST test sequences (seed 0, 20 frames), or with
``--config`` the test split of that config's dataset (``--set`` overrides; a folder gives all its test clips,
at most ``--n``). For each model and for the
copy-last and zeros baselines: LPIPS per predicted frame (10 -> 10), averaged, and FVD between the true videos
and the generated ones, each video the 10 context frames followed by the 10 predicted ones (20 frames), over
``--n`` videos (odevideo.perceptual; protocols in the rows). The truth is embedded once for all. Needs the
metrics extra. Appends rows to benchmarks/results/perceptual.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import torch
from common import RESULTS, provenance

from odevideo.config import load_config
from odevideo.data.clips import as_float_frames
from odevideo.evaluation import BASELINES, baseline, load_test_sequences, test_split
from odevideo.inference import generate, load_checkpoint
from odevideo.perceptual import fvd as perceptual_fvd
from odevideo.perceptual import lpips as perceptual_lpips


def futures(name: str, model, context: torch.Tensor, times: torch.Tensor, batch: int = 32) -> torch.Tensor:  # noqa: ANN001
    """The 10 frames after each context (N, 10, C, H, W): a baseline's, or a model's at the recorded times."""
    out = []
    for i in range(0, len(context), batch):
        chunk, t = context[i:i + batch], times[i:i + batch]
        if model is None:
            out.append(baseline(name, chunk, t[:, :10], t[:, 10:20]))
        else:
            out.append(generate(model, chunk, t[:, :10], t[:, 10:20]).frames.cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--config", default=None, help="score on this config's test split instead")
    parser.add_argument("--set", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--model", action="append", default=[], help="NAME=checkpoint file or run directory")
    parser.add_argument("--sitting", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.config:
        data = load_config(args.config, args.set).data
        split = test_split(data, n=args.n, seed=None if data.kind == "folder" else 0, n_frames=20)
        seqs, times = as_float_frames(split["frames"]), split["times"].float()
        where = f"the test split of {data.path}" if data.kind == "folder" else f"generated {data.kind} test sequences"
        test_set = f"{len(seqs)} sequences, {where}, seed 0, 10 -> 10"
    else:
        seqs = as_float_frames(torch.from_numpy(load_test_sequences(digits=args.digits, n=args.n, seed=0,
                                                                    mnist_dir=args.mnist_dir)))
        times = torch.arange(20.0).expand(len(seqs), 20)
        test_set = (f"first {args.n} generated test sequences, seed 0, "
                    f"{'full MNIST test digits' if args.mnist_dir else 'built-in digits'}")
    n = len(seqs)
    context, truth = seqs[:, :10], seqs[:, 10:20]
    start = time.perf_counter()
    real = perceptual_fvd.embed(seqs[:, :20], progress=True)
    print(f"truth embedded in {time.perf_counter() - start:.0f} s")
    methods = {b: None for b in BASELINES}
    for spec in args.model:
        name, _, path = spec.partition("=")
        methods[name] = load_checkpoint(path)
    rows = []
    results = RESULTS / "perceptual.json"
    for name, ckpt in methods.items():
        start = time.perf_counter()
        # a discrete baseline trained on frame numbers (data.timestamps=false) sees frame numbers here too
        grid = ckpt is not None and ckpt.config.data.kind == "folder" and not ckpt.config.data.timestamps
        pred = futures(name, None if ckpt is None else ckpt.model, context,
                       torch.arange(20.0).expand(n, 20) if grid else times)
        lp = perceptual_lpips.lpips(pred, truth)
        fake = perceptual_fvd.embed(torch.cat([context, pred], 1), progress=True)
        score = perceptual_fvd.frechet_distance(real, fake)
        protocol = {"videos": n, "frames": 20, "frames_note": "10 context frames followed by 10 predicted",
                    "conventions": perceptual_fvd.CONVENTION}
        if n < perceptual_fvd.MIN_VIDEOS:
            protocol["warning"] = f"fewer than {perceptual_fvd.MIN_VIDEOS} videos: FVD is biased upwards and noisy"
        row = {"method": name, **({"config": args.config, "overrides": args.set} if args.config else
                                  {"digits": args.digits}),
               "fvd": score, "lpips": float(lp.mean()), "lpips_per_step": [float(v) for v in lp.mean(0)],
               "fvd_protocol": protocol, "lpips_convention": perceptual_lpips.CONVENTION, "test_set": test_set,
               "seconds": round(time.perf_counter() - start, 1), **provenance(),
               "date": datetime.date.today().isoformat(), **({"sitting": args.sitting} if args.sitting else {})}
        if ckpt is None:
            row["config_note"] = "a baseline: no model, no config (src/odevideo/evaluation.py)"
        else:
            row.update(checkpoint=str(ckpt.path), train_steps=ckpt.step, config_resolved=ckpt.config.to_dict())
        rows.append(row)
        old = json.loads(results.read_text()) if results.is_file() else []
        results.write_text(json.dumps([*old, row], indent=2) + "\n")  # row by row: a failure keeps the rest
        print(f"{name:28s} FVD {score:8.1f}  LPIPS {row['lpips']:.4f}  ({row['seconds']} s)")
    print(f"appended {len(rows)} rows to {results}")


if __name__ == "__main__":
    main()
