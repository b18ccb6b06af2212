"""Differentiable, seeded transformations of [0, 1] images: the physical world for EOT (Athalye et al. 2018).

Built on kornia, because it is a PyTorch-native library whose ops (warps, blur, colour, a differentiable JPEG codec)
all pass gradients, which EOT needs. torch and kornia only: attacks, programs and evaluation all use these.
`build_transform("none")` is None: nothing sits between an image and the victim. Each kind is one file that registers
its class in `TRANSFORMS`; importing them here is what registers them.
"""

from typing import Any

from reprog.registry import import_members
from reprog.transforms.affine import Affine
from reprog.transforms.paste import paste, patch_side, shape_mask
from reprog.transforms.photo import Photo
from reprog.transforms.printing import Print
from reprog.transforms.transform import TRANSFORMS, Chain, Transform
from reprog.transforms.transformed import Transformed


def build_transform(kind: str = "none", **settings: Any) -> Transform | None:
    """A transform by kind (conf/transform/<kind>.yaml); None for `none`."""
    return TRANSFORMS.build(kind, **settings)


import_members(__name__)

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
