"""Quality after a fixed training budget, on a fixed test set.

    python benchmarks/quality.py --config mmnist2 --objective prediction --minutes 15 \
        --mnist-dir ../shared/data/mnist
    python benchmarks/quality.py --config balls --minutes 5 --horizons 10,30 --results balls.json
    python benchmarks/quality.py --config colour --set data.path=DIR --minutes 30 --results natural.json
    python benchmarks/quality.py --table [--minutes 30] [--sitting NAME]   # print the table of quality.json

Each call trains ONE model (so a table can be built over several sittings), evaluates its best checkpoint
and appends a row to benchmarks/results/quality.json (or ``--results``). On Moving MNIST the test set is 1000
sequences (20 frames, 10 -> 10, MNIST test digits, seed 0), written once in the (T, N, H, W) uint8 layout of
mnist_test_seq.npy and read back through the standard reader; on other data it is the dataset's test split
(the first 1000 generated sequences, seed 0, or a folder's held-out files), at every horizon of
``--horizons`` (frames predicted after the context; the first is the row's, the others go in ``horizons``).
The budget counts process CPU time by default (``--clock process``: all threads summed, so it measures work
even on a busy machine). ``--sitting NAME`` tags the row, so rows run back
to back (one after the other on an idle machine) can be tabled together with ``--table --sitting NAME``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, flop_counter, provenance, train_flops_per_sequence

from odevideo.config import load_config
from odevideo.data.moving_mnist import load_standard, save_standard
from odevideo.evaluation import evaluate, load_test_sequences, test_split
from odevideo.inference import generate, load_checkpoint
from odevideo.training.run import train

ROOT = Path(__file__).resolve().parent
TABLE_KEYS = ("model", "objective", "digits", "minutes", "params", "mse", "mae", "ssim", "psnr",
              "train_seq_per_s", "gflops_per_s", "nfe")


def test_file(digits: int, mnist_dir: str | None, n: int, seed: int) -> Path:
    """The fixed test set, written once in the standard layout."""
    tag = "full" if mnist_dir else "builtin"
    path = ROOT / "data" / f"mmnist{digits}_test_{tag}_n{n}_seed{seed}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_standard(path, load_test_sequences(digits=digits, n=n, seed=seed, mnist_dir=mnist_dir))
    return path


def inference_flops_per_frame(model: torch.nn.Module, size: int, n_context: int = 10) -> float:
    """FLOPs to generate one frame: a context -> 10 forward pass on one sequence, divided by 10 (torch's flop
    counter, with ``grid_sample`` counted: ``common.flop_counter``)."""
    frames = torch.rand(1, n_context, model.channels, size, size)
    with flop_counter() as counter:
        generate(model, frames, torch.arange(float(n_context)), torch.arange(n_context, n_context + 10.0))
    return counter.get_total_flops() / 10


def score(model: torch.nn.Module, config, args: argparse.Namespace) -> tuple[dict, dict, str]:  # noqa: ANN001
    """The row's scores (first horizon), the scores at the other horizons, and the test set's description."""
    d = config.data
    horizons = [int(h) for h in args.horizons.split(",")] if args.horizons else [d.n_frames - d.n_context]
    if d.kind == "moving_mnist" and horizons == [10]:
        path = test_file(d.digits, args.mnist_dir, args.n_test, 0)
        scores = evaluate(model, load_standard(path), n_context=10, n_future=10)
        return scores, {}, (f"{path.name}: {args.n_test} sequences, 20 frames, 10 -> 10, MNIST test digits "
                            f"({'full IDX files' if args.mnist_dir else 'built-in subset'}), seed 0")
    found = {}
    for h in horizons:
        split = test_split(d, n=args.n_test, seed=None if d.kind == "folder" else 0, n_frames=d.n_context + h)
        found[h] = evaluate(model, split["frames"], n_context=d.n_context, n_future=h, times=split["times"])
    first = horizons[0]
    where = f"the test split of {d.path}" if d.kind == "folder" else f"generated {d.kind} test sequences, seed 0"
    description = (f"{found[first]['n_sequences']} sequences, {where}, {d.n_context} -> "
                   f"{', '.join(map(str, horizons))}")
    return found[first], {h: _brief(found[h]) for h in horizons[1:]}, description


def _brief(scores: dict) -> dict:
    return {"mse": scores["mse"], "ssim": scores["ssim"], "psnr": scores["psnr"], "per_step": scores["per_step"],
            "n_sequences": scores["n_sequences"],
            "baselines": {k: {m: v[m] for m in ("mse", "ssim", "psnr")} for k, v in scores["baselines"].items()}}


def run(args: argparse.Namespace) -> dict[str, object]:
    overrides = [f"train.objective={args.objective}", f"train.max_minutes={args.minutes}",
                 f"train.clock={args.clock}", f"train.seed={args.seed}", *args.set]
    if args.mnist_dir:
        overrides.append(f"data.mnist_dir={args.mnist_dir}")
    config = load_config(args.config, overrides)
    run_dir = Path(args.runs) / f"{args.model_name}-{args.config}-{args.objective}-{args.minutes}min-seed{args.seed}"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = train(config, run_dir, overwrite=True, progress=args.progress)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ckpt = load_checkpoint(result.best)
    scores, horizons, test_set = score(ckpt.model, config, args)
    seq_per_s = result.steps * config.data.batch_size / result.seconds
    last = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    train_flops = train_flops_per_sequence(last.model, last.config)
    metrics_csv = (run_dir / "metrics.csv").read_text().splitlines()
    header = metrics_csv[0].split(",")
    nfe_col = header.index("train/nfe") if "train/nfe" in header else None  # absent when no step was logged
    train_nfe = [float(r.split(",")[nfe_col]) for r in metrics_csv[1:] if nfe_col is not None and r.split(",")[nfe_col]]
    return {
        "model": args.model_name, "objective": args.objective, "data": config.data.kind,
        "digits": getattr(config.data, "digits", None),
        "minutes": args.minutes, "clock": args.clock, "config": args.config, "overrides": args.set,
        "seed": args.seed, "params": sum(p.numel() for p in ckpt.model.parameters()),
        "flops_per_frame": round(inference_flops_per_frame(ckpt.model, config.data.size, config.data.n_context)),
        "mse": scores["mse"], "mae": scores["mae"], "ssim": scores["ssim"], "psnr": scores["psnr"],
        "mse_per_pixel": scores["mse_per_pixel"], "per_step": scores["per_step"],
        "baselines": {k: {m: v[m] for m in ("mse", "mae", "ssim", "psnr")} for k, v in scores["baselines"].items()},
        "train_steps": result.steps, "train_seq_per_s": round(seq_per_s, 2),
        "gflops_per_s": round(train_flops * seq_per_s / 1e9, 1), "train_gflop_per_seq": round(train_flops / 1e9, 3),
        "nfe": scores["nfe"], "train_nfe": float(np.mean(train_nfe)) if train_nfe else None,
        "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
        "test_set": test_set, **({"horizons": horizons} if horizons else {}),
        "config_resolved": load_checkpoint(result.last).config.to_dict(), **provenance(),
        "date": datetime.date.today().isoformat(), **({"sitting": args.sitting} if args.sitting else {}),
    }


def table(rows: list[dict[str, object]]) -> str:
    head = ["model", "objective", "data", "budget", "params", "MFLOPs/frame", "train seq/s", "GFLOP/s", "NFE",
            "MSE", "MAE", "SSIM", "PSNR", "copy-last MSE", "zeros MSE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = r["baselines"]
        lines.append("| " + " | ".join(str(x) for x in [
            r["model"], r["objective"], _data(r), f"{r['minutes']} min ({r['clock']})", f"{r['params']:,}",
            f"{r['flops_per_frame'] / 1e6:.0f}", r["train_seq_per_s"], r["gflops_per_s"], f"{r['nfe']:.0f}",
            f"{r['mse']:.1f}", f"{r['mae']:.1f}", f"{r['ssim']:.3f}", f"{r['psnr']:.2f}",
            f"{base['copy_last']['mse']:.1f}", f"{base['zeros']['mse']:.1f}"]) + " |")
    return "\n".join(lines)


def _data(row: dict[str, object]) -> str:
    kind = row.get("data", "moving_mnist")
    return f"{row['digits']} digit(s)" if kind == "moving_mnist" else str(kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mmnist2")
    parser.add_argument("--objective", default="prediction", choices=["prediction", "reconstruction"])
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget (default 15); with --table, show only the rows of this budget")
    parser.add_argument("--clock", default="process", choices=["process", "wall"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--horizons", default=None, help="frames to predict after the context, e.g. 10,30 "
                        "(default: the config's n_frames - n_context)")
    parser.add_argument("--set", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--model-name", default="latent_ode")
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--results", default="quality.json", help="results file under benchmarks/results/")
    parser.add_argument("--table", action="store_true", help="print the table of the results file and exit")
    parser.add_argument("--sitting", default=None, help="tag of rows run back to back (with --table: only those)")
    args = parser.parse_args()
    results = RESULTS / args.results

    def read() -> list[dict[str, object]]:
        return json.loads(results.read_text()) if results.is_file() else []

    if args.table:
        rows = [r for r in read() if (args.minutes is None or r["minutes"] == args.minutes)
                and (args.sitting is None or r.get("sitting") == args.sitting)]
        print(table(rows))
        return
    if args.minutes is None:
        args.minutes = 15.0
    row = run(args)
    rows = [*read(), row]  # the file as it is now: other runs may have appended since this one started
    RESULTS.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows, indent=2) + "\n")
    base = row["baselines"]
    print(f"appended a row to {results}: MSE {row['mse']:.2f} (copy_last {base['copy_last']['mse']:.2f}, "
          f"zeros {base['zeros']['mse']:.2f})")
    print(table(rows))


if __name__ == "__main__":
    main()
