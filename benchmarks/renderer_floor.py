"""The error floor of the object model's renderer, with oracle poses (issue 12): how close can frames drawn by
pasting sprites at positions come to the truth, before any learning?

    python benchmarks/renderer_floor.py [--n 1000] [--mnist-dir ../shared/data/mnist]

On the standard test protocol (20 frames, 10 -> 10, seed 0, 1 and 2 digits), the future frames 10..19 are
drawn by ``odevideo.models.objects.render`` (sprites placed, max over objects; ``crop`` for context sprites) from:
- ``true_sprites_rounded``: the true digit images at the generator's own whole-pixel corners (should be 0);
- ``true_sprites_continuous``: the true digit images at the unrounded positions (the generator rounds to
  whole pixels, a model predicts real ones: the cost of bilinear placement at sub-pixel offsets);
- ``context_sprites``: sprites cut from the 10 context frames at the true centres and averaged, drawn at the
  true whole-pixel centres: the cost of copying appearance from the context;
- ``context_sprites_min``: the same with the pixel-wise minimum over the context frames instead of the mean
  (another digit passing by only ever adds intensity, under the generator's max).
MSE is the per-frame sum over pixels (OpenSTL convention). Appends rows to results/renderer_floor.json.
"""

from __future__ import annotations

import argparse
import datetime
import json

import numpy as np
import torch
from common import RESULTS, provenance

from odevideo.data.moving_mnist import MovingMNIST, as_float_frames
from odevideo.models.objects import crop, render

SPRITE = 32


def centres(gen: MovingMNIST, indices: np.ndarray, times: np.ndarray, rounded: bool) -> torch.Tensor:
    """(B, T, K, 2) box centres in pixels, (row, col)."""
    pos = gen.positions(indices, times) * (gen.size - gen.digit_size)
    if rounded:
        pos = np.rint(pos)
    return torch.from_numpy(pos + (gen.digit_size - 1) / 2).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--mnist-dir", default=None)
    args = parser.parse_args()
    rows = []
    for digits in (1, 2):
        gen = MovingMNIST("test", digits=digits, seed=0, mnist_dir=args.mnist_dir)
        idx = np.arange(args.n)
        frames = as_float_frames(torch.from_numpy(gen.render_uint8(idx)[:, :, None]))  # (N, 20, 1, 64, 64)
        ids, _, _ = gen.motion(idx)
        pad = (SPRITE - gen.digit_size) // 2
        true = torch.from_numpy(gen.images[ids]).float().div(255)  # (N, K, 28, 28)
        true = torch.nn.functional.pad(true, (pad, pad, pad, pad))[:, :, None]  # (N, K, 1, S, S)
        times = np.arange(20.0)
        at_round, at_real = centres(gen, idx, times, True), centres(gen, idx, times, False)
        target = frames[:, 10:]
        ctx = frames[:, :10].flatten(0, 1)  # (N*10, 1, H, W)
        copied = crop(ctx, at_round[:, :10].flatten(0, 1), SPRITE).view(args.n, 10, digits, 1, SPRITE, SPRITE)
        for name, sprites, at in (("true_sprites_rounded", true, at_round), ("true_sprites_continuous", true, at_real),
                                  ("context_sprites", copied.mean(1), at_round),
                                  ("context_sprites_min", copied.amin(1), at_round)):
            drawn = render(sprites, at[:, 10:], gen.size)
            mse = float((drawn - target).pow(2).flatten(2).sum(-1).mean())
            rows.append({"digits": digits, "renderer": name, "mse": round(mse, 3)})
            print(f"{digits} digit(s)  {name:24s} MSE {mse:7.3f}")
    record = {"benchmark": "renderer_floor", "n_sequences": args.n, "sprite": SPRITE,
              "test_set": f"MovingMNIST('test', seed=0), {'full MNIST' if args.mnist_dir else 'built-in digits'}",
              "rows": rows, "config_note": "no model: the renderer alone, with oracle poses", **provenance(),
              "date": datetime.date.today().isoformat()}
    path = RESULTS / "renderer_floor.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
