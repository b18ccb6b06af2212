"""Test instrumentation for DDP runs: each rank saves its trainable parameters, and which images it trained on."""

from pathlib import Path

import pytorch_lightning as pl
import torch
from safetensors.torch import save_file


class SaveTrainable(pl.Callback):
    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.seen.append(batch[0].flatten(1).double().sum(1))  # a fingerprint per training image

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = {n: p.detach().contiguous() for n, p in pl_module.named_parameters() if p.requires_grad}
        params["seen"] = torch.cat(self.seen)
        save_file(params, Path(trainer.default_root_dir) / f"trainable_rank{trainer.global_rank}.safetensors")
