"""The paper's program (Elsayed et al., 2018): `X_adv = X' + P` with `P = act(W) * M`.

Pixel space is [0, 1], the space every reprog model takes (normalization is inside the victim). `X'` is the
target image placed on an empty canvas and `M` is 0 over it. For tanh this is exactly `tanh(W * M)`; writing
the mask outside the nonlinearity keeps `P = 0` over the image for sigmoid too. As in the paper, `X_adv` is
not clamped unless `clamp=True`. The other kinds derive from this class; `PROGRAMS` finds each by its kind.
"""

from typing import Any

import torch
from torch import nn

from reprog.domains import FLAG, INT_1, check
from reprog.errors import UserError
from reprog.placement import Placement
from reprog.registry import Registry

NONLINEARITIES = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}


def straight_through_clamp(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] in the forward pass, identity in the backward pass.

    `torch.clamp` has zero gradient at its bounds; the canvas is 0 and `W` starts at 0, so a hard
    clamp would never let the program leave zero.
    """
    return x + (x.clamp(0, 1) - x).detach()


PROGRAMS: Registry["AdversarialProgram"] = Registry("program.kind")


@PROGRAMS.register("masked")
class AdversarialProgram(nn.Module):
    kind: str  # set by PROGRAMS.register
    M: torch.Tensor  # buffer: 1 where the program may act

    def __init__(
        self, placement: Placement, channels: int = 3, nonlinearity: str = "tanh", clamp: bool = False
    ) -> None:
        super().__init__()
        check(f"program={self.kind}", locals(), channels=INT_1, clamp=FLAG)
        if nonlinearity not in NONLINEARITIES:
            raise UserError(f"unknown program.nonlinearity {nonlinearity!r}; choose one of {sorted(NONLINEARITIES)}")
        self.placement, self.channels, self.nonlinearity, self.clamp = placement, channels, nonlinearity, clamp
        self.W = nn.Parameter(torch.zeros(channels, placement.canvas, placement.canvas))
        self.register_buffer("M", placement.mask().expand(channels, -1, -1).clone(), persistent=False)

    def perturbation(self) -> torch.Tensor:
        """`P`, shape (C, canvas, canvas); exactly 0 where the target image sits."""
        return NONLINEARITIES[self.nonlinearity](self.W) * self.M

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Placed target images (N, C, canvas, canvas) -> adversarial inputs for the victim."""
        self._check(x)
        x_adv = x + self.perturbation()
        return straight_through_clamp(x_adv) if self.clamp else x_adv

    def regularizer(self) -> torch.Tensor:
        """`||W||_F^2`, weighted by `lam` in the loss."""
        return self.W.square().sum()

    def render(self) -> torch.Tensor:
        """`P` as a [0, 1] image for viewing (0.5 = no change)."""
        p = self.perturbation().detach()
        return (p + 1) / 2 if self.nonlinearity == "tanh" else p

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "placement": self.placement.to_dict(),
            "channels": self.channels,
            "nonlinearity": self.nonlinearity,
            "clamp": self.clamp,
        }

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.channels, self.placement.canvas, self.placement.canvas)
        if tuple(x.shape[1:]) != expected:
            raise UserError(
                f"the program expects inputs of shape {expected}, got {tuple(x.shape[1:])}; "
                "the data's canvas, channels or placement differ from the program's"
            )
