"""Bayesian-guided label maps (BLM, BLM+; Cai et al., NeurIPS 2024): a many-to-many map of real weights.

`weight[s, t]` estimates P(target t | victim class s) from the joint counts of the victim's predictions and
the targets (Laplace-smoothed over s), each target's column then normalised to sum to 1; target logits are
`victim logits @ weight`. BLM counts argmax predictions; BLM+ (`top_k` > 0) adds the top-k softmax
probabilities instead. Both are refit at the start of every epoch, as in the paper.
"""

from typing import Any

import torch

from reprog.domains import INT_0, NON_NEGATIVE, check
from reprog.label_mapping.base import MAPS, LabelMap


@MAPS.register("bayesian")
class Bayesian(LabelMap):
    fit_every = "epoch"
    weight: torch.Tensor  # buffer: (num_source, num_targets)

    def __init__(self, num_source: int, num_targets: int, top_k: int = 0, laplace: float = 1.0) -> None:
        check(f"mapping={self.kind}", locals(), top_k=INT_0, laplace=NON_NEGATIVE)
        super().__init__(num_source, num_targets)
        self.top_k, self.laplace = top_k, laplace
        self.register_buffer("weight", torch.full((num_source, num_targets), 1.0 / num_source))

    def settings(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "laplace": self.laplace}

    def statistics(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.top_k:
            return super().statistics(logits, y)
        values, indices = logits.float().softmax(1).topk(self.top_k, dim=1)
        top = torch.zeros_like(logits, dtype=torch.float).scatter_(1, indices, values)  # BLM+: the top k kept
        return top.T @ torch.nn.functional.one_hot(y, self.num_targets).float()

    def fit(self, statistics: torch.Tensor) -> None:
        joint = statistics.double()
        conditional = joint / (joint.sum(1, keepdim=True) + self.laplace).clamp_min(1e-12)  # 0 for unseen classes
        column = conditional.sum(0, keepdim=True)
        weight = torch.where(column > 0, conditional / column.clamp_min(1e-12), 1.0 / self.num_source)
        self.weight.copy_(weight.to(self.weight))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits @ self.weight.to(logits.dtype)
