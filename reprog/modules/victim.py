"""`VictimModule`: trains a classifier that later serves as the frozen victim.

With `adv_training` it trains on adversarial examples crafted against itself each step by a recipe
(`reprog.adv_training`), plus the loss terms the recipe adds. Each validation epoch then also measures PGD
accuracy (`val/pgd_acc`, the recipe's `val_adversary`) on the first `val_batches` batches of the held-out slice of
the training set, so a checkpoint callback can keep the most robust epoch (Rice et al.'s early stopping), and a fall
of that accuracy below `overfit_floor` after it had been above twice that is logged as catastrophic overfitting
(`val/catastrophic_overfitting`).
`norm_bias_lr_scale` (airbench's larger BatchNorm-bias learning rate) and `tta_level` (test-time augmentation of
the test split, `reprog.models.tta`) serve the airbench recipe. Only plain values go into its
hyperparameters, so its checkpoints load with `weights_only=True`.
"""

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric

from reprog.adv_training import AdversarialTraining, build_recipe
from reprog.models import build_model
from reprog.models.export import save_victim
from reprog.models.runtime import split_runtime
from reprog.models.tta import tta_logits
from reprog.modules.classification import ClassificationModule
from reprog.modules.optim import norm_bias_groups

log = logging.getLogger("reprog")


def catastrophic_overfitting(robust_acc: float, best: float, floor: float) -> bool:
    """PGD accuracy has collapsed to near zero: below `floor` after having reached twice that (Wong et al.)."""
    return robust_acc < floor <= best / 2


class VictimModule(ClassificationModule):
    def __init__(
        self,
        model: dict[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        label_smoothing: float = 0.0,
        adv_training: dict[str, Any] | None = None,
        norm_bias_lr_scale: float = 1.0,
        tta_level: int = 0,
    ) -> None:
        model, runtime = split_runtime(model)  # before save_hyperparameters: exports keep the architecture only
        super().__init__(model["num_classes"], optimizer, scheduler, label_smoothing)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.model = build_model(**model, **runtime)
        self.recipe: AdversarialTraining | None = build_recipe(self.model, **(adv_training or {}))
        if self.recipe is not None:
            self.val_pgd_acc, self.val_pgd_acc_best = MeanMetric(), MaxMetric()

    def trainable_parameters(self) -> Iterator[nn.Parameter] | list[dict[str, Any]]:
        if self.hparams["norm_bias_lr_scale"] == 1:
            return self.parameters()
        return norm_bias_groups(self, self.hparams["norm_bias_lr_scale"])

    def eval_logits(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        return tta_logits(self.model, x, self.hparams["tta_level"] if stage == "test" else 0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.recipe is None:
            return super().training_step(batch, batch_idx)
        x, y = batch
        loss = super().training_step((self.recipe.adversary(x, y), y), batch_idx)
        for name, (weight, term) in self.recipe.penalties(self.model, x, y).items():
            self.log(f"train/{name}", term, on_step=True, on_epoch=False)
            loss = loss + weight * term
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = super().validation_step(batch, batch_idx)
        if self.recipe is not None and batch_idx < self.recipe.val_batches:
            x, y = batch
            with torch.no_grad():
                self.val_pgd_acc.update((self.model(self.recipe.val_adversary(x, y)).argmax(1) == y).float())
        return logits

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.recipe is None:
            return
        if self.trainer.sanity_checking:
            self.val_pgd_acc.reset()
            return
        acc = self.val_pgd_acc.compute()
        self.val_pgd_acc.reset()
        best = self.val_pgd_acc_best.compute() if self.val_pgd_acc_best.update_called else acc.new_tensor(0.0)
        collapsed = catastrophic_overfitting(float(acc), float(best), self.recipe.overfit_floor)
        if collapsed and self.trainer.is_global_zero:
            log.warning(
                "catastrophic overfitting at epoch %d: PGD accuracy on held-out images fell from %.2f%% "
                "(best) to %.2f%%; the most robust checkpoint is kept when model_checkpoint monitors "
                "val/pgd_acc",
                self.current_epoch,
                100 * best,
                100 * acc,
            )
        self.val_pgd_acc_best.update(acc)
        self.log("val/pgd_acc", acc, prog_bar=True, sync_dist=True)
        self.log("val/pgd_acc_best", self.val_pgd_acc_best.compute(), sync_dist=True)
        self.log("val/catastrophic_overfitting", float(collapsed), sync_dist=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def export(self, directory: str | Path) -> Path:
        """Write `victim.safetensors` + `victim.json` to `directory`, for sharing and for reprogramming."""
        return save_victim(self.model, dict(self.hparams["model"]), Path(directory) / "victim.safetensors")
