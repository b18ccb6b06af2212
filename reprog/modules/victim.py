"""`VictimModule`: trains a classifier that later serves as the frozen victim.

Only plain values go into its hyperparameters, so its checkpoints load with `weights_only=True`.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reprog.models import build_model
from reprog.models.export import save_victim
from reprog.modules.classification import ClassificationModule


class VictimModule(ClassificationModule):
    def __init__(
        self,
        model: dict[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(model["num_classes"], optimizer, scheduler, label_smoothing)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.model = build_model(**model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def export(self, directory: str | Path) -> Path:
        """Write `victim.safetensors` + `victim.json` to `directory`, for sharing and for reprogramming."""
        return save_victim(self.model, dict(self.hparams.model), Path(directory) / "victim.safetensors")
