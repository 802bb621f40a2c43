"""The Lightning module (loss and objective) and the Moving MNIST data module.

The training loop knows nothing of the model's insides: it asks the model for frames at some times and
compares them with the truth. The objective decides which times:

- ``reconstruction`` (Voleti et al.): the context times only; the future is extrapolated at test time.
- ``prediction``: the context and the target times.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch.nn import functional as F

from odevideo import metrics
from odevideo.config import Config, DataConfig
from odevideo.data.moving_mnist import FixedSet, MovingMNIST, TrainStream, as_float_frames
from odevideo.models import build_model


def pixel_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean per-pixel loss of frame logits against target frames in [0, 1]."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(torch.sigmoid(logits), target)


class VideoODEModule(L.LightningModule):
    """Trains a latent ODE under the configured objective."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.model = build_model(config)

    def _unpack(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        frames = as_float_frames(batch["frames"])  # (B, T, C, H, W) in [0, 1]
        return frames, batch["times"][0].float()  # times are shared across the batch: (T,)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        frames, times = self._unpack(batch)
        m = self.config.data.n_context
        n_query = m if self.config.train.objective == "reconstruction" else frames.shape[1]
        out = self.model(frames[:, :m], times[:m], times[:n_query])
        target = frames[:, :n_query]
        recon = pixel_loss(out.logits, target, self.config.train.loss)
        loss = recon + self.config.train.kl_weight * out.kl()
        self.log_dict({"train/loss": loss, "train/pixel_loss": recon, "train/nfe": float(out.nfe),
                       "train/mse": metrics.mse(out.frames.detach(), target).mean()}, prog_bar=False)
        self.log("loss", loss, prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        frames, times = self._unpack(batch)
        m = self.config.data.n_context
        out = self.model(frames[:, :m], times[:m], times[m:])
        self.log("val/mse", metrics.mse(out.frames, frames[:, m:]).mean(), prog_bar=True,
                 batch_size=frames.shape[0])

    def configure_optimizers(self):  # noqa: ANN201 (Lightning's union of return types)
        tc = self.config.train
        opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

        def schedule(step: int) -> float:  # linear warm-up, then cosine to 0 at max_steps
            if step < tc.warmup_steps:
                return (step + 1) / tc.warmup_steps
            progress = min(1.0, (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps))
            return 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class MovingMNISTData(L.LightningDataModule):
    """Training stream and fixed validation set of Moving MNIST, from ``DataConfig``'s fields."""

    def __init__(self, data: DataConfig, num_workers: int = 0) -> None:
        super().__init__()
        self.data, self.num_workers = data, num_workers

    def _generator(self, split: str) -> MovingMNIST:
        d = self.data
        return MovingMNIST(split, digits=d.digits, size=d.size, digit_size=d.digit_size, n_frames=d.n_frames,
                           seed=d.seed, mnist_dir=d.mnist_dir)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        trainer = self.trainer
        # A resumed trainer has restored global_step by now: continue the stream where it stopped.
        stream = TrainStream(self._generator("train"), self.data.batch_size,
                             start=trainer.global_step if trainer else 0,
                             rank=trainer.global_rank if trainer else 0,
                             world_size=trainer.world_size if trainer else 1)
        return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.num_workers)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(FixedSet(self._generator("val"), self.data.val_size), batch_size=64)
