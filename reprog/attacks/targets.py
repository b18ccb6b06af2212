"""Which class a targeted attack aims for: a fixed class, a random other class, or the least likely one."""

import torch

from reprog.errors import UserError

TARGETS = ("random", "least_likely")


def pick_targets(
    target: int | str, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Target classes (N,) for `target` = a class index, "random" (never the true class) or "least_likely"."""
    if isinstance(target, int):
        return torch.full_like(labels, target)
    if target == "least_likely":
        return logits.argmin(1)
    if target == "random":  # uniform over the other num_classes - 1 classes
        offset = torch.randint(1, logits.shape[1], labels.shape, generator=generator, device="cpu").to(labels.device)
        return (labels + offset) % logits.shape[1]
    raise UserError(f"unknown target {target!r}; use a class index or one of {TARGETS}")
