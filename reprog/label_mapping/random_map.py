"""A random one-to-one map, reproducible from `seed`: the baseline ILM-VP and BLM compare against."""

from typing import Any

import torch

from reprog.domains import INT_0, check
from reprog.label_mapping.base import MAPS, IndexMap, check_room


@MAPS.register("random")
class Random(IndexMap):
    def __init__(self, num_source: int, num_targets: int, seed: int = 0) -> None:
        check(f"mapping={self.kind}", locals(), seed=INT_0)
        check_room(num_source, num_targets)
        self.seed = seed
        perm = torch.randperm(num_source, generator=torch.Generator().manual_seed(seed))
        super().__init__(num_source, num_targets, perm[:num_targets])

    def settings(self) -> dict[str, Any]:
        return {"seed": self.seed}
