"""Adversarial programs: the only thing trained when a frozen victim is reprogrammed. One kind per file, registered
in `PROGRAMS`; importing them here is what registers them.

Pixel space is [0, 1], the space every reprog model takes (normalization is inside the victim).

- `masked` (Elsayed et al., 2018): `X_adv = X' + act(W) * M`, `M` = 0 over the placed image.
- `scale` (rajatvd, 2018): the image fills the canvas, `X_adv = (tanh(W + a * x) + 1) / 2`, `a` learned.
- `resize` (ILM-VP's and AutoVP's padding prompt): the image resized and placed, `act(W)` over the whole
  canvas, with an optional learned input scale.
- `smm` (Cai et al., 2024): `resize` with a per-sample mask from a tiny CNN, `X' + f_mask(X') * tanh(W)`.
"""

from typing import Any

from reprog.placement import Placement
from reprog.program.masked import NONLINEARITIES, PROGRAMS, AdversarialProgram, straight_through_clamp
from reprog.program.resize import ResizedProgram
from reprog.program.scale import ScaleProgram
from reprog.program.smm import SampleSpecificMaskProgram
from reprog.registry import import_members


def build_program(kind: str, placement: Placement, **settings: Any) -> AdversarialProgram:
    """A program by kind (a key of `PROGRAMS`) with its own settings."""
    return PROGRAMS.build(kind, placement, **settings)


import_members(__name__)

__all__ = [
    "NONLINEARITIES",
    "PROGRAMS",
    "AdversarialProgram",
    "ResizedProgram",
    "SampleSpecificMaskProgram",
    "ScaleProgram",
    "build_program",
    "straight_through_clamp",
]
