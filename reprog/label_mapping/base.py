"""`LabelMap`: victim logits -> target-class logits, the plug-in every label map shares.

A map is built from its sizes and settings alone (`build_label_map`), and everything it learns lives in its
buffers or parameters, so a saved map is rebuilt and then loaded exactly (`reprog.program_io`). A map that
learns from data declares when (`fit_every`: "once" before training, "epoch" at the start of each epoch),
adds up `statistics(logits, y)` over training batches (summable, so DDP ranks can add theirs), and is
`fit` on the total. The module calls these where the map says; it never asks which kind it holds.
"""

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprog.errors import UserError
from reprog.registry import Registry

MAPS: Registry["LabelMap"] = Registry("mapping.kind")


class LabelMap(nn.Module):
    kind = "label_map"  # set by MAPS.register
    fit_every: str | None = None  # None, "once" or "epoch"

    def __init__(self, num_source: int, num_targets: int) -> None:
        super().__init__()
        self.num_source, self.num_targets = num_source, num_targets

    def settings(self) -> dict[str, Any]:
        """The constructor's settings beyond the two sizes: what rebuilding this map needs."""
        return {}

    def statistics(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(num_source, num_targets) counts: how often target `t` was predicted as victim class `s`."""
        return F.one_hot(logits.argmax(1), self.num_source).T.float() @ F.one_hot(y, self.num_targets).float()

    def fit(self, statistics: torch.Tensor) -> None:
        raise NotImplementedError(f"{type(self).__name__} learns nothing from data")

    @torch.no_grad()
    def reads(self, top: int = 1) -> list[list[int]]:
        """For each target, the `top` victim classes that raise its logit most: the map's response to each victim
        class alone, so every map (index, weights, linear) answers the same way."""
        state = next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0))  # where the map lives
        probe = torch.eye(self.num_source, device=state.device, dtype=state.dtype)
        response = self(probe) - self(torch.zeros_like(probe[:1]))
        return response.T.topk(min(top, self.num_source), dim=1).indices.tolist()

    def extra_repr(self) -> str:
        return f"kind={self.kind}, {self.num_source} -> {self.num_targets}"


class IndexMap(LabelMap):
    """Target class t reads the victim classes `index[t]` and averages their logits (k = 1: one-to-one)."""

    index: torch.Tensor  # buffer: (num_targets, k) victim classes

    def __init__(self, num_source: int, num_targets: int, index: torch.Tensor) -> None:
        super().__init__(num_source, num_targets)
        self.register_buffer("index", torch.empty(num_targets, 0, dtype=torch.long))
        self.set_index(index)

    def set_index(self, index: torch.Tensor) -> None:
        index = torch.as_tensor(index, dtype=torch.long).reshape(self.num_targets, -1).to(self.index.device)
        if index.numel() and (index.min() < 0 or index.max() >= self.num_source):
            raise UserError(f"label map reads victim classes outside 0..{self.num_source - 1}")
        if index.unique().numel() != index.numel():
            raise UserError("label map assigns one victim class to two targets")
        self.index = index

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, num_source) victim logits -> (N, num_targets) target logits."""
        return logits[:, self.index].mean(-1)

    def reads(self, top: int | None = None) -> list[list[int]]:
        """Exactly the victim classes each target averages (`top` is ignored)."""
        return self.index.tolist()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.index.shape[1]}"


def check_room(num_source: int, needed: int, k: int = 1) -> None:
    """Refuse a one-to-one (or k-to-one) map that would need more victim classes than there are."""
    if needed > num_source:
        fits = f"mapping.k <= {num_source // (needed // k)}, " if k > 1 else ""
        raise UserError(
            f"the label map needs {needed} victim classes but the victim has {num_source}; what fits: "
            f"{fits}mapping=linear or mapping=blm (any number of classes), or a victim with more classes"
        )
