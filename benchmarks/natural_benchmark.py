"""The natural-video benchmark's rows: every method on the test windows of a folder built by natural_clips.py.

    python benchmarks/natural_benchmark.py --data benchmarks/data/natural --model latent_ode=RUN_DIR \
        --model simvp=RUN_DIR [--sitting NAME]

The test set is every non-overlapping 20-frame window of the folder's test split (10 frames in, 10 out, at the
frames' recorded times), read as the ``natural64`` config reads it (RGB 64x64). The methods are the
baselines (copy-last, black frames, the linear extrapolation of the last two frames) and each ``--model``
(a model whose config numbers its frames, ``data.timestamps=false``, sees frame numbers). For each: MSE, PSNR,
SSIM (both conventions) and LPIPS per predicted frame, averaged over all windows and per source file; FVD over
all windows (the truth embedded once; per file there are too few windows for FVD). ``--data DIR_cgi`` scores
the held-out Big Buck Bunny shots instead. Rows go to benchmarks/results/natural_benchmark.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, provenance

from odevideo import metrics
from odevideo.config import load_config
from odevideo.evaluation import BASELINES, baseline
from odevideo.inference import generate, load_checkpoint
from odevideo.perceptual import fvd as perceptual_fvd
from odevideo.perceptual import lpips as perceptual_lpips

N_CONTEXT, N_FUTURE = 10, 10


def test_windows(data_dir: str, cache: str) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """Frames (N, 20, 3, 64, 64) in [0, 1], their times (N, 20), each window's source file, and the manifest's
    hash (``none`` without one)."""
    data = load_config("natural64", [f"data.path={data_dir}", f"data.cache_dir={cache}"]).data
    source = data.open("test", progress=True)
    batch = source.batch(np.arange(source.count))
    files = [source.entries[int(f)].source.name for f, _ in source.windows]
    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file() and Path(data_dir).name.endswith("_cgi"):
        manifest = Path(data_dir).with_name(Path(data_dir).name.removesuffix("_cgi")) / "manifest.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else "none"
    return batch["frames"], batch["times"], files, digest


def predict(name: str, model, frames: torch.Tensor, times: torch.Tensor, batch: int = 32) -> torch.Tensor:  # noqa: ANN001
    """The 10 frames after each context, (N, 10, C, H, W): a baseline's, or a model's."""
    out = []
    for i in range(0, len(frames), batch):
        context, t = frames[i:i + batch, :N_CONTEXT], times[i:i + batch]
        t_ctx, t_q = t[:, :N_CONTEXT], t[:, N_CONTEXT:N_CONTEXT + N_FUTURE]
        if model is None:
            out.append(baseline(name, context, t_ctx, t_q))
        else:
            out.append(generate(model, context, t_ctx, t_q).frames.float().cpu())
    return torch.cat(out)


def scores(pred: torch.Tensor, truth: torch.Tensor, files: list[str]) -> dict[str, object]:
    """Per-frame metrics (sum-over-pixels MSE, PSNR, SSIM both ways, LPIPS), averaged overall and per file."""
    per = metrics.score({"m": pred}, truth)["m"]  # {name: (N, T)}
    per["lpips"] = torch.cat([perceptual_lpips.lpips(pred[i:i + 32], truth[i:i + 32])
                              for i in range(0, len(pred), 32)])
    keep = ("mse", "psnr", "ssim", "ssim_openstl", "lpips")
    overall = {k: float(per[k].double().mean()) for k in keep}
    by_file = {}
    for name in sorted(set(files)):
        rows = torch.tensor([f == name for f in files])
        by_file[name] = {"windows": int(rows.sum()), **{k: float(per[k][rows].double().mean()) for k in keep}}
    return {**overall, "per_file": by_file}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="benchmarks/data/natural")
    parser.add_argument("--cache", default="benchmarks/data/natural_cache")
    parser.add_argument("--model", action="append", default=[], help="NAME=checkpoint file or run directory")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--sitting", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    frames, times, files, digest = test_windows(args.data, args.cache)
    n = len(frames)
    truth = frames[:, N_CONTEXT:N_CONTEXT + N_FUTURE]
    start = time.perf_counter()
    real = perceptual_fvd.embed(frames[:, :N_CONTEXT + N_FUTURE], progress=True)
    print(f"{n} windows from {len(set(files))} files; truth embedded in {time.perf_counter() - start:.0f} s")
    methods = {} if args.no_baselines else {b: None for b in BASELINES}
    for spec in args.model:
        name, _, path = spec.partition("=")
        methods[name] = load_checkpoint(path)
    results = RESULTS / "natural_benchmark.json"
    for name, ckpt in methods.items():
        clock = time.perf_counter()
        grid = ckpt is not None and not ckpt.config.data.timestamps
        pred = predict(name, None if ckpt is None else ckpt.model, frames,
                       torch.arange(20.0).expand(n, 20) if grid else times)
        fake = perceptual_fvd.embed(torch.cat([frames[:, :N_CONTEXT], pred], 1), progress=True)
        row = {"method": name, "data": args.data, "manifest_sha256": digest, "windows": n,
               "fvd": perceptual_fvd.frechet_distance(real, fake), **scores(pred, truth, files),
               "protocol": "test windows of 20 frames (10 -> 10) at recorded times, RGB 64x64 (natural64); MSE "
                           "per frame summed over pixels and channels; FVD over every window, the 10 context "
                           "frames followed by the 10 predicted",
               "seconds": round(time.perf_counter() - clock, 1), **provenance(),
               "date": datetime.date.today().isoformat(), **({"sitting": args.sitting} if args.sitting else {})}
        if ckpt is None:
            row["config_note"] = "a baseline: no model (src/odevideo/evaluation.py)"
        else:
            row.update(checkpoint=str(ckpt.path), train_steps=ckpt.step, config_resolved=ckpt.config.to_dict())
        old = json.loads(results.read_text()) if results.is_file() else []
        results.write_text(json.dumps([*old, row], indent=2) + "\n")  # row by row: a failure keeps the rest
        print(f"{name:16s} MSE {row['mse']:8.2f}  PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.3f}  "
              f"LPIPS {row['lpips']:.4f}  FVD {row['fvd']:8.1f}  ({row['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
