"""`Lookahead`: airbench's lookahead-EMA of the weights, pulled back into the model as it trains.

Every `every` steps the running average moves towards the weights by `1 - decay` and the weights are
reset to it; `decay` grows as `base ** every * (step / total) ** 3`, so the early steps run free and
the last ones are averaged over many. At the end of training the model keeps the average. Unlike
Lightning's `WeightAveraging` (an average kept beside the model), the average here steers training.
"""

from typing import Any

import pytorch_lightning as pl
import torch


class Lookahead(pl.Callback):
    def __init__(self, every: int = 5, base: float = 0.95) -> None:
        self.every, self.base = every, base
        self.average: dict[str, torch.Tensor] = {}
        self._weights: dict[str, torch.Tensor] = {}
        self._last_step = 0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # float parameters and buffers (BatchNorm statistics), sharing storage with the module: looked up once
        self._weights = {k: v for k, v in pl_module.state_dict().items() if v.is_floating_point()}
        self.average = {
            k: self.average[k].to(v) if k in self.average else v.detach().clone() for k, v in self._weights.items()
        }  # a restored average (a resumed run) keeps its values
        self._last_step = trainer.global_step

    @torch.no_grad()
    def _pull(self, decay: float) -> None:
        for name, weight in self._weights.items():
            average = self.average[name]
            average.lerp_(weight, 1 - decay)
            weight.copy_(average)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, total = trainer.global_step, trainer.estimated_stepping_batches
        if step == self._last_step:  # gradient accumulation: no optimizer step on this batch
            return
        self._last_step = step
        if step >= total:
            self._pull(decay=1.0)  # the model becomes the average
        elif step % self.every == 0:
            self._pull(decay=self.base**self.every * (step / total) ** 3)

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.average = state_dict["average"]
