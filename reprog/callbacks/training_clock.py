"""`TrainingClock`: logs `time/train_s`, the seconds spent training so far, validation left out.

Beside `val/acc` it gives accuracy against training time (time-to-accuracy) in TensorBoard, in
metrics.json and in `bench/time_to_accuracy.py`. CUDA is synchronized before each reading, so queued
kernels are counted where they run.
"""

import time

import pytorch_lightning as pl
import torch


class TrainingClock(pl.Callback):
    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: float | None = None  # when the current stretch of training began

    def _now(self, pl_module: pl.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._now(pl_module)

    def _stop(self, pl_module: pl.LightningModule) -> None:
        if self._start is not None:
            self.seconds += self._now(pl_module) - self._start
            self._start = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:  # back to training (mid-epoch validation)
            self._start = self._now(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(pl_module)  # runs after the epoch's validation, beside val/acc
        pl_module.log("time/train_s", self.seconds)

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.seconds = state_dict["seconds"]
