"""Adversarial programs: the only thing trained when a frozen victim is reprogrammed.

Pixel space is [0, 1], the space every reprog model takes (normalization is inside the victim).

- `AdversarialProgram` (Elsayed et al., 2018): `X_adv = X' + P` with `P = act(W) * M`, where `X'` is
  the target image placed on an empty canvas and `M` is 0 over it. For tanh this is exactly
  `tanh(W * M)`; writing the mask outside the nonlinearity keeps `P = 0` over the image for sigmoid too.
  As in the paper, `X_adv` is not clamped unless `clamp=True`.
- `ScaleProgram` (rajatvd, 2018): the target image fills the canvas and enters inside the
  nonlinearity, `X_adv = (tanh(W + a * x) + 1) / 2`, with the scale `a` learned too (one number, one
  per channel, or one per pixel). No mask.
- `ResizedProgram` (ILM-VP's and AutoVP's padding prompt): the image resized and placed, and `act(W)` over
  the whole canvas, image included, with an optional learned input scale.
"""

from typing import Any

import torch
from torch import nn

from reprog.errors import UserError
from reprog.placement import Placement

NONLINEARITIES = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}


def straight_through_clamp(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] in the forward pass, identity in the backward pass.

    `torch.clamp` has zero gradient at its bounds; the canvas is 0 and `W` starts at 0, so a hard
    clamp would never let the program leave zero.
    """
    return x + (x.clamp(0, 1) - x).detach()


class AdversarialProgram(nn.Module):
    family = "masked"

    def __init__(self, placement: Placement, channels: int = 3, nonlinearity: str = "tanh", clamp: bool = False) -> None:
        super().__init__()
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
        return {"family": self.family, "placement": self.placement.to_dict(), "channels": self.channels,
                "nonlinearity": self.nonlinearity, "clamp": self.clamp}

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.channels, self.placement.canvas, self.placement.canvas)
        if tuple(x.shape[1:]) != expected:
            raise UserError(f"the program expects inputs of shape {expected}, got {tuple(x.shape[1:])}; "
                            "the data's canvas, channels or placement differ from the program's")


class ScaleProgram(AdversarialProgram):
    """`a` of shape `scale`: a `scalar` ties a digit's stroke colour to its background (`W + a`), one per
    `pixel` lets the program choose both images freely (twice the parameters)."""

    family = "scale"

    def __init__(self, placement: Placement, channels: int = 3, nonlinearity: str = "tanh", clamp: bool = False,
                 scale: str = "scalar", init_scale: float = 1.0) -> None:
        if placement.size != placement.canvas:
            raise UserError(f"program=scale needs the target image to fill the canvas; set data.digit_size="
                            f"{placement.canvas} (it is {placement.size})")
        if nonlinearity != "tanh" or clamp:
            raise UserError("program=scale is defined with tanh and already lies in [0, 1]; "
                            "drop the program.nonlinearity / program.clamp override")
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


class ResizedProgram(AdversarialProgram):
    """The target image resized to the placement's size (any size up to the canvas) and placed, with a program
    over the whole canvas, the image included (the padding prompts of ILM-VP and AutoVP):
    `X_adv = s * X' + act(W)`, where `s` is 1, or a learned input scale with `learn_scale` (AutoVP)."""

    family = "resize"

    def __init__(self, placement: Placement, channels: int = 3, nonlinearity: str = "tanh", clamp: bool = False,
                 learn_scale: bool = False) -> None:
        super().__init__(placement, channels, nonlinearity, clamp)
        self.M.fill_(1.0)  # the program may cover the image too
        self.learn_scale = learn_scale
        self.s = nn.Parameter(torch.ones(1)) if learn_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x_adv = (x * self.s if self.learn_scale else x) + self.perturbation()
        return straight_through_clamp(x_adv) if self.clamp else x_adv

    def config(self) -> dict[str, Any]:
        return {**super().config(), "learn_scale": self.learn_scale}


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
        return {"family": self.family, "placement": self.placement.to_dict(), "channels": self.channels,
                "eps": self.eps}


FAMILIES: dict[str, type[AdversarialProgram]] = {"masked": AdversarialProgram, "scale": ScaleProgram,
                                                 "resize": ResizedProgram, "universal": UniversalPerturbation}


def build_program(family: str, placement: Placement, **kwargs: Any) -> AdversarialProgram:
    """A program by family name (`masked` or `scale`); kwargs are the family's own settings."""
    if family not in FAMILIES:
        raise UserError(f"unknown program.family {family!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[family](placement, **kwargs)
