"""`ClassificationModule`: the loss, metrics and optimizer wiring every classification task shares.

Subclasses define `forward` (images -> class logits) and may add `regularizer()` to the loss, narrow
`trainable_parameters()` (or split it into parameter groups) and change `eval_logits()`.
"""

from collections.abc import Callable, Iterator
from typing import Any, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.types import OptimizerLRScheduler
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from reprog.divergence import check_loss
from reprog.modules.optim import configure_optimizers

Batch = tuple[torch.Tensor, torch.Tensor]


class ClassificationModule(pl.LightningModule):
    def __init__(
        self,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_acc, self.val_acc, self.test_acc = (
            MulticlassAccuracy(num_classes, average="micro") for _ in range(3)
        )
        self.val_acc_best = MaxMetric()

    def regularizer(self) -> torch.Tensor | None:
        return None

    def trainable_parameters(self) -> Iterator[nn.Parameter] | list[dict[str, Any]]:
        return self.parameters()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        reg = self.regularizer()
        if reg is not None:
            self.log("train/reg", reg, on_step=True, on_epoch=False)
            loss = loss + reg
        check_loss(loss, self.global_step, "optimizer.lr", configured_lr(self.optimizer_factory))
        self.train_loss(loss)
        self.train_acc(logits, y)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def eval_logits(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """The logits validation and test score (a subclass may add test-time augmentation)."""
        return self(x)

    def evaluate(self, batch: Batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.eval_logits(x, stage)
        loss_metric, acc_metric = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss_metric(self.criterion(logits, y))
        acc_metric(logits, y)
        self.log(f"{stage}/loss", loss_metric, on_epoch=True)
        self.log(f"{stage}/acc", acc_metric, on_epoch=True, prog_bar=True)
        return logits

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "test")

    def on_fit_end(self) -> None:
        """The best checkpoint's weights back into the module (the last ones when none was kept): what is exported
        and tested."""
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if best and not cast(Any, self.trainer).fast_dev_run:  # set at run time, undeclared
            self.load_state_dict(torch.load(best, map_location=self.device, weights_only=True)["state_dict"])

    def configure_optimizers(self) -> OptimizerLRScheduler:
        return configure_optimizers(
            self.trainer, self.trainable_parameters(), self.optimizer_factory, self.scheduler_factory
        )


def configured_lr(optimizer_factory: Any) -> Any:
    """The learning rate the user set (a `_partial_` optimizer's `lr`), for a divergence message."""
    return getattr(optimizer_factory, "keywords", {}).get("lr")
