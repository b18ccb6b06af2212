"""CIFAR-10 as a target task (the reprogramming paper's third): 32-px colour images placed on the victim's canvas.

The images come from `CIFAR10DataModule`'s readers (an offline array copy, torchvision's pickles, or the original
archive extracted or downloaded into `cache_dir`), so the target task and the victim task read CIFAR-10 the same way
and neither writes into `data_dir`.
"""

from typing import Any

import torch

from reprog.data.cifar10 import CLASSES, CIFAR10DataModule
from reprog.data.target_images import PlacedImagesDataModule


class CIFAR10TargetDataModule(PlacedImagesDataModule):
    class_names = CLASSES

    def __init__(
        self,
        data_dir: str = "data",
        cache_dir: str | None = None,
        download: bool = True,
        digit_size: int | None = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(digit_size=digit_size, **kwargs)
        self.source = CIFAR10DataModule(data_dir, cache_dir=cache_dir, download=download)

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def split_files(self, train: bool) -> tuple[str, str]:
        return self.source.split_files(train)

    def raw_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return self.source.load_split(train)
