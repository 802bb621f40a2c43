"""Continuous time against true in-between frames: interpolation, frame-rate up-conversion x2/x4, 30-frame
extrapolation and irregular context (see ``odevideo.tasks``), for trained models and the nearest-frame,
linear-blend and zeros baselines.

    python benchmarks/continuous_time.py --model latent_ode=RUN_DIR [--model NAME=RUN_DIR ...] \
        --digits 1 --mnist-dir ../shared/data/mnist
    python benchmarks/continuous_time.py --data balls --model NAME=RUN_DIR ...   # bouncing balls (config balls)

Writes benchmarks/results/continuous_time.json, a list of rows with ``task``, ``method``, ``mse``, ``ssim`` and
``per_time`` (the curves at each query time), plus the digits, the test set, the checkpoint's config, the
machine and the command.
"""

from __future__ import annotations

import argparse
import datetime
import time

import torch
from common import provenance, write

from odevideo.inference import load_checkpoint
from odevideo.tasks import TASKS, TIME_BASELINES, evaluate_task, task_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="NAME=checkpoint file or run dir")
    parser.add_argument("--data", default=None, help="a shipped config or YAML whose data section gives the test "
                        "sequences (e.g. balls); default: Moving MNIST with --digits")
    parser.add_argument("--digits", type=int, default=1)
    parser.add_argument("--n", type=int, default=500, help="test sequences per task")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--results", default="continuous_time.json")
    parser.add_argument("--gif", default="continuous_time_x4.gif",
                        help="4x slow motion of one test sequence, truth | each model | linear blend (results/)")
    args = parser.parse_args()
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        ckpt = load_checkpoint(path)
        models[name] = (ckpt, path)
    rows = []
    torch.manual_seed(0)
    source = test_source(args)
    for task_name in args.tasks.split(","):
        task = TASKS[task_name]
        data = task_data(task, source, n=args.n)
        for method, result in evaluate_task(data, methods=TIME_BASELINES).items():
            rows.append({"task": task_name, "method": method, **result,
                         "config_note": "a time-aware baseline: no model, no config (src/odevideo/tasks.py)"})
        for name, (ckpt, path) in models.items():
            t0 = time.perf_counter()
            result = evaluate_task(data, ckpt.model)["model"]
            rows.append({"task": task_name, "method": name, **result, "checkpoint": path,
                         "config_resolved": ckpt.config.to_dict(), "train_steps": ckpt.step,
                         "seconds": round(time.perf_counter() - t0, 1)})
        for row in rows[-len(TIME_BASELINES) - len(models):]:
            print(f"{task_name:18s} {row['method']:28s} MSE {row['mse']:7.2f}  SSIM {row['ssim']:.3f}")
    shared = {"data": args.data or "moving_mnist", "digits": args.digits, "n_sequences": args.n,
              "test_digits": "full MNIST test (IDX)" if args.mnist_dir else "built-in subset", "seed": 0,
              **provenance(), "date": datetime.date.today().isoformat()}
    rows = [{**row, "task_description": TASKS[row["task"]].description, **shared} for row in rows]
    print(f"wrote {write(args.results, rows)}")
    if models and args.gif:
        print(f"wrote {slow_motion(models, args)}")


def test_source(args: argparse.Namespace):  # noqa: ANN201 (a test split that renders any time)
    if args.data is None:
        from odevideo.data.moving_mnist import MovingMNIST

        return MovingMNIST("test", digits=args.digits, mnist_dir=args.mnist_dir)
    from odevideo.config import load_config

    return load_config(args.data).data.open("test")


def slow_motion(models: dict, args: argparse.Namespace) -> object:
    """Context 0..9 at whole times, everything 0..19 generated at a quarter-frame step, side by side."""
    from common import RESULTS

    from odevideo.inference import generate
    from odevideo.tasks import time_baseline
    from odevideo.visualize import side_by_side, write_frames

    gen = test_source(args)
    t_ctx, t_q = torch.arange(10.0), torch.arange(0.0, 19.01, 0.25)
    context = gen.batch([0], t_ctx.numpy())["frames"]
    panels = [gen.batch([0], t_q.numpy())["frames"][0]]
    panels += [generate(ckpt.model, context, t_ctx, t_q).frames[0] for ckpt, _ in models.values()]
    panels.append(time_baseline("linear", context, t_ctx[None], t_q[None])[0])
    video = panels[0]
    for panel in panels[1:]:
        video = side_by_side(video, panel)
    return write_frames(RESULTS / args.gif, video, fps=8)


if __name__ == "__main__":
    main()
