"""The Lightning module, the time budget and the data module.

The training loop knows nothing of the model's insides: it asks the model for frames at some times and
compares them with the truth through :func:`odevideo.losses.objective_loss`, whose objective decides which
times (the context only, or the context and the targets).

A step whose ODE solve fails (:class:`~odevideo.errors.SolverError`) or whose loss or gradients are not finite
is skipped (parameters and optimizer state untouched) or stops the run, as ``train.on_failure`` says; the
decision is shared by all DDP processes, so none waits for a gradient that never comes.
"""

from __future__ import annotations

import logging
import math
import time

import lightning as L
import torch

from odevideo import metrics
from odevideo.config import Config
from odevideo.data import DataConfig
from odevideo.data.clips import FixedSet, TrainStream, as_float_frames
from odevideo.errors import SolverError
from odevideo.losses import objective_loss

log = logging.getLogger("odevideo.train")
MAX_FAILURES_IN_A_ROW = 10  # skipping stops the run after this many failed steps in a row


class VideoModule(L.LightningModule):
    """Trains any video model under the configured objective."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.model = config.build_model()
        self.skipped = 0  # failed steps skipped so far
        self.failures_in_a_row = 0
        self.stop_reason: str | None = None  # why training stopped on a failure, if it did
        self._skip_step = False

    def _unpack(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        frames = as_float_frames(batch["frames"])  # (B, T, C, H, W) in [0, 1]
        return frames, batch["times"].float()  # (B, T): per sample (irregular sampling) or all alike

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        frames, times = self._unpack(batch)
        tc = self.config.train
        problem = None
        try:
            loss, recon, out, target = objective_loss(self.model, frames, times, n_context=self.config.data.n_context,
                                                      objective=tc.objective, loss=tc.loss, kl_weight=tc.kl_weight,
                                                      perceptual_weight=tc.perceptual_weight)
            if not bool(torch.isfinite(loss.detach())):
                problem = f"the loss is {float(loss.detach())}"
        except SolverError as exc:
            problem = str(exc)
        if self._any_process(problem is not None):
            self._failed(problem or "a step failed in another process")
            # A zero loss through every parameter: backward still runs (DDP's gradient exchange stays in step
            # on every process) and the gradients are dropped before the optimizer sees them.
            return sum(p.sum() for p in self.model.parameters()) * 0.0
        self.failures_in_a_row = 0
        self.log_dict({"train/loss": loss, "train/pixel_loss": recon, "train/nfe": float(out.nfe),
                       "train/mse": metrics.mse(out.frames.detach(), target).mean()}, prog_bar=False)
        self.log("loss", loss, prog_bar=True, logger=False)
        return loss

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer,
                       optimizer_closure=None) -> None:  # noqa: ANN001 (Lightning's closure type)
        """Step unless the step failed: then every gradient is dropped, so the optimizer leaves the
        parameters and its state untouched (the learning-rate schedule and the step counter still advance, so
        the data stream and a resume stay aligned)."""

        def closure():  # noqa: ANN202
            self._skip_step = False
            result = optimizer_closure()
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            if not self._skip_step and grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
                self._failed("non-finite gradients")  # gradients are already averaged: all processes agree
            if self._skip_step:
                for p in self.model.parameters():
                    p.grad = None
            return result

        optimizer.step(closure=closure)

    def _any_process(self, flag: bool) -> bool:
        trainer = self._trainer
        return bool(trainer.strategy.reduce_boolean_decision(flag, all=False)) if trainer else flag

    def _failed(self, problem: str) -> None:
        """Record a failed step: skip it, or stop the run when ``train.on_failure=stop`` or too many failed."""
        self._skip_step = True
        self.skipped += 1
        self.failures_in_a_row += 1
        text = f"training step {self.global_step}: {problem}"
        if self.config.train.on_failure == "stop" or self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            why = ("train.on_failure=stop" if self.config.train.on_failure == "stop"
                   else f"{self.failures_in_a_row} failed steps in a row")
            self.stop_reason = f"{text} (stopped: {why})"
            if self._trainer:
                self.trainer.should_stop = True
        log.warning("skipped %s", text)
        if self._trainer:
            self.log("train/skipped", float(self.skipped))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        frames, times = self._unpack(batch)
        m = self.config.data.n_context
        try:
            mse = metrics.mse(self.model(frames[:, :m], times[:, :m], times[:, m:]).frames, frames[:, m:]).mean()
        except SolverError as exc:  # scored as infinitely bad: never the best checkpoint, and training goes on
            log.warning("validation at step %d failed: %s", self.global_step, exc)
            mse = frames.new_tensor(math.inf)
        self.log("val/mse", mse, prog_bar=True, batch_size=frames.shape[0], sync_dist=True)

    def budget_used(self, step: int) -> float:
        """Fraction of the training budget spent after warm-up: steps or time, whichever is further.

        With a time budget (``train.max_minutes``) the cosine schedule thus reaches 0 when time runs out,
        not at a ``max_steps`` that will never be reached."""
        tc = self.config.train
        used = (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps)
        trainer = self._trainer
        budget = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None) if trainer else None
        if budget is not None:
            used = max(used, budget.fraction_used())
        return min(1.0, max(0.0, used))

    def configure_optimizers(self):  # noqa: ANN201 (Lightning's union of return types)
        tc = self.config.train
        opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

        def schedule(step: int) -> float:  # linear warm-up, then cosine to 0 at the end of the budget
            if step < tc.warmup_steps:
                return (step + 1) / tc.warmup_steps
            return 0.5 * (1 + math.cos(math.pi * self.budget_used(step)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class TimeBudget(L.Callback):
    """Stops training once ``minutes`` have passed on ``clock``.

    ``wall`` is elapsed real time; ``process`` is the CPU time of this process summed over its threads, which
    measures the work done whatever else the machine is running (2 busy threads spend 2 CPU-minutes per
    minute). The time spent is kept in checkpoints, so a resumed run continues the same budget. Under DDP the
    first process's clock rules, shared after every step, so all processes follow the same learning-rate
    schedule and stop at the same step.
    """

    def __init__(self, minutes: float, clock: str) -> None:
        self.budget_s, self.clock = 60.0 * minutes, clock
        self.spent_before = 0.0  # seconds spent by earlier (resumed-from) runs
        self._start: float | None = None
        self._shared: float | None = None  # the first process's elapsed time at the last step

    def _now(self) -> float:
        return time.process_time() if self.clock == "process" else time.monotonic()

    def elapsed(self) -> float:
        return self.spent_before + (0.0 if self._start is None else self._now() - self._start)

    def fraction_used(self) -> float:
        return (self.elapsed() if self._shared is None else self._shared) / self.budget_s

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = self._now()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        elapsed = self.elapsed()
        if trainer.world_size > 1:
            elapsed = float(trainer.strategy.broadcast(elapsed, src=0))
            self._shared = elapsed
        if elapsed >= self.budget_s:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, float]:
        return {"spent": self.elapsed()}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.spent_before = float(state["spent"])


class ClipData(L.LightningDataModule):
    """The training stream and the fixed validation set of any dataset kind, from its config.

    A folder of videos is decoded into its cache by the first process of each machine (``prepare_data``)
    before any process opens it; under DDP each process then reads its own shard of the training stream."""

    def __init__(self, data: DataConfig, num_workers: int = 0, progress: bool = True) -> None:
        super().__init__()
        self.data, self.num_workers, self.progress = data, num_workers, progress

    def _open(self, split: str):  # noqa: ANN202 (a source of the dataset's kind)
        return self.data.open(split, progress=self.progress)

    def prepare_data(self) -> None:
        if self.data.kind == "folder":
            for split in ("train", "val"):
                self._open(split)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        trainer = self.trainer
        # A resumed trainer has restored global_step by now: continue the stream where it stopped.
        stream = TrainStream(self._open("train"), self.data.batch_size,
                             start=trainer.global_step if trainer else 0,
                             rank=trainer.global_rank if trainer else 0,
                             world_size=trainer.world_size if trainer else 1,
                             irregular=self.data.irregular, n_context=self.data.n_context,
                             irregular_span=self.data.irregular_span, seed=self.data.seed)
        return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.num_workers,
                                           persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(FixedSet(self._open("val"), self.data.val_size), batch_size=64)
