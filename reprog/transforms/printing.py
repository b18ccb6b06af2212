"""`Print`: the whole chain from screen to paper to camera: the printer's duller colours, then `Affine`, then
`Photo`."""

from typing import Any

import torch
from kornia.enhance import adjust_saturation

from reprog.transforms.affine import Affine
from reprog.transforms.photo import Photo
from reprog.transforms.transform import TRANSFORMS, Chain, Params, Transform, check_range, uniform


class Ink(Transform):
    """A printer's gamut: less saturation, and paper that is not black (a raised floor)."""

    kind = "ink"

    def __init__(
        self, saturation: tuple[float, float] = (0.7, 1.0), floor: tuple[float, float] = (0.0, 0.1), seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.saturation = check_range("saturation", saturation, 0.0, 2.0)
        self.floor = check_range("floor", floor, 0.0, 0.5)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        return {
            "saturation": uniform(shape[0], *self.saturation, generator),
            "floor": uniform(shape[0], *self.floor, generator),
        }

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        if x.shape[1] == 3:
            x = adjust_saturation(x, params["saturation"])
        floor = params["floor"].view(-1, 1, 1, 1)
        return floor + (1 - floor) * x

    def settings(self) -> dict[str, Any]:
        return {"saturation": list(self.saturation), "floor": list(self.floor)}


@TRANSFORMS.register("print")
class Print(Chain):
    def __init__(
        self,
        saturation: tuple[float, float] = (0.7, 1.0),
        floor: tuple[float, float] = (0.0, 0.1),
        degrees: float = 15.0,
        scale: tuple[float, float] = (0.9, 1.1),
        translate: float = 0.1,
        padding: str = "border",
        brightness: float = 0.1,
        contrast: tuple[float, float] = (0.8, 1.2),
        blur: float = 1.0,
        noise: float = 0.02,
        jpeg: tuple[float, float] | None = (50, 90),
        seed: int = 0,
    ) -> None:
        super().__init__(
            [
                Ink(saturation, floor),
                Affine(degrees, scale, translate, padding),
                Photo(brightness, contrast, blur, noise, jpeg),
            ],
            seed,
        )

    def settings(self) -> dict[str, Any]:
        merged = {k: v for part in self.members for k, v in part.settings().items() if k != "seed"}
        return {**merged, "seed": self.seed}
