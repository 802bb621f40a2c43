"""Where evaluation spends its time: generating the futures against scoring them (all metrics, the model and
both baselines), on the standard protocol (1000 two-digit sequences, 10 -> 10, batch 64).

    python benchmarks/evaluation.py [--config mmnist2] [--n 1000] [--checkpoint PATH]

Timing does not depend on the weights (the solver takes fixed steps), so without --checkpoint the config's
model is used at its seed-0 initialisation. Appends a row to benchmarks/results/evaluation.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import torch
from common import RESULTS, provenance

from odevideo.config import load_config
from odevideo.evaluation import evaluate, load_test_sequences
from odevideo.inference import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mmnist2")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        model, config = ckpt.model, ckpt.config
    else:
        config = load_config(args.config)
        torch.manual_seed(0)
        model = config.build_model().eval()
    d = config.data
    seqs = load_test_sequences(digits=d.digits, n=args.n, seed=0, size=d.size, n_frames=d.n_frames)
    start = time.perf_counter()
    result = evaluate(model, seqs, n_context=d.n_context, n_future=d.n_frames - d.n_context,
                      batch_size=args.batch_size)
    total = time.perf_counter() - start
    row = {"benchmark": "evaluation", "config": args.config, "checkpoint": args.checkpoint, "n_sequences": args.n,
           "batch_size": args.batch_size, "seconds_total": round(total, 2),
           "seconds_generate": result["seconds"]["generate"], "seconds_metrics": result["seconds"]["metrics"],
           "metrics_over_generate": round(result["seconds"]["metrics"] / result["seconds"]["generate"], 3),
           "metrics": list(result["conventions"]), "scored": ["model", *result["baselines"]],
           "config_resolved": config.to_dict(), **provenance(), "date": datetime.date.today().isoformat()}
    path = RESULTS / "evaluation.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*rows, row], indent=2) + "\n")
    print(f"{args.n} sequences: generate {row['seconds_generate']:.1f} s, metrics {row['seconds_metrics']:.1f} s "
          f"(ratio {row['metrics_over_generate']}), total {total:.1f} s; appended to {path}")


if __name__ == "__main__":
    main()
