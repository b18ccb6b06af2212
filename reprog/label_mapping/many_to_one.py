"""k victim classes per target (the first k x targets classes, in order); their logits are averaged."""

from typing import Any

import torch

from reprog.domains import INT_1, check
from reprog.label_mapping.base import MAPS, IndexMap, check_room


@MAPS.register("many_to_one")
class ManyToOne(IndexMap):
    def __init__(self, num_source: int, num_targets: int, k: int = 1) -> None:
        check(f"mapping={self.kind}", locals(), k=INT_1)
        check_room(num_source, k * num_targets, k)
        self.k = k
        super().__init__(num_source, num_targets, torch.arange(num_targets * k).reshape(num_targets, k))

    def settings(self) -> dict[str, Any]:
        return {"k": self.k}
