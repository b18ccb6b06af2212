"""Adversarial programs: the only thing trained when a frozen victim is reprogrammed. One family per file.

Pixel space is [0, 1], the space every reprog model takes (normalization is inside the victim).

- `masked` (Elsayed et al., 2018): `X_adv = X' + act(W) * M`, `M` = 0 over the placed image.
- `scale` (rajatvd, 2018): the image fills the canvas, `X_adv = (tanh(W + a * x) + 1) / 2`, `a` learned.
- `resize` (ILM-VP's and AutoVP's padding prompt): the image resized and placed, `act(W)` over the whole
  canvas, with an optional learned input scale.
- `smm` (Cai et al., 2024): `resize` with a per-sample mask from a tiny CNN, `X' + f_mask(X') * tanh(W)`.
- `universal`: one perturbation for every input, for the attacks.
"""

from typing import Any

from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program.masked import NONLINEARITIES, AdversarialProgram, straight_through_clamp
from reprog.program.resize import ResizedProgram
from reprog.program.scale import ScaleProgram
from reprog.program.smm import SampleSpecificMaskProgram
from reprog.program.universal import UniversalPerturbation

FAMILIES: dict[str, type[AdversarialProgram]] = {
    "masked": AdversarialProgram,
    "scale": ScaleProgram,
    "resize": ResizedProgram,
    "smm": SampleSpecificMaskProgram,
    "universal": UniversalPerturbation,
}


def build_program(family: str, placement: Placement, **kwargs: Any) -> AdversarialProgram:
    """A program by family name (a key of `FAMILIES`); kwargs are the family's own settings."""
    if family not in FAMILIES:
        raise UserError(f"unknown program.family {family!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[family](placement, **kwargs)


__all__ = [
    "FAMILIES",
    "NONLINEARITIES",
    "AdversarialProgram",
    "ResizedProgram",
    "SampleSpecificMaskProgram",
    "ScaleProgram",
    "UniversalPerturbation",
    "build_program",
    "straight_through_clamp",
]
