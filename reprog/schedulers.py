"""Learning-rate schedules stepped once per optimizer step.

Every factory takes the optimizer, the run's `total_steps` and its `steps_per_epoch` (the
LightningModule reads both from the trainer), so configs stay `_partial_` and never hard-code a run
length.
"""

import math
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def onecycle(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: Literal["cos", "linear"] = "cos",
) -> LRScheduler:
    """Smith's one-cycle policy peaking at the optimizer's configured lr (constant for runs under 4 steps).

    It starts at lr / div_factor and ends at lr / (div_factor * final_div_factor); `anneal_strategy=linear`
    with 5 and 2.86 is airbench's triangle (0.2 -> 1 -> 0.07 times the lr)."""
    if total_steps < 4:  # OneCycleLR needs at least a step in each phase
        return LambdaLR(optimizer, lambda step: 1.0)
    pct_start = max(pct_start, 2 / total_steps)
    max_lr = [g["lr"] for g in optimizer.param_groups]
    return OneCycleLR(
        optimizer,
        max_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal_strategy=anneal_strategy,
        cycle_momentum=False,
    )


def cosine(
    optimizer: Optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int = 0, min_factor: float = 0.0
) -> LRScheduler:
    """Linear warm-up, then cosine decay from the configured lr to `min_factor` times it."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))

    return LambdaLR(optimizer, factor)


def epoch_decay(
    optimizer: Optimizer, total_steps: int, steps_per_epoch: int, gamma: float = 0.96, every_epochs: int = 2
) -> LRScheduler:
    """The reprogramming paper's schedule: lr times `gamma` every `every_epochs` epochs."""
    period = max(1, every_epochs * steps_per_epoch)
    return LambdaLR(optimizer, lambda step: gamma ** (step // period))
