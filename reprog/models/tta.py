"""Test-time augmentation: average a classifier's logits over flipped and shifted copies (airbench's TTA).

Level 0 is the plain forward pass, 1 averages it with the mirror image, 2 also averages the mirrored
pair of copies shifted by one pixel up-left and down-right (reflect-padded): 6 passes per batch.
"""

import torch
import torch.nn.functional as F
from torch import nn


def mirrored(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (model(x) + model(x.flip(-1)))


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 0) -> torch.Tensor:
    if level == 0:
        return model(x)
    logits = mirrored(model, x)
    if level == 1:
        return logits
    padded = F.pad(x, (1,) * 4, mode="reflect")
    shifted = (padded[..., :-2, :-2], padded[..., 2:, 2:])
    return 0.5 * logits + 0.25 * sum(mirrored(model, s) for s in shifted)
