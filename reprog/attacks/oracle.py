"""`LabelOracle`: a remote model as a black-box attacker sees it. Images in, labels out, within a budget.

The model lives only in a closure: the object has no attribute that reaches it, answers are int64
labels computed under `no_grad` (no logits, no graph to differentiate), and every image counts
against `budget`. A query that would exceed it is refused whole.
"""

import torch
from torch import nn


class QueryBudgetExceeded(RuntimeError):
    pass


class LabelOracle:
    __slots__ = ("_ask", "budget", "queries")

    def __init__(self, model: nn.Module, budget: int | None = None, batch_size: int = 512) -> None:
        @torch.no_grad()
        def ask(images: torch.Tensor) -> torch.Tensor:
            was_training = model.training
            model.eval()
            try:
                return torch.cat([model(chunk).argmax(1) for chunk in images.split(batch_size)])
            finally:
                model.train(was_training)

        self._ask, self.budget, self.queries = ask, budget, 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The model's labels for `images` (N, C, H, W); costs N queries."""
        if self.budget is not None and self.queries + len(images) > self.budget:
            raise QueryBudgetExceeded(f"{len(images)} more queries would exceed the budget of {self.budget} "
                                      f"({self.queries} used)")
        self.queries += len(images)
        return self._ask(images.detach()).clone()

    def __repr__(self) -> str:
        return f"LabelOracle(queries={self.queries}, budget={self.budget})"
