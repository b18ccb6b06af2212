"""`Victim`: what a reprogramming task reads a victim through, white-box or black-box.

`FrozenVictim` (here, in `models/`) answers with its logits and counts nothing; `BlackBoxVictim` (beside the oracles,
in `attacks/`) answers through an oracle, counting each image as a query against a budget. A task holds either and
never asks which.
"""

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn


class Victim(Protocol):
    spec: dict[str, Any]  # the architecture, as a program's metadata records it
    sha256: str  # of the weights, for the same metadata

    @property
    def num_classes(self) -> int: ...

    queries: int | None  # spent so far, and restored on resume; None for a white-box victim, which counts nothing

    @property
    def budget(self) -> int | None: ...

    def affords(self, batch_size: int) -> bool:
        """Whether a training step on `batch_size` images can still be paid for."""

    def check_canvas(self, channels: int, canvas: int) -> None:
        """Refuse, in one line, a canvas the victim cannot take."""

    def read(self, programs: Sequence[nn.Module], xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The victim's answers for each `programs[k](xs[k])`, differentiable with respect to the programs."""
