"""A random one-to-one map, reproducible from `seed`: the baseline ILM-VP and BLM compare against."""

from typing import Any

import torch

from reprog.label_mapping.base import IndexMap, check_room


class Random(IndexMap):
    kind = "random"

    def __init__(self, num_source: int, num_targets: int, seed: int = 0) -> None:
        check_room(num_source, num_targets)
        self.seed = seed
        perm = torch.randperm(num_source, generator=torch.Generator().manual_seed(seed))
        super().__init__(num_source, num_targets, perm[:num_targets])

    def settings(self) -> dict[str, Any]:
        return {"seed": self.seed}
