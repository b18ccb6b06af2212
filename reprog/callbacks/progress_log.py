"""`ProgressLog`: a plain progress line every so often when nobody watches a terminal.

Under `nohup … > log`, a SLURM job or CI, the rich progress bar draws nothing; a researcher tailing the log
wants the epoch, the step, the loss, the last validation accuracy, images/s and the time left. The lines go to
the `reprog` logger, so Hydra writes them to the console and to the run's `train.log`.
"""

import logging
import sys
import time
from typing import Any

import pytorch_lightning as pl

from reprog.errors import UserError

log = logging.getLogger("reprog")


def duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class ProgressLog(pl.Callback):
    """Every `every_s` seconds of training (and at each epoch's end) one line; `when`: auto (only when stdout is
    not a terminal), always or never."""

    def __init__(self, every_s: float = 30.0, when: str = "auto") -> None:
        if when not in ("auto", "always", "never"):
            raise UserError(f"callbacks.progress_log.when={when!r}: choose auto, always or never")
        self.every_s, self.when = every_s, when
        self._last = self._epoch_start = 0.0
        self._images = 0

    @property
    def active(self) -> bool:
        return self.when == "always" or (self.when == "auto" and not sys.stdout.isatty())

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = self._epoch_start = time.monotonic()
        self._images = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += len(batch[0])
        if self.active and trainer.is_global_zero and time.monotonic() - self._last >= self.every_s:
            self.report(trainer, batch_idx + 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.active and trainer.is_global_zero:
            self.report(trainer, trainer.num_training_batches, done=True)

    def report(self, trainer: pl.Trainer, batches: int | float, done: bool = False) -> None:
        now = time.monotonic()
        self._last, elapsed = now, now - self._epoch_start
        total = trainer.num_training_batches
        epochs = "?" if trainer.max_epochs in (None, -1) else trainer.max_epochs
        parts = [
            f"epoch {trainer.current_epoch + 1}/{epochs}",
            f"step {batches}/{total}" if total != float("inf") else f"step {batches}",
            f"global step {trainer.global_step}",
        ]
        metrics = trainer.callback_metrics
        loss = next((metrics[name] for name in ("train/loss_step", "train/loss") if name in metrics), None)
        if loss is not None:
            parts.append(f"loss {float(loss):.4g}")
        parts += [f"{name} {float(metrics[name]):.4g}" for name in ("val/acc", "train/queries") if name in metrics]
        rate = self._images / elapsed if elapsed > 0 else 0.0
        parts.append(f"{rate:.1f} images/s")
        if done:
            parts.append(f"epoch took {duration(elapsed)}")
        elif total != float("inf") and batches:
            parts.append(f"epoch left {duration(elapsed * (total - batches) / batches)}")
        log.info("progress: %s", ", ".join(parts))
