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


# grid_sample's FLOPs by formula: torch's flop counter counts matmuls and convolutions, not grid_sample, which
# is most of the object model's work (it crops and renders sprites with it) and the warp of warp-output models.
# Per interpolation mode (torch's enum: 0 bilinear, 1 nearest, 2 bicubic), the convention of grid_sample_flops:
GRID_SAMPLE_FORWARD = {0: (12, 7), 1: (4, 0), 2: (56, 35)}  # mode -> (FLOPs per location, per element)
GRID_SAMPLE_BACKWARD = {0: (12, 8, 20), 1: (4, 1, 0), 2: (104, 48, 112)}  # (per location, per element to the
# input's gradient, per element to the grid's gradient)


def grid_sample_flops(n: int, c: int, h_out: int, w_out: int, mode: int, *, grad_input: bool = False,
                      grad_grid: bool = False, backward: bool = False) -> int:
    """FLOPs of one 2-D ``grid_sample`` (``mode`` as torch's enum: 0 bilinear, 1 nearest, 2 bicubic) of an
    (N, C, H, W) input at an (N, H_out, W_out, 2) grid, forward, or ``backward`` to the gradients asked for.

    The convention, per location (N x H_out x W_out) and per output element (x C): a multiply or an add is one
    FLOP (torch's counter's unit: a matmul's multiply-add is 2); comparisons, rounding, bounds checks, index
    arithmetic and memory moves count nothing.

    - Bilinear (what odevideo uses), forward: 12 per location: the 2 grid values unnormalised to pixels by an
      affine map (a multiply and an add each: 4), the 2 fractional offsets and their 2 complements (4), the 4
      corner weights as products (4); 7 per element: the 4 corners weighted and summed (4 multiplies, 3 adds).
      Backward: the 12 per location again; per element 8 to the input's gradient (a multiply and an add scattered
      per corner) and 20 to the grid's (per corner: the value times the incoming gradient, that times the 2
      weight derivatives, 2 accumulations); 2 more per location (the chain rule through the unnormalisation)
      when the grid's gradient is asked for. So forward 12 + 7 C, backward to both 14 + 28 C, per location.
    - Nearest: 4 per location (the coordinates) and 0 per element (a copy); backward 4 per location, 1 per
      element to the input (an add), 0 to the grid (its gradient is zero).
    - Bicubic (16 taps): forward 56 per location (coordinates 4, fractions 2, 4 cubic-convolution coefficients
      per axis at 25 FLOPs an axis as PyTorch evaluates them) and 35 per element (4 rows of 4 taps, then the
      column: 5 x (4 multiplies + 3 adds)); backward 104 per location (the same, and the coefficients'
      derivatives, 48), per element 48 to the input (3 per tap) and 112 to the grid (7 per tap), 2 more per
      location for the grid.
    """
    locations = n * h_out * w_out
    if not backward:
        per_location, per_element = GRID_SAMPLE_FORWARD.get(mode, GRID_SAMPLE_FORWARD[0])
        return locations * (per_location + c * per_element)
    per_location, to_input, to_grid = GRID_SAMPLE_BACKWARD.get(mode, GRID_SAMPLE_BACKWARD[0])
    per_location += 2 if grad_grid and mode != 1 else 0
    return locations * (per_location + c * ((to_input if grad_input else 0) + (to_grid if grad_grid else 0)))


Shape = tuple[int, ...]  # the flop counter hands a formula its tensors' shapes


def _grid_sampler_2d_flop(input_shape: Shape, grid_shape: Shape, interpolation_mode: int, padding_mode: int,
                          align_corners: bool, *, out_shape: Shape, **kwargs: object) -> int:
    n, c = input_shape[:2]
    return grid_sample_flops(n, c, grid_shape[1], grid_shape[2], interpolation_mode)


def _grid_sampler_2d_backward_flop(grad_output_shape: Shape, input_shape: Shape, grid_shape: Shape,
                                   interpolation_mode: int, padding_mode: int, align_corners: bool,
                                   output_mask: list[bool], *, out_shape: object, **kwargs: object) -> int:
    n, c = input_shape[:2]
    return grid_sample_flops(n, c, grid_shape[1], grid_shape[2], interpolation_mode, backward=True,
                             grad_input=bool(output_mask[0]), grad_grid=bool(output_mask[1]))


def _cudnn_grid_sampler_flop(input_shape: Shape, grid_shape: Shape, *, out_shape: Shape, **kwargs: object) -> int:
    return grid_sample_flops(input_shape[0], input_shape[1], grid_shape[1], grid_shape[2], 0)  # bilinear only


def _cudnn_grid_sampler_backward_flop(input_shape: Shape, grid_shape: Shape, grad_output_shape: Shape, *,
                                      out_shape: object, **kwargs: object) -> int:
    return grid_sample_flops(input_shape[0], input_shape[1], grid_shape[1], grid_shape[2], 0, backward=True,
                             grad_input=True, grad_grid=True)


def flop_counter():  # noqa: ANN201 (a torch FlopCounterMode; torch is imported lazily here)
    """torch's flop counter (``FlopCounterMode``, not displayed) that also counts 2-D ``grid_sample``, forward and
    backward, CPU and cuDNN kernels, by :func:`grid_sample_flops`'s convention."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    return FlopCounterMode(display=False, custom_mapping={
        aten.grid_sampler_2d: _grid_sampler_2d_flop,
        aten.grid_sampler_2d_backward: _grid_sampler_2d_backward_flop,
        aten.cudnn_grid_sampler: _cudnn_grid_sampler_flop,
        aten.cudnn_grid_sampler_backward: _cudnn_grid_sampler_backward_flop,
    })


def train_flops_per_sequence(model, config, n: int = 2) -> float:  # noqa: ANN001 (model, Config)
    """FLOPs of one forward + backward pass of the training loss, per sequence (torch's flop counter, with
    ``grid_sample`` counted: :func:`flop_counter`)."""
    import torch

    from odevideo.losses import objective_loss

    d, tc = config.data, config.train
    frames = d.open("train").batch(range(n))["frames"]
    model.train()
    with flop_counter() as counter:
        loss, *_ = objective_loss(model, frames, torch.arange(float(d.n_frames)), n_context=d.n_context,
                                  objective=tc.objective, loss=tc.loss, kl_weight=tc.kl_weight)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / n


def matmul_peak(dtype=None, n: int = 2048, repeats: int = 20) -> float:  # noqa: ANN001 (a torch dtype)
    """GFLOP/s of an n x n matmul (best of ``repeats``) on the torch threads, fp32 unless ``dtype``."""
    import time

    import torch

    a, b = torch.randn(n, n, dtype=dtype or torch.float32), torch.randn(n, n, dtype=dtype or torch.float32)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return round(2 * n**3 / best / 1e9, 1)


def write(name: str, payload: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
