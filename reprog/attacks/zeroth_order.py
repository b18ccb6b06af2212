"""Zeroth-order gradients: a program's gradient estimated from an oracle's answers alone.

Directions are drawn in the program's parameter space, so every query moves only what the program can move.
- `random` (BAR, Tsai et al. 2020): q Gaussian directions, one-sided differences (S(θ + μu) − S(θ)) / μ;
  q + 1 query batches per step.
- `spsa` (BlackVIP, Oh et al. 2023): q Rademacher directions, two-sided differences (S(c + μu) − S(c − μu)) / 2μ
  taken at the look-ahead point c = θ + β (θ − θ_prev), SPSA-GC's gradient correction; 2q + 1 query batches.

With `grid`, directions are drawn on a grid × grid image and resized bilinearly to each image-shaped parameter
(AutoZOOM's dimension reduction, Tu et al. 2019): the estimate is then the gradient smoothed onto low frequencies,
slightly biased but with about (side / grid)² times less variance, since a q-direction estimate in d dimensions
has a cosine of only about sqrt(q / d) with the gradient.

What is estimated is the directional derivative of the answers S (N, C) along each direction u_j, so any loss
downstream (label map, cross-entropy) back-propagates through it: the backward pass returns
g = (1/q) Σ_j <dL/dS, D_j S> u_j, unbiased for E[u uᵀ] = I, and BAR's estimate when L is linear around S.
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprog.domains import INT_0, check
from reprog.errors import UserError
from reprog.registry import Registry

Answer = Callable[[dict[str, torch.Tensor]], torch.Tensor]  # parameter values -> the oracle's answers (N, C)
At = Callable[[list[torch.Tensor]], torch.Tensor]  # the parameters' values, in order -> the oracle's answers


ESTIMATORS: Registry["ZerothOrder"] = Registry("oracle.estimator")


class ZerothOrder:
    kind = "zeroth_order"  # set by ESTIMATORS.register

    def __init__(self, q: int = 10, mu: float = 0.01, seed: int = 0, grid: int | None = None) -> None:
        check("oracle", locals(), seed=INT_0)
        if not (isinstance(q, int) and q >= 1):
            raise UserError(f"oracle.q={q}: expected an integer >= 1 (directions per gradient estimate)")
        if not mu > 0:
            raise UserError(f"oracle.mu={mu}: expected a number > 0 (the finite-difference step)")
        if grid is not None and not (isinstance(grid, int) and grid >= 1):
            raise UserError(
                f"oracle.grid={grid}: expected an integer >= 1 (the side directions are drawn at), "
                "or null for full-resolution directions"
            )
        self.q, self.mu, self.grid = q, mu, grid
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def name(self) -> str:
        """The older spelling of `kind`."""
        return self.kind

    @property
    def batches(self) -> int:
        """Query batches one estimate costs (each as large as the image batch)."""
        raise NotImplementedError

    def draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Directions of `shape` with E[u uᵀ] = I, drawn on the CPU, so runs repeat across devices."""
        raise NotImplementedError

    def sample(self, like: torch.Tensor) -> torch.Tensor:
        """q directions shaped like `like`; an image-shaped parameter larger than `grid` gets resized ones."""
        side = like.shape[-2:]
        if self.grid is None or like.dim() < 2 or min(side) <= self.grid:
            return self.draw((self.q, *like.shape)).to(like)
        small = self.draw((self.q * like[..., 0, 0].numel(), 1, self.grid, self.grid))
        return F.interpolate(small, size=side, mode="bilinear").reshape(self.q, *like.shape).to(like)

    def __call__(self, answer: Answer, params: dict[str, nn.Parameter]) -> torch.Tensor:
        """The answers at the current parameters, wired so that backward gives `params` the estimate."""
        names, values = list(params), [p.detach() for p in params.values()]
        with torch.no_grad():
            at: At = lambda shift: answer(dict(zip(names, shift)))  # noqa: E731
            answers = at(values)
            directions = [self.sample(v) for v in values]
            derivatives = torch.stack(
                [self.derivative(at, values, [d[j] for d in directions], answers) for j in range(self.q)]
            )
        return _Estimate.apply(answers, derivatives, directions, *params.values())

    def derivative(
        self, at: At, values: list[torch.Tensor], u: list[torch.Tensor], answers: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


@ESTIMATORS.register("random")
class RandomDirections(ZerothOrder):
    @property
    def batches(self) -> int:
        return self.q + 1

    def draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator)

    def derivative(
        self, at: At, values: list[torch.Tensor], u: list[torch.Tensor], answers: torch.Tensor
    ) -> torch.Tensor:
        return (at([v + self.mu * d for v, d in zip(values, u)]) - answers) / self.mu


@ESTIMATORS.register("spsa")
class SPSA(ZerothOrder):
    centre: list[torch.Tensor]  # the look-ahead point of the current estimate, set by each call

    def __init__(
        self, q: int = 10, mu: float = 0.01, correction: float = 0.9, seed: int = 0, grid: int | None = None
    ) -> None:
        super().__init__(q, mu, seed, grid)
        if not 0 <= correction < 1:
            raise UserError(f"oracle.correction={correction}: expected a number in [0, 1) (SPSA-GC's look-ahead)")
        self.correction = correction
        self.previous: list[torch.Tensor] | None = None  # the values at the last estimate

    @property
    def batches(self) -> int:
        return 2 * self.q + 1

    def draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(0, 2, shape, generator=self.generator).float() * 2 - 1

    def __call__(self, answer: Answer, params: dict[str, nn.Parameter]) -> torch.Tensor:
        values = [p.detach().clone() for p in params.values()]
        previous = self.previous if self.previous is not None else values
        self.centre = [v + self.correction * (v - p) for v, p in zip(values, previous)]
        self.previous = values
        return super().__call__(answer, params)

    def derivative(
        self, at: At, values: list[torch.Tensor], u: list[torch.Tensor], answers: torch.Tensor
    ) -> torch.Tensor:
        plus = at([c + self.mu * d for c, d in zip(self.centre, u)])
        minus = at([c - self.mu * d for c, d in zip(self.centre, u)])
        return (plus - minus) / (2 * self.mu)


class _Estimate(torch.autograd.Function):
    """Identity on the answers; backward turns dL/dS into the parameters' estimated gradients."""

    @staticmethod
    def forward(
        ctx: Any,
        answers: torch.Tensor,
        derivatives: torch.Tensor,
        directions: list[torch.Tensor],
        *params: torch.Tensor,
    ) -> torch.Tensor:
        ctx.derivatives, ctx.directions = derivatives, directions
        return answers.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weights = torch.einsum("qnc,nc->q", ctx.derivatives, grad) / len(ctx.derivatives)
        return None, None, None, *(torch.tensordot(weights, d, 1) for d in ctx.directions)
