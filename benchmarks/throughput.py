"""Training and inference throughput against the machine's measured matmul peak.

    python benchmarks/throughput.py [--configs mmnist1 mmnist2] [--steps 20] [--warmup 3]
    python benchmarks/throughput.py --kinds objects latent_ode simvp convlstm latent_rnn --objectives prediction \
        --results throughput_kinds.json
    python benchmarks/throughput.py --configs mmnist1 --objectives prediction \
        --variants eager channels_last bf16 compile --results speed_options.json

Training: the real training loss (``objective_loss``) with AdamW on batches from the training stream, for
each config and objective: sequences/s, NFE per sequence and achieved GFLOP/s (FLOPs counted by
``torch.utils.flop_counter`` on one forward + backward pass). Inference: generated frames/s of the standard
10 -> 10 protocol at batch 64 (no gradients). Peak: GFLOP/s of a 2048 x 2048 matmul in fp32 and bf16 on the
same threads. All on the torch threads of this machine; writes benchmarks/results/throughput.json.

``--variants`` times the training step under speed options: ``channels_last`` memory format,
``bf16`` autocast, ``compile`` (``torch.compile`` of the encoder, decoder and vector field; the first step's
time, compilation included, is recorded as ``first_step_s``), ``auto`` (what ``train.precision=auto`` picks on
this CPU: bf16 autocast where it computes bf16 natively, else fp32; the row says which in ``precision``).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
from common import matmul_peak, provenance, train_flops_per_sequence, write

from odevideo.config import load_config
from odevideo.data.moving_mnist import MovingMNIST, as_float_frames
from odevideo.losses import objective_loss
from odevideo.training.run import resolve_precision

VARIANTS = ("eager", "channels_last", "bf16", "compile", "auto")
# every model kind on 2-digit Moving MNIST, at the sizes of the committed benchmark rows: NAME -> config, --set
KINDS = {"objects": ("mmnist2", []), "latent_ode": ("mmnist2_latent", []),
         "simvp": ("mmnist2_latent", ["model.kind=simvp", "model.hid_s=16", "model.hid_t=128", "model.n_t=4",
                                      "data.irregular=0"]),
         "convlstm": ("mmnist2_latent", ["model.kind=convlstm", "model.hidden=32", "model.layers=2",
                                         "data.irregular=0"]),
         "latent_rnn": ("mmnist2_latent", ["model.kind=latent_rnn", "data.irregular=0"])}


def measure(config_name: str, objective: str, steps: int, warmup: int, variant: str = "eager",
            overrides: list[str] | None = None) -> dict[str, object]:
    config = load_config(config_name, [*(overrides or []), f"train.objective={objective}"])
    precision = resolve_precision("auto", "cpu") if variant == "auto" else \
        ("bf16-mixed" if variant == "bf16" else "32-true")
    config.train.precision = precision
    d, tc = config.data, config.train
    torch.manual_seed(0)
    model = config.build_model()
    flops_per_seq = train_flops_per_sequence(model, config)
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    if variant == "compile":
        for name in ("encoder", "decoder", "field"):
            setattr(model, name, torch.compile(getattr(model, name)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = MovingMNIST("train", digits=d.digits, size=d.size, n_frames=d.n_frames, seed=0)
    times = torch.arange(d.n_frames, dtype=torch.float32)

    def step(i: int) -> int:
        batch = gen.batch(np.arange(i * d.batch_size, (i + 1) * d.batch_size), as_float=False)
        frames = as_float_frames(batch["frames"])
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed"
                    else contextlib.nullcontext())
        with autocast:
            loss, _, out, _ = objective_loss(model, frames, times, n_context=d.n_context, objective=objective,
                                             loss=tc.loss, kl_weight=tc.kl_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return out.nfe

    first = time.perf_counter()
    nfe = step(0)
    first_step_s = time.perf_counter() - first
    for i in range(warmup):
        step(1 + i)
    start = time.perf_counter()
    for i in range(steps):
        step(1 + warmup + i)
    seconds = time.perf_counter() - start
    seq_per_s = steps * d.batch_size / seconds
    return {"config": config_name, "kind": config.model.kind, "overrides": overrides or [], "objective": objective,
            "variant": variant, "batch_size": d.batch_size,
            "params": sum(p.numel() for p in model.parameters()), "train_seq_per_s": round(seq_per_s, 2),
            "nfe_per_sequence": nfe, "train_gflop_per_seq": round(flops_per_seq / 1e9, 3),
            "gflops_per_s": round(flops_per_seq * seq_per_s / 1e9, 1), "steps_timed": steps,
            "first_step_s": round(first_step_s, 2), "precision": precision, "config_resolved": config.to_dict()}


def _timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.no_grad()
def inference(config_name: str, batch: int = 64, repeats: int = 5, overrides: list[str] | None = None
              ) -> dict[str, object]:
    """Frames/s of 10 -> 10 generation at ``batch`` sequences (best of ``repeats``)."""
    config = load_config(config_name, overrides or [])
    torch.manual_seed(0)
    model = config.build_model().eval()
    d = config.data
    frames = MovingMNIST("test", digits=d.digits, size=d.size, n_frames=d.n_frames).batch(range(batch))["frames"]
    t = torch.arange(d.n_frames, dtype=torch.float32)
    n_future = d.n_frames - d.n_context

    def run() -> None:
        model(frames[:, :d.n_context], t[:d.n_context].expand(batch, -1), t[d.n_context:].expand(batch, -1))

    run()
    best = min(_timed(run) for _ in range(repeats))
    return {"config": config_name, "kind": config.model.kind, "overrides": overrides or [], "batch_size": batch,
            "frames_per_s": round(batch * n_future / best, 1),
            "seconds_per_batch": round(best, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["mmnist1", "mmnist2"])
    parser.add_argument("--kinds", nargs="*", default=None, choices=list(KINDS),
                        help="measure these model kinds (configs and sizes in KINDS) instead of --configs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--objectives", nargs="+", default=["prediction", "reconstruction"])
    parser.add_argument("--variants", nargs="+", default=["eager"], choices=VARIANTS)
    parser.add_argument("--results", default="throughput.json", help="results file under benchmarks/results/")
    args = parser.parse_args()
    runs = [KINDS[k] for k in args.kinds] if args.kinds else [(name, []) for name in args.configs]
    rows = []
    for name, overrides in runs:
        for objective in args.objectives:
            for variant in args.variants:
                row = measure(name, objective, args.steps, args.warmup, variant, overrides)
                print({k: v for k, v in row.items() if k != "config_resolved"}, flush=True)
                rows.append(row)
    infer = [inference(name, overrides=overrides) for name, overrides in runs]
    print(infer)
    peak = {"fp32_gflops": matmul_peak(torch.float32), "bf16_gflops": matmul_peak(torch.bfloat16),
            "what": "2048 x 2048 matmul, best of 20, on the torch threads above"}
    print(peak)
    for row in rows:
        row["fraction_of_fp32_peak"] = round(row["gflops_per_s"] / peak["fp32_gflops"], 3)
    print("wrote", write(args.results, {"benchmark": "throughput", **provenance(), "matmul_peak": peak, "rows": rows,
                                            "inference": infer}))


if __name__ == "__main__":
    main()
