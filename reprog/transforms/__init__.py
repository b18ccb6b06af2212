"""Differentiable, seeded transformations of [0, 1] images: the physical world for EOT (Athalye et al. 2018).

Built on kornia, because it is a PyTorch-native library whose ops (warps, blur, colour, a differentiable JPEG codec)
all pass gradients, which EOT needs. torch and kornia only: attacks, programs and evaluation all use these.
`build_transform("none")` is None: nothing sits between an image and the victim.
"""

import inspect
from typing import Any

from reprog.errors import UserError
from reprog.transforms.affine import Affine
from reprog.transforms.paste import paste, patch_side, shape_mask
from reprog.transforms.photo import Photo
from reprog.transforms.printing import Print
from reprog.transforms.transform import Chain, Transform
from reprog.transforms.transformed import Transformed

TRANSFORMS: dict[str, type[Transform] | None] = {"none": None, "affine": Affine, "photo": Photo, "print": Print}


def build_transform(kind: str = "none", **settings: Any) -> Transform | None:
    """A transform by name (conf/transform/<kind>.yaml); None for `none`."""
    if kind not in TRANSFORMS:
        raise UserError(f"unknown transform {kind!r}; choose one of {', '.join(TRANSFORMS)} (transform=<kind>)")
    cls = TRANSFORMS[kind]
    if cls is None:
        if settings:
            raise UserError(
                f"transform=none takes no settings, got {sorted(settings)}; choose transform=affine, photo or print"
            )
        return None
    unknown = sorted(set(settings) - set(inspect.signature(cls).parameters))
    if unknown:
        raise UserError(
            f"transform={kind} has no setting {', '.join(unknown)}; its settings are "
            f"{', '.join(inspect.signature(cls).parameters)}"
        )
    return cls(**settings)


__all__ = [
    "TRANSFORMS",
    "Affine",
    "Chain",
    "Photo",
    "Print",
    "Transform",
    "Transformed",
    "build_transform",
    "paste",
    "patch_side",
    "shape_mask",
]
