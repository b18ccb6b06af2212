"""`Print`: the whole chain from screen to paper to camera: the printer's duller colours, then `Affine`, then
`Photo`."""

import inspect
from typing import Any, cast

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


PARTS: tuple[type[Transform], ...] = (Ink, Affine, Photo)  # in the order the world applies them


def part_settings(part: type[Transform]) -> list[inspect.Parameter]:
    """A part's settings but its seed (in a chain every part draws from the chain's generator), keyword-only."""
    params = inspect.signature(part).parameters.values()
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p.name != "seed"]


def share_out(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Each part's share of `settings`, by name; a setting no part takes is refused, as a constructor refuses it."""
    shares = [{p.name: settings[p.name] for p in part_settings(part) if p.name in settings} for part in PARTS]
    if unknown := sorted(set(settings).difference(*shares)):
        raise TypeError(f"Print() got unexpected keyword arguments {unknown}")
    return shares


@TRANSFORMS.register("print")
class Print(Chain):
    def __init__(self, *, seed: int = 0, **settings: Any) -> None:
        """The settings of its parts (`Ink`, `Affine`, `Photo`), declared once, in theirs: the signature it shows
        (and the registry checks) is theirs in turn, then `seed`."""
        super().__init__([part(**share) for part, share in zip(PARTS, share_out(settings))], seed)

    def settings(self) -> dict[str, Any]:
        merged = {k: v for part in self.members for k, v in part.settings().items() if k != "seed"}
        return {**merged, "seed": self.seed}


cast(Any, Print.__init__).__signature__ = inspect.Signature(
    [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(p for part in PARTS for p in part_settings(part)),
        inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=int),
    ]
)
