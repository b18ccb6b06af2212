"""A universal adversarial perturbation (Moosavi-Dezfooli et al., 2017), learned by gradient like a program."""

from typing import Any

import torch

from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program.masked import AdversarialProgram


class UniversalPerturbation(AdversarialProgram):
    """One perturbation for every input (Moosavi-Dezfooli et al., 2017), learned by gradient like a program.

    `X_adv = clamp(X + eps * tanh(W), 0, 1)` over the whole image: inside the L-inf eps-ball by construction.
    """

    family = "universal"

    def __init__(self, placement: Placement, channels: int = 3, eps: float = 8 / 255) -> None:
        if placement.size != placement.canvas:
            raise UserError("a universal perturbation covers the whole image; its placement must fill the canvas")
        super().__init__(placement, channels, "tanh", clamp=True)
        self.eps = eps
        self.M.fill_(1.0)

    def perturbation(self) -> torch.Tensor:
        return self.eps * torch.tanh(self.W)

    def render(self) -> torch.Tensor:
        return (torch.tanh(self.W).detach() + 1) / 2  # amplified to the full range for viewing

    def config(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "placement": self.placement.to_dict(),
            "channels": self.channels,
            "eps": self.eps,
        }
