"""``train()``: one training run in a run directory.

A run directory holds::

    config.yaml                     the resolved config
    command.txt                     the command line that started the run
    metrics.csv, tensorboard/       per-step metrics (CSV always; TensorBoard when installed)
    checkpoints/last.safetensors    latest weights (+ config in the metadata)
    checkpoints/best.safetensors    weights with the lowest validation MSE
    checkpoints/trainer-stepN.ckpt  optimizer, LR schedule, step, RNG and loop state, for ``--resume``
                                    (the newest ``train.keep_last``)

Every file is written atomically (a temporary file, flushed to disk, then renamed), so a crash or ``kill -9``
at any moment leaves the previous version intact. ``--resume`` takes the newest trainer checkpoint that loads
and falls back to the one before it if the newest is damaged. A step-bound run (no ``train.max_minutes``)
resumed on the same machine ends with the same weights, bit for bit, as a run never interrupted: the
optimizer, the schedule, the step, the RNG states and the position in the data stream are all restored.
SIGTERM and SIGINT (Ctrl-C) stop at the end of the current step and write a final checkpoint.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import random
import re
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from odevideo.config import Config, TrainConfig
from odevideo.errors import CheckpointError, ConfigError, SolverError
from odevideo.inference import save_checkpoint
from odevideo.training.module import ClipData, TimeBudget, VideoModule

log = logging.getLogger("odevideo.train")
TRAINER_CKPT = re.compile(r"trainer-step(\d+)\.ckpt")


@dataclass
class TrainResult:
    """What a run produced."""

    run_dir: Path
    last: Path
    best: Path
    steps: int
    val_mse: float | None
    seconds: float
    interrupted: str | None = None  # "SIGTERM" or "SIGINT" when a signal stopped the run
    skipped: int = 0  # failed steps that were skipped
    main_process: bool = True  # False in the other processes of a multi-process (DDP) run


def trainer_checkpoints(run_dir: Path) -> list[Path]:
    """The trainer checkpoints of a run directory, newest (highest step) first."""
    found = [(int(m.group(1)), p) for p in (run_dir / "checkpoints").glob("trainer-step*.ckpt")
             if (m := TRAINER_CKPT.fullmatch(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def resume_checkpoint(run_dir: Path) -> Path:
    """The newest trainer checkpoint that loads (without unpickling code), warning about damaged newer ones.

    Raises:
        CheckpointError: none at all, or none that loads.
    """
    candidates = trainer_checkpoints(run_dir)
    if not candidates:
        raise CheckpointError(f"--resume: no trainer checkpoint (trainer-step*.ckpt) in {run_dir / 'checkpoints'} "
                              "to resume from (train without --resume first)")
    damaged = []
    for path in candidates:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if "global_step" in state and "optimizer_states" in state:
                for bad in damaged:  # keep them for inspection, out of the rotation of the last K
                    bad.rename(bad.with_name(bad.name + ".damaged"))
                return path
            problem = "not a Lightning trainer checkpoint"
        except Exception as exc:  # noqa: BLE001 (a damaged file can fail in many ways; we only report it)
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.warning("cannot resume from %s (%s); trying an older checkpoint (the damaged file is kept as "
                    "%s.damaged)", path, problem, path.name)
        damaged.append(path)
    raise CheckpointError(f"--resume: no loadable trainer checkpoint in {run_dir / 'checkpoints'}; damaged: "
                          + ", ".join(p.name for p in candidates))


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RNGState(L.Callback):
    """Saves and restores the global RNG states (torch, NumPy, Python) with the trainer checkpoint, so a resumed
    run draws what the uninterrupted run would have drawn (e.g. the z0 samples of a variational model)."""

    def state_dict(self) -> dict[str, object]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos,
                                                            has_gauss, gauss],
                "python": [version, list(internal), gauss_next]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
        kind, keys, pos, has_gauss, gauss = state["numpy"]  # type: ignore[misc]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state["python"]  # type: ignore[misc]
        random.setstate((version, tuple(internal), gauss_next))


class WeightsCheckpoint(L.Callback):
    """Writes ``last``/``best`` safetensors after each validation, and a trainer checkpoint for resuming
    (keeping the newest ``keep_last``); also when training ends or a signal stops it."""

    def __init__(self, run_dir: Path, config: Config) -> None:
        self.dir, self.config = run_dir / "checkpoints", config
        self.best = math.inf
        self.validated_step = -1

    def _save_trainer(self, trainer: L.Trainer) -> None:
        step = trainer.global_step
        path = self.dir / f"trainer-step{step}.ckpt"
        tmp = self.dir / f".trainer-step{step}.ckpt.tmp"
        trainer.save_checkpoint(tmp)  # every process takes part; only the first writes
        if trainer.is_global_zero:
            _fsync_replace(tmp, path)
            for old in trainer_checkpoints(self.dir.parent)[self.config.train.keep_last:]:
                old.unlink(missing_ok=True)
        trainer.strategy.barrier("odevideo-checkpoint")

    def _save_weights(self, trainer: L.Trainer, module: L.LightningModule, name: str,
                      val: float | None = None) -> None:
        if trainer.is_global_zero:
            save_checkpoint(self.dir / name, module.model, self.config, step=trainer.global_step, val_mse=val)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val = float(trainer.callback_metrics["val/mse"])
        self._save_weights(trainer, module, "last.safetensors", val)
        if val < self.best:
            self.best = val
            self._save_weights(trainer, module, "best.safetensors", val)
        self.validated_step = trainer.global_step
        if trainer.state.fn == "fit":
            self._save_trainer(trainer)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._save_weights(trainer, module, "last.safetensors")
        self._save_trainer(trainer)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException):  # raised between steps: the state is consistent
            self.on_train_end(trainer, module)

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best = state["best"]


class _Signals:
    """While training: SIGTERM is Lightning's (it stops after the current step); SIGINT (Ctrl-C) is turned into
    a SIGTERM, so both stop at the same safe point and write a checkpoint."""

    def __init__(self) -> None:
        self.received: str | None = None

    def __enter__(self) -> _Signals:
        self._old = {}
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be installed by the main thread
        self._old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.received = self.received or "SIGINT"
        os.kill(os.getpid(), signal.SIGTERM)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self.received = self.received or "SIGTERM"

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class BudgetProgress(L.Callback):
    """A progress bar that counts toward whichever limit will stop the run: ``train.max_steps`` or the time
    budget (``train.max_minutes``), with the step, the loss and the last validation MSE beside it."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps
        self.bar = None

    def _fraction(self, trainer: L.Trainer) -> tuple[float, str]:
        steps = trainer.global_step / self.max_steps
        budget = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None)
        if budget is not None and budget.fraction_used() > steps:
            spent = budget.elapsed() if budget._shared is None else budget._shared
            return budget.fraction_used(), f"{spent / 60:.1f} of {budget.budget_s / 60:g} {budget.clock} min"
        return steps, f"of {self.max_steps} steps"

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        from tqdm import tqdm

        if trainer.is_global_zero:
            self.bar = tqdm(total=1.0, desc="starting", file=sys.stderr, dynamic_ncols=True,
                            bar_format="train {percentage:3.0f}%|{bar}| {desc} [{elapsed}<{remaining}]")

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if self.bar is None:
            return
        fraction, limit = self._fraction(trainer)
        metrics = trainer.callback_metrics
        text = f"step {trainer.global_step} {limit}"
        if "loss" in metrics:
            text += f", loss {float(metrics['loss']):.4f}"
        if "val/mse" in metrics:
            text += f", val MSE {float(metrics['val/mse']):.1f}"
        self.bar.set_description_str(text, refresh=False)
        self.bar.update(min(1.0, fraction) - self.bar.n)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, module)


def native_bf16(device: str) -> bool:
    """Whether ``device`` (``cpu`` or ``cuda``) computes bf16 natively, rather than emulating it.

    CUDA: compute capability 8.0 or later (Ampere on). CPU: the x86 flags ``avx512_bf16`` or ``amx_bf16``, or
    the Arm feature ``bf16``, in /proc/cpuinfo; a CPU without them emulates bf16 (seen: 14x slower than fp32).
    """
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    words = set(" ".join(line.split(":", 1)[1] for line in text.splitlines()
                         if line.split(":", 1)[0].strip() in ("flags", "Features") and ":" in line).split())
    return bool(words & {"avx512_bf16", "amx_bf16", "bf16"})


def resolve_precision(precision: str, accelerator: str) -> str:
    """``train.precision`` for Lightning: ``auto`` becomes ``bf16-mixed`` where the device that
    ``accelerator`` picks computes bf16 natively (:func:`native_bf16`), else ``32-true``; others pass through."""
    if precision != "auto":
        return precision
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        device = "cuda"
    elif accelerator in ("cpu", "auto"):
        device = "cpu"
    else:
        return "32-true"  # MPS, TPU, ...: not measured here
    return "bf16-mixed" if native_bf16(device) else "32-true"


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*(LeafSpec|treespec|TreeSpec|isinstance).*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")


def _prepare_run_dir(run_dir: Path, config: Config, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a run by accident, clear an overwritten run's trainer checkpoints, and write the
    resolved config and the command line."""
    ckpt_dir = run_dir / "checkpoints"
    if not (resume or overwrite) and ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        raise CheckpointError(f"{run_dir} already holds a run: pass --resume to continue it, --overwrite to "
                              "replace it, or choose another --out")
    if overwrite and not resume:
        for old in trainer_checkpoints(run_dir):
            old.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config.to_yaml())
    (run_dir / "command.txt").write_text(shlex.join(sys.argv) + "\n")


def _trainer(tc: TrainConfig, run_dir: Path, callbacks: list[L.Callback], progress: bool) -> L.Trainer:
    """The Lightning trainer of a run: loggers (CSV, and TensorBoard where installed), the time budget and the
    progress bar, on top of ``callbacks``."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list = [CSVLogger(run_dir, name="", version="")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
    if tc.max_minutes:
        callbacks.append(TimeBudget(tc.max_minutes, tc.clock))
    if progress:
        callbacks.append(BudgetProgress(tc.max_steps))
    return L.Trainer(
        accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes, strategy=tc.strategy,
        precision=tc.precision, max_steps=tc.max_steps,
        val_check_interval=tc.val_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=loggers, callbacks=callbacks, log_every_n_steps=tc.log_every,
        gradient_clip_val=tc.grad_clip or None, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=False, default_root_dir=run_dir)


def train(config: Config, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, num_workers: int = 0, callbacks: Sequence[L.Callback] = ()) -> TrainResult:
    """Train ``config`` in ``run_dir`` until ``train.max_steps`` or ``train.max_minutes``.

    Args:
        config: the resolved experiment config.
        run_dir: where config, metrics and checkpoints go; created if missing.
        resume: continue from the newest loadable trainer checkpoint in ``run_dir`` (optimizer, schedule, step,
            RNG states, data position).
        overwrite: start afresh in a ``run_dir`` that already holds a run (its checkpoints are replaced).
        progress: show a progress bar.
        num_workers: DataLoader workers for the training stream (generation is fast; 0 is usually best, and
            exact resume assumes it).
        callbacks: extra Lightning callbacks.

    Returns:
        What the run produced; ``interrupted`` names the signal if SIGTERM/SIGINT stopped it (after writing
        checkpoints).

    Raises:
        CheckpointError: ``resume`` without a loadable trainer checkpoint in ``run_dir``, or a ``run_dir`` that
            already holds a run without ``resume`` or ``overwrite`` (nothing is lost by accident).
        SolverError: a failed step stopped the run (``train.on_failure=stop``, or too many failures in a row);
            the checkpoints of the last good step are written first.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    _quiet_lightning()
    # What ran is what is written: config.yaml and the checkpoints record the precision that "auto" became.
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, precision=resolve_precision(config.train.precision, config.train.accelerator)))
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = resume_checkpoint(run_dir) if resume else None
    _prepare_run_dir(run_dir, config, resume=resume, overwrite=overwrite)
    L.seed_everything(config.train.seed, verbose=False)
    module = VideoModule(config)
    data = ClipData(config.data, num_workers=num_workers, progress=progress)
    weights = WeightsCheckpoint(run_dir, config)
    trainer = _trainer(config.train, run_dir, [weights, RNGState(), *callbacks], progress)
    start = time.perf_counter()
    interrupted = None
    with _Signals() as signals:
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
        except SIGTERMException:
            interrupted = signals.received or "SIGTERM"
    if interrupted is None and module.stop_reason is None and weights.validated_step != trainer.global_step:
        trainer.validate(module, datamodule=data, verbose=False)  # the budget ended between validations
    seconds = time.perf_counter() - start
    torch.set_grad_enabled(True)
    if module.stop_reason is not None:
        raise SolverError(f"{module.stop_reason}; checkpoints of step {trainer.global_step} are in {ckpt_dir} "
                          "(--resume continues from there once the cause is fixed)")
    return TrainResult(run_dir=run_dir, last=ckpt_dir / "last.safetensors", best=ckpt_dir / "best.safetensors",
                       steps=trainer.global_step, val_mse=None if math.isinf(weights.best) else weights.best,
                       seconds=seconds, interrupted=interrupted, skipped=module.skipped,
                       main_process=trainer.is_global_zero)
