"""An airbench94-style net (Jordan, 2024): the fastest known way to a 94 % CIFAR-10 classifier.

A 2x2 stem conv (airbench's whitening layer, here learned), then three groups of
conv -> max-pool -> BatchNorm -> GELU -> conv -> BatchNorm -> GELU at 64/256/256 channels, a 3x3
max-pool and a linear head scaled by 1/9. Convolutions start as identities (Dirac) on the channels
they share, which lets the large learning rates of a 10-epoch schedule train it from the first step.
"""

import torch
from torch import Tensor, nn


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])
    return conv


class ConvGroup(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(conv3x3(c_in, c_out), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.GELU(),
                         conv3x3(c_out, c_out), nn.BatchNorm2d(c_out), nn.GELU())


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def airbench(num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256), stem_width: int = 24) -> nn.Sequential:
    """32x32 inputs: 31 after the stem, then 15, 7, 3 after each group, 1 after the last pool."""
    return nn.Sequential(
        nn.Conv2d(3, stem_width, 2), nn.GELU(),
        ConvGroup(stem_width, widths[0]), ConvGroup(widths[0], widths[1]), ConvGroup(widths[1], widths[2]),
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(widths[2], num_classes, bias=False), Scale(1 / 9),
    )
