"""`Transform`: a random, differentiable change of [0, 1] images (the physical world), drawn from a seeded generator.

Random parameters are drawn by `sample` from a `torch.Generator` (the transform's own, seeded, unless the caller
passes one), then applied by `apply_params` with kornia's differentiable ops: the same generator state gives the same
draws, and gradients flow from the output back to the input, so attacks, programs and evaluation share one
transform. kornia's own augmentation classes draw from the global RNG, which is why parameters are drawn here.
"""

from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from reprog.domains import INT_0, check
from reprog.errors import UserError
from reprog.registry import Registry

Params = dict[str, torch.Tensor]


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """`n` draws from U(low, high) on the CPU (the generator's device)."""
    return low + (high - low) * torch.rand(n, generator=generator)


def check_range(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """A [low, high] setting, refused in one line when it is not an ordered pair inside [low, high]."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"transform {name}={value!r}: expected a pair [low, high]") from None
    if not low <= a <= b <= high:
        raise UserError(f"transform {name}={[a, b]}: expected {low:g} <= low <= high <= {high:g}")
    return a, b


def check_at_least(name: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise UserError(f"transform {name}={value!r}: expected a number >= {low:g}")
    return float(value)


TRANSFORMS: Registry["Transform | None"] = Registry("transform")


@TRANSFORMS.register("none")
def no_transform() -> None:
    """Nothing between an image and the victim: the digital world."""
    return None


class Transform(nn.Module):
    kind = "transform"  # set by TRANSFORMS.register

    def __init__(self, seed: int = 0) -> None:
        check("transform", locals(), seed=INT_0)
        super().__init__()
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        """Random parameters for a batch of `shape` (N, C, H, W), as CPU tensors."""
        raise NotImplementedError

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """`x` changed by `params`, differentiably."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One fresh draw per image, from `generator` or else the transform's own."""
        params = self.sample(x.shape, generator if generator is not None else self.generator)
        return self.apply_params(
            x, {k: v.to(x.device, x.dtype if v.is_floating_point() else v.dtype) for k, v in params.items()}
        ).clamp(0, 1)

    def settings(self) -> dict[str, Any]:
        """Every choice a re-implementation needs (written into the metadata of what was trained under it)."""
        return {"seed": self.seed}

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.settings()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings().items())


class Chain(Transform):
    """Transforms applied in turn, all drawing from one generator."""

    def __init__(self, parts: list[Transform], seed: int = 0) -> None:
        super().__init__(seed)
        self.parts = nn.ModuleList(parts)

    @property
    def members(self) -> Iterable[Transform]:
        """The parts as transforms (nn.ModuleList types its items as nn.Module)."""
        return cast(Iterable[Transform], self.parts)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        return {f"{i}.{k}": v for i, part in enumerate(self.members) for k, v in part.sample(shape, generator).items()}

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        for i, part in enumerate(self.members):
            x = part.apply_params(x, {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{i}.")})
        return x
