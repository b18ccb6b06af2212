"""`RNGState`: the random generators saved with every checkpoint and restored on resume.

Augmentation draws from torch's global generator, which Lightning does not checkpoint, so a resumed
run would crop and flip differently from an uninterrupted one. With this callback it draws the same
numbers, and a run stopped by SIGTERM or a pre-emption resumes to the same final weights.
"""

from typing import Any

import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["rng_state"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get("rng_state")
        if state is None:  # a checkpoint written before this callback existed
            return
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
