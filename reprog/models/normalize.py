"""Per-channel normalization as the model's first layer.

Every model in reprog takes images in [0, 1] pixel space. Keeping the normalization inside the
model means the adversarial program and the attacks can reason about pixels (clamps, epsilon balls)
without knowing the data set's statistics.
"""

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """`(x - mean) / std` per channel; mean and std are buffers so they travel with the weights."""

    mean: torch.Tensor  # buffers, declared for the type checker (nn.Module types attributes as Tensor | Module)
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
