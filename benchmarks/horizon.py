"""Long-horizon evaluation (issue 12): per-frame MSE from the first future frame to the 30th or 90th, for
trained models and the copy-last and zeros baselines, with a plot of MSE against the horizon.

    python benchmarks/horizon.py --model NAME=RUN_DIR [--model ...] --digits 1 --n-future 90 [--n 200] \\
        [--mnist-dir ../shared/data/mnist] [--plot horizon_1digit.png]

Each model is scored by ``odevideo.evaluation.evaluate`` on generated test sequences (MNIST test digits,
seed 0, 10 context frames). Appends one row per model to benchmarks/results/horizon.json and draws every
model and baseline on one plot under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json

from common import RESULTS, provenance

from odevideo.evaluation import evaluate, load_test_sequences
from odevideo.inference import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=checkpoint file or run directory")
    parser.add_argument("--digits", type=int, default=1)
    parser.add_argument("--n-future", type=int, default=90)
    parser.add_argument("--n", type=int, default=200, help="test sequences")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--plot", default=None, help="PNG under benchmarks/results/ (default horizon_Ndigit.png)")
    args = parser.parse_args()
    seqs = load_test_sequences(digits=args.digits, n=args.n, seed=0, n_frames=10 + args.n_future,
                               mnist_dir=args.mnist_dir)
    curves, rows = {}, []
    for spec in args.model:
        name, _, path = spec.partition("=")
        ckpt = load_checkpoint(path)
        res = evaluate(ckpt.model, seqs, n_context=10, n_future=args.n_future)
        curves[name] = res["per_step"]["mse"]
        for base, scores in res["baselines"].items():
            curves[base] = scores["per_step"]["mse"]
        rows.append({"benchmark": "horizon", "model": name, "checkpoint": path, "digits": args.digits,
                     "n_sequences": args.n, "n_future": args.n_future, "mse": res["mse"],
                     "per_step_mse": res["per_step"]["mse"],
                     "baselines": {b: s["per_step"]["mse"] for b, s in res["baselines"].items()},
                     "config_resolved": ckpt.config.to_dict(), **provenance(),
                     "date": datetime.date.today().isoformat()})
        print(f"{name}: MSE {res['mse']:.1f} over {args.n_future} future frames; at the first "
              f"{curves[name][0]:.1f}, the 10th {curves[name][min(9, args.n_future - 1)]:.1f}, the last "
              f"{curves[name][-1]:.1f} (zeros {curves['zeros'][-1]:.1f})")
    path = RESULTS / "horizon.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*old, *rows], indent=2) + "\n")
    plot = RESULTS / (args.plot or f"horizon_{args.digits}digit.png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, curve in curves.items():
        style = ":" if name in ("copy_last", "zeros") else "-"
        ax.plot(range(1, len(curve) + 1), curve, style, label=name)
    ax.set_xlabel("future frame")
    ax.set_ylabel("MSE per frame (sum over pixels)")
    ax.set_title(f"{args.digits} digit(s), {args.n} test sequences, 10 context frames")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot)
    print("wrote", path, "and", plot)


if __name__ == "__main__":
    main()
