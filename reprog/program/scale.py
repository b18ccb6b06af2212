"""rajatvd's scale program (2018): the target image fills the canvas and enters inside the nonlinearity,
`X_adv = (tanh(W + a * x) + 1) / 2`, with the scale `a` learned too. No mask."""

from typing import Any

import torch
from torch import nn

from reprog.domains import NUMBER, check
from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program.masked import PROGRAMS, AdversarialProgram


@PROGRAMS.register("scale")
class ScaleProgram(AdversarialProgram):
    """`a` of shape `scale`: a `scalar` ties a digit's stroke colour to its background (`W + a`), one per
    `pixel` lets the program choose both images freely (twice the parameters)."""

    def __init__(
        self,
        placement: Placement,
        channels: int = 3,
        nonlinearity: str = "tanh",
        clamp: bool = False,
        scale: str = "scalar",
        init_scale: float = 1.0,
    ) -> None:
        check("program=scale", locals(), init_scale=NUMBER)
        if placement.size != placement.canvas:
            raise UserError(
                f"program=scale needs the target image to fill the canvas; set data.digit_size="
                f"{placement.canvas} (it is {placement.size})"
            )
        if nonlinearity != "tanh" or clamp:
            raise UserError(
                "program=scale is defined with tanh and already lies in [0, 1]; "
                "drop the program.nonlinearity / program.clamp override"
            )
        side = placement.canvas
        shapes = {"scalar": (1, 1, 1), "channel": (channels, 1, 1), "pixel": (channels, side, side)}
        if scale not in shapes:
            raise UserError(f"unknown program.scale {scale!r}; choose one of {list(shapes)}")
        super().__init__(placement, channels, "tanh", clamp=False)
        self.scale = scale
        self.a = nn.Parameter(torch.full(shapes[scale], float(init_scale)))
        self.M.fill_(1.0)  # every pixel serves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return (torch.tanh(self.W + self.a * x) + 1) / 2

    def render(self) -> torch.Tensor:
        return ((torch.tanh(self.W) + 1) / 2).detach()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "scale": self.scale}
