"""`VictimModule`: trains a classifier that later serves as the frozen victim.

With `adv_training` it trains on adversarial examples crafted against itself each step (the attack
from `reprog.attacks`, in train mode as Madry et al. and Wong et al. craft them). `norm_bias_lr_scale`
(airbench's larger BatchNorm-bias learning rate) and `tta_level` (test-time augmentation of the test
split, `reprog.models.tta`) serve the airbench recipe. Only plain values go into its
hyperparameters, so its checkpoints load with `weights_only=True`.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprog.attacks import Attack, build_attack
from reprog.models import build_model
from reprog.models.export import save_victim
from reprog.models.runtime import split_runtime
from reprog.models.tta import tta_logits
from reprog.modules.classification import ClassificationModule
from reprog.modules.optim import norm_bias_groups


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
        self.adversary: Attack | None = None
        if adv_training and adv_training.get("kind", "none") != "none":
            settings = {k: v for k, v in adv_training.items() if k not in ("kind", "attack")}
            self.adversary = build_attack(adv_training.get("attack", "pgd"), self.model, **settings)
            self.adversary.eval_mode = False

    def trainable_parameters(self) -> Iterator[nn.Parameter] | list[dict[str, Any]]:
        if self.hparams.norm_bias_lr_scale == 1:
            return self.parameters()
        return norm_bias_groups(self, self.hparams.norm_bias_lr_scale)

    def eval_logits(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        return tta_logits(self.model, x, self.hparams.tta_level if stage == "test" else 0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.adversary is not None:
            x, y = batch
            batch = (self.adversary(x, y), y)
        return super().training_step(batch, batch_idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def export(self, directory: str | Path) -> Path:
        """Write `victim.safetensors` + `victim.json` to `directory`, for sharing and for reprogramming."""
        return save_victim(self.model, dict(self.hparams.model), Path(directory) / "victim.safetensors")
