"""`VictimModule`: trains a classifier that later serves as the frozen victim.

It wires a model spec, a loss, torchmetrics and a `_partial_` optimizer and scheduler together. Only
plain values go into the hyperparameters, so its checkpoints load with `weights_only=True`.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from reprog.models import build_model
from reprog.models.export import save_victim


class VictimModule(pl.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.model = build_model(**model)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        n = model["num_classes"]
        self.train_loss, self.train_acc = MeanMetric(), MulticlassAccuracy(n, average="micro")
        self.val_loss, self.val_acc = MeanMetric(), MulticlassAccuracy(n, average="micro")
        self.test_loss, self.test_acc = MeanMetric(), MulticlassAccuracy(n, average="micro")
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        self.train_loss(loss)
        self.train_acc(logits, y)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        loss_metric, acc_metric = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss_metric(self.criterion(logits, y))
        acc_metric(logits, y)
        self.log(f"{stage}/loss", loss_metric, on_epoch=True)
        self.log(f"{stage}/acc", acc_metric, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def export(self, directory: str | Path) -> Path:
        """Write `victim.safetensors` + `victim.json` to `directory`, for sharing and for reprogramming."""
        return save_victim(self.model, dict(self.hparams.model), Path(directory) / "victim.safetensors")
