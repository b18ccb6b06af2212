"""Victim class t -> target t: the paper's hard-coded map (e.g. the first 10 ImageNet labels -> digits 0-9)."""

import torch

from reprog.label_mapping.base import MAPS, IndexMap, check_room


@MAPS.register("first_k")
class FirstK(IndexMap):
    def __init__(self, num_source: int, num_targets: int) -> None:
        check_room(num_source, num_targets)
        super().__init__(num_source, num_targets, torch.arange(num_targets))
