"""`ProgramBank`: K programs, each with its own label map, read through one frozen victim in one pass.

The K programmed batches are stacked into one batch for the victim and its answers are split back. The victim is
frozen and in eval mode, so program k's logits, loss and gradient depend on program k's parameters alone: summing
the K losses trains K independent programs, at the cost of one forward and backward pass of K x batch images.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from reprog.program.masked import AdversarialProgram

if TYPE_CHECKING:  # programs do not import label maps; a bank only holds them
    from reprog.label_mapping import LabelMap


class ProgramBank(nn.Module):
    def __init__(self, programs: Sequence[AdversarialProgram], label_maps: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(programs) != len(label_maps):
            raise ValueError(f"{len(programs)} programs but {len(label_maps)} label maps")
        self.programs, self.label_maps = nn.ModuleList(programs), nn.ModuleList(label_maps)

    def __len__(self) -> int:
        return len(self.programs)

    def program(self, k: int) -> AdversarialProgram:
        return cast(AdversarialProgram, self.programs[k])

    def label_map(self, k: int) -> "LabelMap":
        return cast("LabelMap", self.label_maps[k])

    def forward(
        self,
        victim: Callable[[torch.Tensor], torch.Tensor],
        canvases: Sequence[torch.Tensor],
        members: Sequence[int] | None = None,
    ) -> list[torch.Tensor]:
        """Target-class logits of each program in `members` (all by default) for its own batch of canvases."""
        members = range(len(self)) if members is None else members
        if len(canvases) != len(members):
            raise ValueError(f"{len(canvases)} batches of canvases for {len(members)} programs")
        victim_logits = victim(torch.cat([self.programs[k](x) for k, x in zip(members, canvases)]))
        return [self.label_maps[k](v) for k, v in zip(members, victim_logits.split([len(x) for x in canvases]))]
