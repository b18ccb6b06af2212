"""`Transformed`: a module followed by a transform, so whatever reads the module's output sees the world's version.

A program is wrapped this way between itself and the victim (EOT while it trains). In training every call draws
afresh; in evaluation the draws restart from a fixed seed (`restart_draws`), so two evaluations see the same ones.
"""

import torch
from torch import nn

from reprog.transforms.transform import Transform


class Transformed(nn.Module):
    def __init__(self, inner: nn.Module, transform: Transform, eval_seed: int | None = None) -> None:
        super().__init__()
        self.inner, self.transform = inner, transform
        self.eval_seed = transform.seed + 1 if eval_seed is None else eval_seed
        self.eval_generator = torch.Generator().manual_seed(self.eval_seed)

    def restart_draws(self) -> None:
        """Evaluation's draws start again from `eval_seed`."""
        self.eval_generator.manual_seed(self.eval_seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(self.inner(x), None if self.inner.training else self.eval_generator)
