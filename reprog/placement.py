"""Where a target image sits on the victim's canvas.

One `Placement` is made by the data module and handed to the program, so the digit's location and
the program's mask can never disagree.
"""

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from reprog.errors import UserError

# named positions for sweeps (data.position=centre,top_left,bottom_right): (top, left) as fractions of the free margin
ANCHORS: dict[str, tuple[int | None, int | None]] = {
    "centre": (None, None),
    "top_left": (0, 0),
    "top_right": (0, 1),
    "bottom_left": (1, 0),
    "bottom_right": (1, 1),
}


@dataclass(frozen=True)
class Placement:
    """A `size` x `size` image on a `canvas` x `canvas` canvas, at (`top`, `left`); centred by default.

    Centring is exact: the margins on either side differ by at most one pixel, for odd sizes too.
    """

    canvas: int
    size: int
    top: int | None = None
    left: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.size <= self.canvas:
            raise UserError(
                f"image size {self.size} does not fit a {self.canvas}x{self.canvas} canvas; "
                f"choose a size from 1 to {self.canvas} (e.g. data.digit_size=14)"
            )
        centre = (self.canvas - self.size) // 2
        object.__setattr__(self, "top", centre if self.top is None else self.top)
        object.__setattr__(self, "left", centre if self.left is None else self.left)
        for name in ("top", "left"):
            if not 0 <= getattr(self, name) <= self.canvas - self.size:
                raise UserError(
                    f"position {name}={getattr(self, name)} puts a {self.size}px image off the "
                    f"{self.canvas}px canvas; use 0..{self.canvas - self.size}, or null to centre it"
                )

    @classmethod
    def make(cls, canvas: int, size: int, position: Any = None) -> "Placement":
        """From config values: `position` is null (centre), a corner's name (`ANCHORS`), or `[top, left]`."""
        if position is None or (isinstance(position, str) and position in ANCHORS):
            far = canvas - size
            top, left = ANCHORS[position or "centre"]
            return cls(canvas, size, None if top is None else top * far, None if left is None else left * far)
        if (
            isinstance(position, str)
            or len(position) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in position)
        ):
            raise UserError(
                f"data.position={position}: expected null (centre), one of {', '.join(ANCHORS)}, "
                "or [top, left] in pixels"
            )
        return cls(canvas, size, int(position[0]), int(position[1]))

    @property
    def origin(self) -> tuple[int, int]:
        """(top, left) in pixels: `__post_init__` has replaced a None (centre) by its offset."""
        assert self.top is not None and self.left is not None
        return self.top, self.left

    @property
    def window(self) -> tuple[slice, slice]:
        top, left = self.origin
        return slice(top, top + self.size), slice(left, left + self.size)

    def mask(self) -> torch.Tensor:
        """`M`: a (canvas, canvas) float tensor, 0 where the image sits and 1 elsewhere."""
        m = torch.ones(self.canvas, self.canvas)
        m[self.window] = 0
        return m

    def place(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) images onto an empty (zero) canvas: (N, C, canvas, canvas)."""
        if images.shape[-2:] != (self.size, self.size):
            raise UserError(
                f"images are {tuple(images.shape[-2:])} but the placement expects "
                f"{self.size}x{self.size}; the data and the program disagree on the image size"
            )
        top, left = self.origin
        right, bottom = self.canvas - left - self.size, self.canvas - top - self.size
        return F.pad(images, (left, right, top, bottom))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
