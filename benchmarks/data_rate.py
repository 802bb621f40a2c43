"""Does the data path keep up with the model? Decoding into the cache, clips/s read from it, and the model's
training consumption, on one machine.

    python benchmarks/data_rate.py [--videos DIR] [--config kth] [--steps 10]

Without ``--videos`` it writes 24 synthetic H.264 MP4s (320x240, 200 frames at 25 fps, moving shapes over
noise) into a temporary folder. It measures:

- **decode**: the first pass, every file decoded, resized to the config's size and written to the uint8 cache
  (frames/s of the source files);
- **read**: training batches from the cache (memory-mapped) through the training stream, in the main process
  (``num_workers=0``) and in one DataLoader worker: clips/s;
- **model**: the config's training step (forward + backward + AdamW) on those batches: clips/s.

Writes benchmarks/results/data_rate.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from common import provenance, write

from odevideo.config import load_config
from odevideo.data.clips import TrainStream, as_float_frames
from odevideo.data.folder import split_entries
from odevideo.losses import objective_loss


def synthetic_videos(root: Path, n: int = 24, frames: int = 200) -> Path:
    import av

    rng = np.random.default_rng(0)
    for i in range(n):
        with av.open(str(root / f"clip{i:02d}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            stream.time_base = Fraction(1, 25)
            x, y, vx, vy = rng.uniform(40, 200), rng.uniform(40, 160), rng.uniform(-4, 4), rng.uniform(-3, 3)
            for t in range(frames):
                image = rng.integers(0, 60, (240, 320, 3), dtype=np.uint8)
                cx, cy = int(x + vx * t) % 280, int(y + vy * t) % 200
                image[cy:cy + 40, cx:cx + 40] = (220, 180, 40)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = t
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return root


def clips_per_second(source, batch_size: int, workers: int, batches: int) -> float:  # noqa: ANN001
    loader = torch.utils.data.DataLoader(TrainStream(source, batch_size), batch_size=None, num_workers=workers)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not the steady rate
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        as_float_frames(batch["frames"])
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", default=None, help="a folder of videos (default: synthetic MP4s)")
    parser.add_argument("--config", default="kth")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--batches", type=int, default=200, help="timed batches read from the cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.videos:
            videos = Path(args.videos)
        else:
            (Path(tmp) / "videos").mkdir()
            videos = synthetic_videos(Path(tmp) / "videos")
        config = load_config(args.config, [f"data.path={videos}", f"data.cache_dir={Path(tmp) / 'cache'}",
                                           "train.precision=32-true"])
        d = config.data
        start = time.perf_counter()
        splits = split_entries(d, progress=False)
        decode_s = time.perf_counter() - start
        source_frames = sum(e.n_frames for part in splits.values() for e in part)
        train = d.open("train")
        read = {f"workers_{w}": round(clips_per_second(train, d.batch_size, w, args.batches), 1) for w in (0, 1)}
        model = config.build_model()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batches = iter(TrainStream(train, d.batch_size))
        times = []
        for step in range(args.steps + 2):
            batch = next(batches)
            start = time.perf_counter()
            loss, *_ = objective_loss(model, as_float_frames(batch["frames"]), batch["times"], n_context=d.n_context,
                                      objective=config.train.objective, loss=config.train.loss,
                                      kl_weight=config.train.kl_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step >= 2:
                times.append(time.perf_counter() - start)
        model_rate = d.batch_size / float(np.median(times))
    row = {"videos": args.videos or "24 synthetic H.264 MP4s, 320x240, 200 frames, 25 fps",
           "config": args.config, "size": d.size, "channels": d.channels, "n_frames": d.n_frames,
           "batch_size": d.batch_size, "files": sum(len(p) for p in splits.values()),
           "decode_s": round(decode_s, 1), "decode_frames_per_s": round(source_frames / decode_s, 1),
           "read_clips_per_s": read, "model_clips_per_s": round(model_rate, 1),
           "read_over_model": round(read["workers_0"] / model_rate, 1), "config_resolved": config.to_dict(),
           **provenance()}
    print(row)
    print(f"wrote {write('data_rate.json', [row])}")


if __name__ == "__main__":
    main()
