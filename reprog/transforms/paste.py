"""`paste`: a patch stuck onto images at a random place, angle and size (Brown et al. 2017), differentiably.

The patch and its mask are laid at the centre of a blank canvas, then one affine warp per image (rotation,
scale, a shift that keeps the patch inside the image) moves both, so the gradient reaches every patch pixel.
"""

import math

import torch
from kornia.geometry.transform import get_affine_matrix2d, warp_affine

from reprog.transforms.transform import uniform


def patch_side(percent: float, height: int, width: int) -> int:
    """The side, in pixels, of a square patch covering `percent` of an image's area."""
    return max(1, round(math.sqrt(percent / 100 * height * width)))


def shape_mask(side: int, shape: str) -> torch.Tensor:
    """(1, side, side) mask of ones: the whole square, or the disc inside it."""
    if shape == "square":
        return torch.ones(1, side, side)
    r = (torch.arange(side) - (side - 1) / 2) / (side / 2)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= 1).float()[None]


def paste(
    images: torch.Tensor,
    patch: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    degrees: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
) -> torch.Tensor:
    """`images` (N, C, H, W) with `patch` (C, s, s) where `mask` (1, s, s) is 1, one random placement per image."""
    n, _, h, w = images.shape
    side = patch.shape[-1]
    top, left = (h - side) // 2, (w - side) // 2
    canvas = images.new_zeros(1, patch.shape[0] + 1, h, w)
    canvas[0, :, top : top + side, left : left + side] = torch.cat([patch * mask, mask.to(patch)])
    factor = uniform(n, *scale, generator)
    reach = (side * factor * (math.sqrt(2) if degrees else 1.0)).clamp(max=min(h, w))  # the patch's extent
    shift = torch.stack(
        [
            (torch.rand(n, generator=generator) * 2 - 1) * (w - reach) / 2,
            (torch.rand(n, generator=generator) * 2 - 1) * (h - reach) / 2,
        ],
        1,
    )
    angle = uniform(n, -degrees, degrees, generator)
    center = torch.tensor([left + (side - 1) / 2, top + (side - 1) / 2]).expand(n, 2)
    matrix = get_affine_matrix2d(
        shift + torch.tensor([(w - 1) / 2, (h - 1) / 2]) - center, center, factor[:, None].expand(n, 2), angle
    ).to(images)
    moved = warp_affine(canvas.expand(n, -1, -1, -1), matrix[:, :2], (h, w), padding_mode="zeros")
    stuck, cover = moved[:, :-1], moved[:, -1:]
    return (images * (1 - cover) + stuck).clamp(0, 1)
