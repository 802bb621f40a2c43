"""The ``odevideo`` command: a table of subcommands, each parsing its options and calling the library.

Heavy imports (torch, lightning) happen inside the commands, so ``odevideo --help`` stays fast. Errors for
bad input are printed on one line with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from odevideo.errors import OdevideoError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Video generation with a Neural ODE in latent space.")
config_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                         help="Show the shipped configs.")
app.add_typer(config_app, name="config")

Checkpoint = Annotated[Path, typer.Option("--checkpoint", "-c", help="A .safetensors checkpoint, a run directory, or "
                                                                    "a shipped model's name (odevideo models).")]
Quiet = Annotated[bool, typer.Option("--quiet", "--no-progress", "-q", help="No progress bars.")]
Device = Annotated[str, typer.Option(help="auto (a GPU if there is one, else the CPU), cpu, cuda or cuda:N.")]
ConfigName = Annotated[str, typer.Option(help="A shipped config (odevideo config list) or a YAML path.")]
Overrides = Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value (repeatable).")]


def _generator(seed: int, device: object):  # noqa: ANN202 (a torch.Generator; torch is imported lazily)
    import torch

    return torch.Generator(device=device).manual_seed(seed)


def _parse_times(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OdevideoError(f"{flag} must be comma-separated numbers, got {text!r}") from None


@app.command("train")
def train_cmd(
    config: Annotated[str | None, typer.Option(help="A shipped config (odevideo config list) or a YAML path "
                                                    "[default: demo; kth with --data].")] = None,
    data: Annotated[Path | None, typer.Option(help="Train on this folder of your videos (data.kind=folder, "
                                                   "data.path); without --config, with the kth config.")] = None,
    set_: Overrides = None,
    max_steps: Annotated[int | None, typer.Option(help="Train exactly this many steps (train.max_steps); without "
                                                       "--max-minutes it also lifts the config's time budget, so "
                                                       "the run is step-bound and reproducible.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Override train.max_minutes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/CONFIG).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a run already in --out.")] = False,
    mnist_dir: Annotated[Path | None, typer.Option(help="MNIST IDX files (default: built-in digits).")] = None,
    devices: Annotated[str | None, typer.Option(help="Devices per machine: N, a list 0,1 or auto "
                                                     "(train.devices); > 1 trains with DDP.")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Machines (train.num_nodes); launch with torchrun.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Lightning strategy: auto, ddp, ddp_spawn, ... "
                                                      "(train.strategy).")] = None,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes for the training batches (0: the "
                                              "main process, which --resume continues exactly).")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a model (the latent ODE or a baseline, as model.kind says) on Moving MNIST, bouncing balls or a
    folder of your videos (--data); writes config.yaml, metrics.csv and checkpoints/{last,best}.safetensors
    into --out.

    SIGTERM or Ctrl-C stops after the current step with a checkpoint; --resume continues exactly there."""
    from odevideo.config import load_config
    from odevideo.training.run import train

    config = config or ("kth" if data is not None else "demo")
    overrides = list(set_ or [])
    if data is not None:
        overrides += ["data.kind=folder", f"data.path={data}"]
    if max_steps is not None and max_minutes is None:
        overrides.append("train.max_minutes=null")
    for key, value in (("train.max_steps", max_steps), ("train.max_minutes", max_minutes),
                       ("train.seed", seed), ("data.mnist_dir", mnist_dir), ("train.devices", devices),
                       ("train.num_nodes", num_nodes), ("train.strategy", strategy)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(config, overrides)
    out = out or Path("runs") / Path(config).stem
    if workers < 0:
        raise OdevideoError(f"--workers must be >= 0, got {workers}")
    result = train(cfg, out, resume=resume, overwrite=overwrite, progress=not quiet, num_workers=workers)
    if not result.main_process:
        return  # the other DDP processes stay quiet
    if result.interrupted:
        typer.echo(f"odevideo: stopped by {result.interrupted} after step {result.steps}; checkpoints are in "
                   f"{result.run_dir / 'checkpoints'}; the same command with --resume continues", err=True)
        sys.exit(128 + int(getattr(signal, result.interrupted)))
    skipped = f"; skipped {result.skipped} failed steps" if result.skipped else ""
    typer.echo(f"trained {result.steps} steps in {result.seconds:.0f} s; best val MSE "
               f"{result.val_mse if result.val_mse is None else round(result.val_mse, 2)}{skipped}")
    typer.echo(f"wrote {result.run_dir}/config.yaml, {result.last}, {result.best}")


@app.command("predict")
def predict_cmd(
    checkpoint: Checkpoint,
    input: Annotated[Path, typer.Option("--input", "-i", help="A clip: a video (mp4, webm, gif, ...), a folder of "
                                        "frames, .npy/.npz, or an example clip's name (digits1, digits2, balls, "
                                        "balls_colour).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .npy, .gif, .mp4 or .webm.")],
    n_context: Annotated[int | None, typer.Option(help="Context frames (default: all).")] = None,
    n_future: Annotated[int | None, typer.Option(help="Frames to generate after the context (default: as many as "
                                                      "the model was trained to predict).")] = None,
    horizon: Annotated[float | None, typer.Option(help="Generate this far (in input frames, real) past the "
                                                        "context.")] = None,
    times: Annotated[str | None, typer.Option(help="Real times to generate, e.g. 9.5,10,10.25.")] = None,
    fps_factor: Annotated[int, typer.Option(help="Frames per input frame interval (4: 4x frame rate).")] = 1,
    include_context: Annotated[bool, typer.Option(help="Also re-render the context window at --fps-factor.")] = False,
    context_times: Annotated[str | None, typer.Option(help="Times of the context frames if not 0,1,2,... "
                                                            "(irregular inputs).")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of a video output.")] = 4.0,
    samples: Annotated[int, typer.Option(help="Draw K futures (stochastic models): OUT_s0, OUT_s1, ...")] = 1,
    sample_seed: Annotated[int, typer.Option(help="Seed of the samples' randomness.")] = 0,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Generate frames from the first context frames of a clip, at any real times."""
    from odevideo.inference import load_checkpoint
    from odevideo.predict import predict_file

    parsed = None if times is None else _parse_times(times, "--times")
    parsed_ctx = None if context_times is None else _parse_times(context_times, "--context-times")
    ckpt = load_checkpoint(checkpoint, device=device)
    if n_future is None and horizon is None and parsed is None:  # as far as the model was trained to predict
        n_future = ckpt.config.data.n_frames - ckpt.config.data.n_context
    generator = _generator(sample_seed, ckpt.device) if samples > 1 else None
    paths = predict_file(ckpt.model, input, out, n_context=n_context, n_future=n_future, horizon=horizon,
                         times=parsed, fps_factor=fps_factor, include_context=include_context,
                         context_times=parsed_ctx, fps=fps, samples=samples, generator=generator)
    for path in paths if isinstance(paths, list) else [paths]:
        typer.echo(f"wrote {path}")


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: Checkpoint,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="results JSON to write (default: beside the "
                                                                  "checkpoint, NAME.results.json).")] = None,
    data: Annotated[Path | None, typer.Option(help="Score on the test split of this folder of videos "
                                                   "(default: the checkpoint's own dataset).")] = None,
    test_file: Annotated[Path | None, typer.Option(help="mnist_test_seq.npy layout: (T,N,H,W) uint8.")] = None,
    digits: Annotated[int | None, typer.Option(help="Digits per generated Moving MNIST test sequence (default: "
                                                     "the checkpoint's).")] = None,
    n: Annotated[int | None, typer.Option("--n", help="Test sequences [default: 1000 generated; all of a "
                                                      "folder's test clips].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of a generated test set [default: 0].")] = None,
    n_context: Annotated[int | None, typer.Option(help="Context frames (default: the checkpoint's).")] = None,
    n_future: Annotated[int | None, typer.Option(help="Frames to predict (default: the checkpoint's).")] = None,
    mnist_dir: Annotated[Path | None, typer.Option(help="MNIST IDX files (default: built-in digits).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass (32: the fastest and smallest on a 2-core "
                                                 "CPU, docs/benchmarks.md).")] = 32,
    fvd: Annotated[bool, typer.Option(help="Also score FVD (I3D features of every video at 224x224: minutes "
                                           "on a CPU; needs odevideo[metrics]).")] = False,
    samples: Annotated[int, typer.Option(help="Also draw K futures per sequence (stochastic models) and report "
                                              "best of K, mean of K and their diversity.")] = 1,
    sample_seed: Annotated[int, typer.Option(help="Seed of the samples' randomness.")] = 0,
    cache: Annotated[bool, typer.Option(help="Keep the baselines' scores and the truth's FVD features by the test "
                                             "set's hash (in ~/.cache/odevideo/scores), so that the next model "
                                             "scored on it skips them.")] = True,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Score a checkpoint and the copy-last, zeros and extrapolation baselines on test sequences; write a results
    JSON.

    The test set is the test split of the checkpoint's dataset (generated Moving MNIST or bouncing balls, or
    the held-out files of its folder), of the folder --data names, or the file --test-file names (streamed in
    batches, so a file of any length fits in memory)."""
    from odevideo.evaluation import assemble_test_set, evaluate, write_json
    from odevideo.inference import load_checkpoint

    if (n is not None and n < 1) or batch_size < 1:
        raise OdevideoError(f"--n and --batch-size must be >= 1, got {n} and {batch_size}")
    ckpt = load_checkpoint(checkpoint, device=device)
    d = ckpt.config.data
    n_context = d.n_context if n_context is None else n_context
    n_future = d.n_frames - d.n_context if n_future is None else n_future
    test = assemble_test_set(d, continuous=ckpt.model.continuous, n_frames=n_context + n_future, folder=data,
                             test_file=test_file, digits=digits, n=n, seed=seed, mnist_dir=mnist_dir,
                             progress=not quiet)
    generator = _generator(sample_seed, ckpt.device) if samples > 1 else None
    result = evaluate(ckpt.model, test.frames, n_context=n_context, n_future=n_future, times=test.times,
                      batch_size=batch_size, progress=not quiet, fvd=fvd, samples=samples, generator=generator,
                      cache=cache)
    out = out or ckpt.path.with_name(ckpt.path.stem + ".results.json")
    write_json(out, {"checkpoint": str(ckpt.path), "test_set": test.description, "device": str(ckpt.device),
                     **result})
    _echo_scores(result)
    typer.echo(f"wrote {out}")


def _echo_scores(result: dict) -> None:
    """One line per kind of score of ``odevideo evaluate``'s results."""
    base = result["baselines"]
    lpips = f"; LPIPS {result['lpips']:.4f} (copy_last {base['copy_last']['lpips']:.4f})" if "lpips" in result else ""
    typer.echo(f"MSE {result['mse']:.2f} (copy_last {base['copy_last']['mse']:.2f}, zeros {base['zeros']['mse']:.2f}); "
               f"SSIM {result['ssim']:.3f}; PSNR {result['psnr']:.2f} dB{lpips} on {result['n_sequences']} sequences")
    if "fvd" in result:
        typer.echo(f"FVD {result['fvd']:.1f} (copy_last {base['copy_last']['fvd']:.1f}, zeros "
                   f"{base['zeros']['fvd']:.1f}) on {result['fvd_protocol']['videos']} videos of "
                   f"{result['fvd_protocol']['frames']} frames")
    if "samples" in result:
        drawn = result["samples"]
        typer.echo(f"{drawn['k']} samples: MSE best of {drawn['k']} {drawn['best_of_k']['mse']:.2f}, mean "
                   f"{drawn['mean_of_k']['mse']:.2f}; diversity {drawn['diversity']['mse_between_samples']:.2f}")
    if "note" in result["perceptual"]:
        typer.echo(f"odevideo: {result['perceptual']['note']}", err=True)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("odevideo-demo"),
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the demo config's 200).")] = None,
    quiet: Quiet = False,
) -> None:
    """Train a small model on 1-digit Moving MNIST (200 steps, about a minute); write a grid, a GIF, a latent
    view, the checkpoint and metrics.json into --out."""
    from odevideo.demo import run_demo

    if steps is not None and steps < 1:
        raise OdevideoError(f"--steps must be >= 1, got {steps}")
    result = run_demo(out, steps=steps, progress=not quiet)
    for name, path in result.files.items():
        typer.echo(f"wrote {name:<10} {path}")
    b = result.baselines
    typer.echo(f"test MSE (per-frame sum, 10 -> 10): model {result.mse:.2f} | copy_last {b['copy_last']:.2f} | "
               f"zeros {b['zeros']:.2f}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default: only this machine).")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    checkpoint: Annotated[list[Path] | None, typer.Option("--checkpoint", "-c", help="Also offer this checkpoint "
                                                          "or run directory (repeatable).")] = None,
    device: Device = "cpu",
    workers: Annotated[int, typer.Option(help="Jobs generated at the same time.")] = 1,
    queue: Annotated[int, typer.Option(help="Jobs that may wait for a worker; one more is answered 503 "
                                            "(busy).")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds after which an unfinished job fails.")] = 60.0,
    keep: Annotated[float, typer.Option(help="Seconds a result's files are kept after it is done.")] = 600.0,
) -> None:
    """A web page to continue a clip with a model at any frame rate: pick a model and an example clip or upload one
    (GIF, MP4, WebM, NPY), watch the result beside the truth, the error curve, the latent view and the frame at
    any real time. Generation runs in a bounded job queue. Offline, no analytics. Needs pip install
    'odevideo[web]'."""
    try:
        from odevideo.web.app import serve
        from odevideo.web.jobs import QueueLimits
    except ImportError as exc:
        raise OdevideoError(f"odevideo serve needs the web extra ({exc.name} is missing): "
                            "pip install 'odevideo[web]'") from None
    limits = QueueLimits(workers=workers, queue=queue, timeout_s=timeout, keep_s=keep)
    named = {Path(p).stem if Path(p).suffix else Path(p).name: p for p in checkpoint or []}
    typer.echo(f"odevideo: serving on http://{host}:{port}/ (Ctrl-C stops)")
    serve(host=host, port=port, checkpoints=named, device=device, queue=limits)


@app.command("models")
def models_cmd() -> None:
    """List the models that ship with odevideo, usable by name wherever a checkpoint is asked for
    (--checkpoint mmnist2): what each is, its size and its benchmark scores (cards in odevideo/pretrained)."""
    import textwrap

    from odevideo import pretrained

    width = max(9, *(len(n) for n in pretrained.names()))
    for name in pretrained.names():
        c = pretrained.card(name)
        h = c["headline"]
        scores = f"test MSE {h['mse']:.1f} (copy-last {h['copy_last_mse']:.1f})" if "mse" in h else ""
        if "fvd" in h:
            scores += f", FVD {h['fvd']:.1f}, LPIPS {h['lpips']:.3f}"
        if "best_of_k_mse" in h:
            scores += f", best of {h['k']} MSE {h['best_of_k_mse']:.1f}"
        typer.echo(f"{name:<{width}} {c['title']}; {c['kind']}, {c['parameters']:,} parameters, {c['channels']}x"
                   f"{c['size']}x{c['size']}, {c['n_context']} -> {c['n_future']} frames\n          {scores}\n"
                   + textwrap.fill(c["about"], 110, initial_indent=" " * 10, subsequent_indent=" " * 10))
    typer.echo(f"\nCards, with each score's command and results file: {pretrained.HERE}/NAME.json")


@app.command("info")
def info_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint or a run directory.")],
) -> None:
    """Print a checkpoint's model kind, parameter count, training step, validation MSE and resolved config."""
    from odevideo.inference import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    val = "none recorded" if ckpt.val_mse is None else f"{ckpt.val_mse:.2f}"
    typer.echo(f"checkpoint:     {ckpt.path}\nmodel kind:     {ckpt.config.model.kind}\n"
               f"parameters:     {ckpt.n_parameters:,}\ntraining steps: {ckpt.step}\nvalidation MSE: {val}\n"
               f"\n# resolved config\n{ckpt.config.to_yaml()}", nl=False)


@config_app.command("show")
def config_show_cmd(
    name: Annotated[str, typer.Argument(help="A shipped config (odevideo config list) or a YAML path.")],
    set_: Overrides = None,
) -> None:
    """Print a config, resolved over the defaults, with each field's documentation."""
    from odevideo.config import load_config

    typer.echo(load_config(name, list(set_ or [])).describe(), nl=False)


@config_app.command("list")
def config_list_cmd() -> None:
    """List the shipped configs and what each is for."""
    from odevideo.config import SHIPPED_CONFIGS, read_config_file_text

    for name in SHIPPED_CONFIGS:
        first = read_config_file_text(name).splitlines()[0].lstrip("# ")
        typer.echo(f"{name:<12} {first}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run a subcommand, turning odevideo's errors into a one-line message and exit 2."""
    try:
        app(args=argv, prog_name="odevideo")
    except OdevideoError as exc:
        typer.echo(f"odevideo: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("odevideo: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
