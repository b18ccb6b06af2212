"""k victim classes per target (the first k x targets classes, in order); their logits are averaged."""

from typing import Any

import torch

from reprog.label_mapping.base import IndexMap, check_room


class ManyToOne(IndexMap):
    kind = "many_to_one"

    def __init__(self, num_source: int, num_targets: int, k: int = 1) -> None:
        check_room(num_source, k * num_targets, k)
        self.k = k
        super().__init__(num_source, num_targets, torch.arange(num_targets * k).reshape(num_targets, k))

    def settings(self) -> dict[str, Any]:
        return {"k": self.k}
