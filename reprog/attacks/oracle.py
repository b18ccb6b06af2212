"""Oracles: a remote model as a black-box attacker sees it. Images in, answers out, within a budget.

The model lives only in a closure: the object has no attribute, parameter or buffer that reaches it,
answers are computed under `no_grad` (no graph to differentiate) and every image counts against
`budget`. A query that would exceed it is refused whole. A `detector` (the defender's side) may watch every query.

- `LabelOracle`: the top-1 label (int64), what a deployed classifier's API usually returns.
- `ScoreOracle`: the probabilities, optionally only the `top_k` largest (the rest 0) and rounded to
  `decimals`, as some APIs return them.
"""

from collections.abc import Callable

import torch
from torch import nn

from reprog.errors import UserError
from reprog.registry import Registry


class QueryBudgetExceeded(UserError, RuntimeError):
    pass


ORACLES: Registry["Oracle"] = Registry("oracle.kind")


class Oracle:
    __slots__ = ("_ask", "_move", "budget", "queries", "detector")
    kind = "oracle"  # set by ORACLES.register

    def __init__(self, model: nn.Module, budget: int | None = None, batch_size: int = 512) -> None:
        if budget is not None and budget < 1:
            raise UserError(f"oracle budget={budget}: expected a number of queries >= 1, or null for no limit")
        answer = self.answer

        @torch.no_grad()
        def ask(images: torch.Tensor) -> torch.Tensor:
            was_training = model.training
            model.eval()
            try:
                return torch.cat([answer(model(chunk)) for chunk in images.split(batch_size)])
            finally:
                model.train(was_training)

        def move(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:  # .to(device) etc., from the owner's _apply
            model._apply(fn)

        self._ask, self._move, self.budget, self.queries = ask, move, budget, 0
        self.detector: Callable[[torch.Tensor], torch.Tensor] | None = None  # the defender watching every query

    def answer(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The model's answers for `images` (N, C, H, W); costs N queries."""
        if self.remaining is not None and len(images) > self.remaining:
            raise QueryBudgetExceeded(
                f"{len(images)} more queries would exceed the budget of {self.budget} ({self.queries} used)"
            )
        self.queries += len(images)
        if self.detector is not None:
            self.detector(images)
        return self._ask(images.detach()).clone()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(queries={self.queries}, budget={self.budget})"


@ORACLES.register("label")
class LabelOracle(Oracle):
    __slots__ = ()

    @staticmethod
    def answer(logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(1)


@ORACLES.register("score")
class ScoreOracle(Oracle):
    __slots__ = ("top_k", "decimals")

    def __init__(
        self,
        model: nn.Module,
        budget: int | None = None,
        top_k: int | None = None,
        decimals: int | None = None,
        batch_size: int = 512,
    ) -> None:
        if top_k is not None and top_k < 1:
            raise UserError(f"oracle top_k={top_k}: expected >= 1, or null for every class")
        if decimals is not None and decimals < 0:
            raise UserError(f"oracle decimals={decimals}: expected >= 0, or null for full precision")
        self.top_k, self.decimals = top_k, decimals
        super().__init__(model, budget, batch_size)

    def answer(self, logits: torch.Tensor) -> torch.Tensor:
        p = logits.float().softmax(1)
        if self.top_k is not None and self.top_k < p.shape[1]:
            kept = p.topk(self.top_k, 1)
            p = torch.zeros_like(p).scatter_(1, kept.indices, kept.values)
        return p if self.decimals is None else p.round(decimals=self.decimals)
