"""`FreezeAfter`: stop training some parameters after a number of epochs (airbench's whitening bias: 3).

Their gradients are dropped just before each optimizer step, so the optimizer skips them (no update, no
momentum, no weight decay), as if `requires_grad` were off. Turning `requires_grad` off mid-run would
break DDP, whose gradient reducer waits for every parameter it started with.
"""

import pytorch_lightning as pl
import torch
from torch.optim import Optimizer

from reprog.errors import UserError


class FreezeAfter(pl.Callback):
    def __init__(self, epochs: int, module_type: str, parameter: str = "bias") -> None:
        self.epochs, self.module_type, self.parameter = epochs, module_type, parameter
        self._params: list[torch.Tensor] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._params = [getattr(m, self.parameter) for m in pl_module.modules() if type(m).__name__ == self.module_type]
        if not self._params:
            raise UserError(
                f"FreezeAfter: the model has no {self.module_type} module; drop that callback "
                "(e.g. ~callbacks.freeze_whitening_bias) or pick a model that has one"
            )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if trainer.current_epoch >= self.epochs:
            for p in self._params:
                p.grad = None
