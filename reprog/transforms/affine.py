"""`Affine`: rotation, scale and translation, as a camera that is not square to the image sees it."""

from typing import Any

import torch
from kornia.geometry.transform import get_affine_matrix2d, warp_affine

from reprog.errors import UserError
from reprog.transforms.transform import TRANSFORMS, Params, Transform, check_at_least, check_range, uniform

PADDINGS = ("zeros", "border", "reflection")


@TRANSFORMS.register("affine")
class Affine(Transform):
    def __init__(
        self,
        degrees: float = 15.0,
        scale: tuple[float, float] = (0.9, 1.1),
        translate: float = 0.1,
        padding: str = "border",
        seed: int = 0,
    ) -> None:
        """`degrees`: largest rotation either way; `scale`: [low, high] zoom; `translate`: largest shift either way,
        as a fraction of the image side; `padding`: what fills the corners the image no longer covers."""
        super().__init__(seed)
        if padding not in PADDINGS:
            raise UserError(f"transform padding={padding!r}: choose one of {', '.join(PADDINGS)}")
        self.degrees = check_at_least("degrees", degrees)
        self.scale = check_range("scale", scale, 0.05, 10.0)
        self.translate = check_range("translate", (0, translate), 0.0, 1.0)[1]
        self.padding = padding

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n = shape[0]
        shift = torch.stack(
            [
                uniform(n, -self.translate, self.translate, generator) * shape[-1],
                uniform(n, -self.translate, self.translate, generator) * shape[-2],
            ],
            1,
        )
        return {
            "angle": uniform(n, -self.degrees, self.degrees, generator),
            "scale": uniform(n, *self.scale, generator),
            "shift": shift,
        }

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        n, _, h, w = x.shape
        center = x.new_tensor([(w - 1) / 2, (h - 1) / 2]).expand(n, 2)
        matrix = get_affine_matrix2d(params["shift"], center, params["scale"][:, None].expand(n, 2), params["angle"])
        return warp_affine(x, matrix[:, :2], (h, w), padding_mode=self.padding)

    def settings(self) -> dict[str, Any]:
        return {
            "degrees": self.degrees,
            "scale": list(self.scale),
            "translate": self.translate,
            "padding": self.padding,
            **super().settings(),
        }
