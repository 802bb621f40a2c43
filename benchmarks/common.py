"""Shared helpers of the benchmark scripts: machine description and results files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from odevideo.training.run import native_bf16

    info: dict[str, object] = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                               "python": platform.python_version(), "torch": torch.__version__,
                               "native_bf16_cpu": native_bf16("cpu")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def git_commit() -> str:
    """The commit of the code that ran, with ``-dirty`` when the code had uncommitted changes (results files
    being written do not count)."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks",
                                ":!benchmarks/results", "pyproject.toml"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + ("-dirty" if dirty else "")


def provenance() -> dict[str, object]:
    """What every results row records beside its numbers: the command, the commit and the machine."""
    return {"command": command(), "git_commit": git_commit(), "machine": machine()}


def command() -> str:
    return "python " + shlex.join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])


def train_flops_per_sequence(model, config, n: int = 2) -> float:  # noqa: ANN001 (model, Config)
    """FLOPs of one forward + backward pass of the training loss, per sequence (torch's flop counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from odevideo.losses import objective_loss

    d, tc = config.data, config.train
    frames = d.open("train").batch(range(n))["frames"]
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss, *_ = objective_loss(model, frames, torch.arange(float(d.n_frames)), n_context=d.n_context,
                                  objective=tc.objective, loss=tc.loss, kl_weight=tc.kl_weight)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / n


def write(name: str, payload: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
