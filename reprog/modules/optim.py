"""The optimizer + per-step scheduler wiring shared by every task."""

import math
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch


def configure_optimizers(
    trainer: pl.Trainer,
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
) -> dict[str, Any]:
    """Build the `_partial_` optimizer and scheduler; the scheduler gets the run's length from the trainer."""
    opt = optimizer(params=params)
    if scheduler is None:
        return {"optimizer": opt}
    total_steps = int(trainer.estimated_stepping_batches)  # also sets trainer.num_training_batches
    steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    sched = scheduler(opt, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
