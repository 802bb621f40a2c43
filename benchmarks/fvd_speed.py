"""FVD's cost on this machine: seconds a 20-frame video for the I3D features, on 32 random 64x64 grey videos
(after a warm-up), for the odevideo that is imported: run it with ``PYTHONPATH=CHECKOUT/src`` to measure
another commit.

    python benchmarks/fvd_speed.py LABEL      # prints one JSON row
"""

from __future__ import annotations

import json
import sys
import time

import torch

from odevideo.perceptual import fvd

if __name__ == "__main__":
    videos = torch.rand(32, 20, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    fvd.embed(videos[:2])
    start = time.perf_counter()
    fvd.embed(videos)
    per = (time.perf_counter() - start) / len(videos)
    print(json.dumps({"checkout": sys.argv[1] if len(sys.argv) > 1 else "", "seconds_per_video": round(per, 4),
                      "videos": len(videos), "threads": torch.get_num_threads()}))
