"""Test instrumentation for DDP runs: each rank saves its trainable parameters after fit."""

from pathlib import Path

import pytorch_lightning as pl
from safetensors.torch import save_file


class SaveTrainable(pl.Callback):
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = {n: p.detach().contiguous() for n, p in pl_module.named_parameters() if p.requires_grad}
        save_file(params, Path(trainer.default_root_dir) / f"trainable_rank{trainer.global_rank}.safetensors")
