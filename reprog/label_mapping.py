"""Label maps `h_g`: victim logits -> target-class logits.

Every map is an `index` of shape (targets, k): target class t reads the victim classes `index[t]`,
and its logit is their mean (k = 1 for one-to-one maps). The index is a buffer, so it is saved with
the program and restored exactly.
"""

from collections.abc import Iterable

import torch
from torch import nn

from reprog.errors import UserError


class LabelMap(nn.Module):
    kind = "index"

    def __init__(self, index: torch.Tensor, num_source: int) -> None:
        super().__init__()
        index = torch.as_tensor(index, dtype=torch.long).reshape(len(index), -1)
        if index.numel() and (index.min() < 0 or index.max() >= num_source):
            raise UserError(f"label map reads victim classes outside 0..{num_source - 1}")
        if index.unique().numel() != index.numel():
            raise UserError("label map assigns one victim class to two targets")
        self.num_source = num_source
        self.register_buffer("index", index)

    @property
    def num_targets(self) -> int:
        return self.index.shape[0]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, num_source) victim logits -> (N, num_targets) target logits."""
        return logits[:, self.index].mean(-1)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, {self.num_source} -> {self.num_targets}, k={self.index.shape[1]}"


def _check_room(num_source: int, needed: int) -> None:
    if needed > num_source:
        raise UserError(f"the label map needs {needed} victim classes but the victim has {num_source}")


class FirstK(LabelMap):
    """Victim class t -> target t: the paper's hard-coded map (e.g. the first 10 labels -> digits 0-9)."""

    kind = "first_k"

    def __init__(self, num_source: int, num_targets: int) -> None:
        _check_room(num_source, num_targets)
        super().__init__(torch.arange(num_targets), num_source)


class Random(LabelMap):
    """A random one-to-one map, reproducible from `seed`."""

    kind = "random"

    def __init__(self, num_source: int, num_targets: int, seed: int = 0) -> None:
        _check_room(num_source, num_targets)
        perm = torch.randperm(num_source, generator=torch.Generator().manual_seed(seed))
        super().__init__(perm[:num_targets], num_source)


class ManyToOne(LabelMap):
    """k victim classes per target (the first k * targets classes, in order); their logits are averaged."""

    kind = "many_to_one"

    def __init__(self, num_source: int, num_targets: int, k: int = 1) -> None:
        _check_room(num_source, k * num_targets)
        super().__init__(torch.arange(num_targets * k).reshape(num_targets, k), num_source)


class Frequency(LabelMap):
    """Each target gets the victim class it is most often predicted as, one-to-one (greedy by count).

    `counts[t, s]` is how often target-class images were predicted as victim class `s`; build it with
    `Frequency.count(...)` over the target training set seen through the victim.
    """

    kind = "frequency"

    def __init__(self, counts: torch.Tensor) -> None:
        counts = torch.as_tensor(counts, dtype=torch.float64).clone()
        num_targets, num_source = counts.shape
        _check_room(num_source, num_targets)
        index = torch.empty(num_targets, dtype=torch.long)
        for _ in range(num_targets):  # take the largest remaining (target, victim class) pair
            t, s = divmod(int(counts.argmax()), num_source)
            index[t] = s
            counts[t, :] = -1
            counts[:, s] = -1
        super().__init__(index, num_source)

    @staticmethod
    def count(predictions: Iterable[tuple[torch.Tensor, torch.Tensor]], num_targets: int, num_source: int) -> torch.Tensor:
        """(victim predictions, target labels) batches -> (num_targets, num_source) counts."""
        counts = torch.zeros(num_targets, num_source, dtype=torch.long)
        for pred, y in predictions:
            counts.index_put_((y.cpu(), pred.cpu()), torch.ones_like(y.cpu()), accumulate=True)
        return counts


def restore(index: torch.Tensor, num_source: int, kind: str) -> LabelMap:
    """A saved map, exactly as it was trained (whatever built it)."""
    label_map = LabelMap(index, num_source)
    label_map.kind = kind
    return label_map


def build_label_map(kind: str, num_source: int, num_targets: int, **kwargs) -> LabelMap:
    """A map from config: `first_k`, `random` (seed), `many_to_one` (k). `frequency` needs counts, so it
    starts as a placeholder with the right shape and is replaced by `Frequency(counts)` before training."""
    if kind == "frequency":
        return restore(torch.arange(num_targets), num_source, "frequency")
    maps = {"first_k": FirstK, "random": Random, "many_to_one": ManyToOne}
    if kind not in maps:
        raise UserError(f"unknown mapping.kind {kind!r}; choose one of {sorted([*maps, 'frequency'])}")
    return maps[kind](num_source, num_targets, **kwargs)
