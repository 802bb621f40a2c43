"""The page under load: concurrent clients upload real clips to ``odevideo serve`` and poll their jobs.

    python benchmarks/serve_load.py [--clients 16] [--seconds 120] [--model natural] [--workers 1] [--queue 8]
                                    [--clips benchmarks/data/natural/test]

Starts ``odevideo serve`` as its own process (the job queue's ``--workers`` and ``--queue``), cuts 20-frame
windows out of the real clips in ``--clips`` (the natural-video benchmark's test split, built by
``benchmarks/natural_clips.py``) and writes each as an MP4, as a user would upload it. Each client loops for
``--seconds``: upload a clip (10 context frames, the model's horizon), poll the job every 50 ms until it ends,
start again; a 503 (queue full) is counted and retried after a second. Records requests served, p50 and p95
latency of accepted jobs (upload sent to result read), errors by kind, jobs lost (accepted and never ended:
must be 0) and the server process's peak memory (VmHWM). Results: ``benchmarks/results/serve_load.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import provenance, write

ROOT = Path(__file__).resolve().parent


def clips(folder: Path, out: Path, n: int, window: int = 20) -> list[Path]:
    """Up to ``n`` MP4 files of ``window`` frames, cut from the clips (``.npz``, ``frames`` (T, C, H, W))."""
    import torch

    from odevideo.visualize import write_frames

    files = sorted(folder.glob("*.npz"))
    if not files:
        sys.exit(f"no clips in {folder}: build them with python benchmarks/natural_clips.py --out "
                 "benchmarks/data/natural")
    written = []
    for i in range(n):
        frames = np.load(files[i % len(files)])["frames"]
        start = (i // len(files)) * window % max(len(frames) - window, 1)
        chunk = torch.from_numpy(frames[start:start + window]).float() / 255
        written.append(write_frames(out / f"clip{i}.mp4", chunk, fps=10))
    return written


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).with_name("odevideo")), "serve", "--port", str(port),
               "--workers", str(args.workers), "--queue", str(args.queue), "--timeout", str(args.timeout)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/limits", timeout=2)
            return server, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start: " + (server.stderr.read() if server.stderr else ""))


def peak_memory(pid: int) -> int:
    """Peak resident memory (VmHWM) of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.accepted = self.ended = self.lost = self.requests = 0

    def add(self, **counts: int) -> None:
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


def client(url: str, files: list[Path], model: str, until: float, tally: Tally, seed: int) -> None:
    import httpx

    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < until:
            path = files[rng.integers(len(files))]
            sent = time.monotonic()
            with open(path, "rb") as f:
                r = http.post("/api/predict", data={"model": model, "n_context": "10"},
                              files={"file": (path.name, f, "video/mp4")})
            tally.add(requests=1)
            if r.status_code == 503:
                tally.errors["503 busy" if "busy" in r.json().get("error", "") else "503 without a message"] += 1
                time.sleep(1.0)
                continue
            if r.status_code != 202:
                tally.errors[f"{r.status_code} on upload"] += 1
                continue
            tally.add(accepted=1)
            key, status = r.json()["id"], "queued"
            while status in ("queued", "running"):
                time.sleep(0.05)
                r = http.get(f"/api/jobs/{key}")
                tally.add(requests=1)
                status = r.json().get("status", f"error {r.status_code}")
            if status == "done":
                tally.add(ended=1)
                with tally.lock:
                    tally.latencies.append(time.monotonic() - sent)
            elif r.status_code == 404:
                tally.add(lost=1)
            else:
                tally.add(ended=1)
                tally.errors[f"{r.status_code} job failed: {r.json().get('error', '')[:60]}"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--model", default="natural")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--clips", default=str(ROOT / "data" / "natural" / "test"))
    parser.add_argument("--results", default="serve_load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = clips(Path(args.clips), Path(tmp), 32)
        server, url = start_server(args)
        try:
            import httpx

            httpx.get(f"{url}/api/models", timeout=120)  # load the models before the clock starts
            tally = Tally()
            until = time.monotonic() + args.seconds
            threads = [threading.Thread(target=client, args=(url, files, args.model, until, tally, i))
                       for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            peak = peak_memory(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    lat = np.array(tally.latencies)
    served = len(lat)
    result = {"benchmark": "serve_load", **provenance(),
              "setting": {"clients": args.clients, "seconds": args.seconds, "model": args.model,
                          "workers": args.workers, "queue": args.queue, "timeout_s": args.timeout,
                          "clips": f"20-frame MP4 windows of {args.clips}", "n_context": 10},
              "jobs_done": served, "jobs_per_s": round(served / args.seconds, 2), "requests": tally.requests,
              "accepted": tally.accepted, "lost": tally.accepted - tally.ended + tally.lost,
              "latency_s": {"p50": round(float(np.percentile(lat, 50)), 3) if served else None,
                            "p95": round(float(np.percentile(lat, 95)), 3) if served else None,
                            "max": round(float(lat.max()), 3) if served else None},
              "errors": dict(tally.errors), "server_peak_memory_mib": round(peak / 2**20, 1),
              "config_note": f"the shipped model's own config (odevideo info {args.model}); the server's options are "
                             "in setting"}
    print({k: result[k] for k in ("jobs_done", "accepted", "lost", "latency_s", "errors",
                                  "server_peak_memory_mib")})
    print("wrote", write(args.results, result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
