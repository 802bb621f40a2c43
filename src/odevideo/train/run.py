"""``train()``: one training run in a run directory.

A run directory holds::

    config.yaml                     the resolved config
    command.txt                     the command line that started the run
    metrics.csv, tensorboard/       per-step metrics (CSV always; TensorBoard when installed)
    checkpoints/last.safetensors    latest weights (+ config in the metadata)
    checkpoints/best.safetensors    weights with the lowest validation MSE
    checkpoints/trainer.ckpt        optimizer, LR schedule, step and loop state, for ``--resume``
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from odevideo.config import Config
from odevideo.errors import CheckpointError
from odevideo.train.checkpoint import save_checkpoint
from odevideo.train.module import MovingMNISTData, TimeBudget, VideoODEModule


@dataclass
class TrainResult:
    """What a run produced."""

    run_dir: Path
    last: Path
    best: Path
    steps: int
    val_mse: float | None
    seconds: float


class WeightsCheckpoint(L.Callback):
    """Writes ``last``/``best`` safetensors after each validation and the trainer state for resuming."""

    def __init__(self, run_dir: Path, config: Config) -> None:
        self.dir, self.config = run_dir / "checkpoints", config
        self.best = math.inf
        self.validated_step = -1

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val = float(trainer.callback_metrics["val/mse"])
        step = trainer.global_step
        save_checkpoint(self.dir / "last.safetensors", module.model, self.config, step=step, val_mse=val)
        if val < self.best:
            self.best = val
            save_checkpoint(self.dir / "best.safetensors", module.model, self.config, step=step, val_mse=val)
        self.validated_step = step
        if trainer.state.fn == "fit":
            trainer.save_checkpoint(self.dir / "trainer.ckpt")

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        save_checkpoint(self.dir / "last.safetensors", module.model, self.config, step=trainer.global_step)
        trainer.save_checkpoint(self.dir / "trainer.ckpt")

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best = state["best"]


def _progress_bar() -> L.Callback:
    from lightning.pytorch.callbacks import RichProgressBar

    class StepProgressBar(RichProgressBar):
        """Lightning's rich bar, labelled by step: a stream of batches has no epochs worth showing."""

        def _get_train_description(self, current_epoch: int) -> str:
            return "train"

    return StepProgressBar()


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*(LeafSpec|treespec|TreeSpec|isinstance).*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")


def train(config: Config, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, num_workers: int = 0) -> TrainResult:
    """Train ``config`` in ``run_dir`` until ``train.max_steps`` or ``train.max_minutes``.

    Args:
        config: the resolved experiment config.
        run_dir: where config, metrics and checkpoints go; created if missing.
        resume: continue from ``run_dir/checkpoints/trainer.ckpt`` (optimizer, schedule, step, data position).
        overwrite: start afresh in a ``run_dir`` that already holds a run (its checkpoints are replaced).
        progress: show a progress bar.
        num_workers: DataLoader workers for the training stream (generation is fast; 0 is usually best).

    Raises:
        CheckpointError: ``resume`` without a trainer checkpoint in ``run_dir``, or a ``run_dir`` that already
            holds a run without ``resume`` or ``overwrite`` (nothing is lost by accident).
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    _quiet_lightning()
    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoints" / "trainer.ckpt"
    if resume and not ckpt_path.is_file():
        raise CheckpointError(f"--resume: no {ckpt_path} to resume from (train without --resume first)")
    if not (resume or overwrite) and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise CheckpointError(f"{run_dir} already holds a run: pass --resume to continue it, --overwrite to "
                              "replace it, or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config.to_yaml())
    (run_dir / "command.txt").write_text(shlex.join(sys.argv) + "\n")
    tc = config.train
    L.seed_everything(tc.seed, verbose=False)
    module = VideoODEModule(config)
    data = MovingMNISTData(config.data, num_workers=num_workers)
    loggers: list = [CSVLogger(run_dir, name="", version="")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
    weights = WeightsCheckpoint(run_dir, config)
    callbacks: list[L.Callback] = [weights, _progress_bar()] if progress else [weights]
    if tc.max_minutes:
        callbacks.append(TimeBudget(tc.max_minutes, tc.clock))
    trainer = L.Trainer(
        accelerator=tc.accelerator, devices=1, precision=tc.precision, max_steps=tc.max_steps,
        val_check_interval=tc.val_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=loggers, callbacks=callbacks, log_every_n_steps=tc.log_every,
        gradient_clip_val=tc.grad_clip or None, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=progress, default_root_dir=run_dir)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path if resume else None, weights_only=True)
    if weights.validated_step != trainer.global_step:  # the budget ended between validations
        trainer.validate(module, datamodule=data, verbose=False)
    seconds = time.perf_counter() - start
    torch.set_grad_enabled(True)
    best = run_dir / "checkpoints" / "best.safetensors"
    return TrainResult(run_dir=run_dir, last=run_dir / "checkpoints" / "last.safetensors", best=best,
                       steps=trainer.global_step, val_mse=None if math.isinf(weights.best) else weights.best,
                       seconds=seconds)
