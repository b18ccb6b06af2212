"""The optimizer + per-step scheduler wiring shared by every task."""

import math
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.types import OptimizerLRScheduler

from reprog.errors import UserError, brief


def configure_optimizers(
    trainer: pl.Trainer,
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
) -> OptimizerLRScheduler:
    """Build the `_partial_` optimizer and scheduler; the scheduler gets the run's length from the trainer.

    A parameter group may carry `lr_scale`: its lr is multiplied and its weight_decay divided by it, so
    the decay per step (lr x weight_decay) stays that of the configured optimizer.
    """
    try:
        opt = optimizer(params=params)
    except TypeError as e:  # a misspelt or foreign setting, e.g. +optimizer.lrr=0.1
        raise UserError(
            f"the optimizer does not take these settings ({brief(e)}); check the optimizer.* overrides "
            "against conf/optimizer/"
        ) from e
    for group in (g for g in opt.param_groups if "lr_scale" in g):
        scale = group.pop("lr_scale")
        group["lr"] *= scale
        group["weight_decay"] /= scale
    if scheduler is None:
        return {"optimizer": opt}
    total_steps = int(trainer.estimated_stepping_batches)  # also sets trainer.num_training_batches
    steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    sched = scheduler(opt, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def norm_bias_groups(module: torch.nn.Module, lr_scale: float) -> list[dict[str, Any]]:
    """Two parameter groups: BatchNorm biases at `lr_scale` times the lr (airbench's bias_scaler), the rest."""
    biases = {
        id(m.bias): m.bias
        for m in module.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.bias is not None
    }
    rest = [p for p in module.parameters() if id(p) not in biases]
    return [{"params": rest}, {"params": list(biases.values()), "lr_scale": lr_scale}]
