"""Batched augmentation on uint8 image tensors, run wherever the batch lives (CPU or GPU).

One gather per batch instead of a Python transform per image: cheap on 2 CPU cores and free on a GPU.
"""

import torch
import torch.nn.functional as F


def random_crop_flip(
    x: torch.Tensor, padding: int = 4, flip: bool = True, padding_mode: str = "constant"
) -> torch.Tensor:
    """Random `padding`-pixel translation (a padded random crop; `F.pad` mode: zero fill or `reflect`), then a
    random horizontal flip."""
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (padding,) * 4, mode=padding_mode)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=dev)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=dev)
    rows = torch.arange(h, device=dev) + dy
    cols = torch.arange(w, device=dev) + dx
    if flip:
        cols = torch.where(torch.rand(n, 1, device=dev) < 0.5, cols.flip(1), cols)
    return padded[
        torch.arange(n, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1], the pixel space every model and attack works in."""
    return x.float().div_(255)
