"""Frequency label maps (ILM-VP, Chen et al., CVPR 2023): each target gets the victim class it is most often
predicted as, one-to-one, greedily by count. `Frequency` counts once, through the program at its start;
`Iterative` counts again at the start of every epoch, through the program as it is then."""

import torch

from reprog.label_mapping.base import MAPS, IndexMap, check_room


@MAPS.register("frequency")
class Frequency(IndexMap):
    fit_every = "once"

    def __init__(self, num_source: int, num_targets: int) -> None:
        check_room(num_source, num_targets)
        super().__init__(num_source, num_targets, torch.arange(num_targets))  # first_k until fit

    def fit(self, statistics: torch.Tensor) -> None:
        """`statistics[s, t]`: how often target t was predicted as victim class s; take the largest pair left."""
        counts = statistics.double().clone()
        index = torch.empty(self.num_targets, dtype=torch.long)
        for _ in range(self.num_targets):
            s, t = divmod(int(counts.argmax()), self.num_targets)
            index[t] = s
            counts[s, :] = -1
            counts[:, t] = -1
        self.set_index(index)


@MAPS.register("iterative")
class Iterative(Frequency):
    fit_every = "epoch"
