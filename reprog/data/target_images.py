"""`PlacedImagesDataModule`: small target images, grey or colour, placed on the victim's canvas.

Images are kept as uint8 (N, C, size, size), already resized to the placement's size; each batch is
scaled to [0, 1], grey ones replicated to the victim's channels (colour ones keep theirs), and placed on an
empty canvas on the device. By itself it reads any array data set (`train_file`, `test_file`) as a target.
With `digit_size=None` the images keep their own size and batches stay uint8: a program bank places each
batch once per program, with `place`, at that program's placement.
"""

from typing import Any

import torch
import torch.nn.functional as F

from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.placement import Placement

RESIZE = "bilinear_antialias"  # how target images reach the placement's size; recorded in every program


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), antialiased bilinear."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def to_canvas(images: torch.Tensor, placement: Placement, channels: int = 3) -> torch.Tensor:
    """uint8 (N, 1 or channels, size, size) -> float (N, channels, canvas, canvas) in [0, 1], on an empty canvas;
    grey images are replicated to `channels`."""
    return placement.place(images.float().div(255).expand(-1, channels, -1, -1))


class PlacedImagesDataModule(ArraysDataModule):
    """Target images from `raw_split`: uint8 (N, C, H, W), C = 1 (grey) or the victim's `channels` (colour)."""

    member_keys = ("digit_size", "position")  # where each program of a bank places the images (`place`)

    def __init__(
        self,
        digit_size: int | None = 28,
        position: list[int] | str | None = None,
        canvas_size: int = 32,
        channels: int = 3,
        num_classes: int = 10,
        val_size: int = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, val_size=val_size, augment=False, **kwargs)
        self.placement = None if digit_size is None else Placement.make(canvas_size, digit_size, position)
        self.channels = channels

    def raw_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The split as it is stored: here an array data set (`train_file`, `test_file`); subclasses read others."""
        return super().load_split(train)

    def check_split(self, x: torch.Tensor, y: torch.Tensor, train: bool) -> None:
        """As for any split, with grey (1 channel) or colour (the victim's `channels`) images."""
        grey_or_colour = 1 if x.ndim == 4 and x.shape[1] == 1 else self.channels
        fix = f"target images must be grey (1 channel) or have the victim's {self.channels} (data.channels)"
        self.check_split_has(x, y, train, grey_or_colour, fix)

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.raw_split(train)
        self.check_split(x, y, train)  # before resizing, which needs (N, C, H, W); setup checks the result again
        return (x if self.placement is None else resize(x, self.placement.size)), y

    def place(self, images: torch.Tensor, placement: Placement) -> torch.Tensor:
        """uint8 images -> [0, 1] canvases at `placement`, resized there as `load_split` resizes a whole split."""
        return to_canvas(resize(images, placement.size), placement, self.channels)

    def preprocess(self, batch: tuple[torch.Tensor, torch.Tensor], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return (x if self.placement is None else self.place(x, self.placement)), y
