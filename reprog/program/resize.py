"""The padding prompt of ILM-VP and AutoVP: the image resized and placed, and `act(W)` over the whole canvas."""

from typing import Any

import torch
from torch import nn

from reprog.domains import FLAG, check
from reprog.placement import Placement
from reprog.program.masked import PROGRAMS, AdversarialProgram, straight_through_clamp


@PROGRAMS.register("resize")
class ResizedProgram(AdversarialProgram):
    """The target image resized to the placement's size (any size up to the canvas) and placed, with a program
    over the whole canvas, the image included (the padding prompts of ILM-VP and AutoVP):
    `X_adv = s * X' + act(W)`, where `s` is 1, or a learned input scale with `learn_scale` (AutoVP)."""

    s: nn.Parameter | None  # None unless learn_scale

    def __init__(self, placement: Placement, learn_scale: bool = False, **settings: Any) -> None:
        """`settings`: the base program's (channels, nonlinearity, clamp)."""
        check(f"program={self.kind}", locals(), learn_scale=FLAG)
        super().__init__(placement, **settings)
        self.M.fill_(1.0)  # the program may cover the image too
        self.learn_scale = learn_scale
        self.s = nn.Parameter(torch.ones(1)) if learn_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x_adv = (x * self.s if self.s is not None else x) + self.perturbation()
        return straight_through_clamp(x_adv) if self.clamp else x_adv

    def config(self) -> dict[str, Any]:
        return {**super().config(), "learn_scale": self.learn_scale}
