"""SMM (Cai et al., ICML 2024): a padding prompt whose mask is drawn per sample by a tiny CNN.

`X_adv = s * r(x) + f_mask(r(x)) * tanh(W)`, where `r(x)` is the target image resized and placed (the data module
does that) and `f_mask` is a few thousand parameters: two conv + max-pool stages at 1/4 resolution, a conv to
one mask value per channel, and patch-wise (nearest) interpolation back to the canvas, so each mask value covers
a 4 x 4 patch.
"""

from typing import Any

import torch
from torch import nn

from reprog.domains import INT_1, check
from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program.masked import PROGRAMS
from reprog.program.resize import ResizedProgram, straight_through_clamp

PATCH = 4  # two 2x2 max-pools


def mask_generator(channels: int, width: int) -> nn.Sequential:
    """The tiny CNN `f_mask`; its last bias starts at 1, so training starts from the shared padding prompt."""
    net = nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, channels, 3, padding=1),
        nn.Upsample(scale_factor=PATCH, mode="nearest"),
    )
    last = net[6]
    assert isinstance(last, nn.Conv2d) and last.bias is not None
    nn.init.ones_(last.bias)
    return net


@PROGRAMS.register("smm")
class SampleSpecificMaskProgram(ResizedProgram):
    def __init__(self, placement: Placement, mask_width: int = 8, **settings: Any) -> None:
        """`settings`: the resize program's (learn_scale, and the base program's channels, nonlinearity, clamp)."""
        check("program=smm", locals(), mask_width=INT_1)
        if placement.canvas % PATCH:
            raise UserError(
                f"program=smm needs a canvas divisible by {PATCH} (its mask is drawn at 1/{PATCH} "
                f"resolution); data.canvas_size is {placement.canvas}"
            )
        super().__init__(placement, **settings)
        self.mask_width = mask_width
        self.f_mask = mask_generator(self.channels, mask_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x_adv = (x * self.s if self.s is not None else x) + self.f_mask(x) * self.perturbation()
        return straight_through_clamp(x_adv) if self.clamp else x_adv

    def config(self) -> dict[str, Any]:
        return {**super().config(), "mask_width": self.mask_width}
