"""A learned linear map (AutoVP's output layer): a `num_source x num_targets` matrix trained with the program.

It is partly a linear probe on the victim's logits, so tables list it as its own row, with its parameter
count. It starts as the first-k map (identity on the first classes), so training starts where the paper's does; it
fits any number of victim classes, fewer than the targets too.
"""

import torch
from torch import nn

from reprog.label_mapping.base import MAPS, LabelMap


@MAPS.register("linear")
class Linear(LabelMap):
    def __init__(self, num_source: int, num_targets: int) -> None:
        super().__init__(num_source, num_targets)
        self.linear = nn.Linear(num_source, num_targets)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(num_targets, num_source))
            self.linear.bias.zero_()

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.linear(logits)
