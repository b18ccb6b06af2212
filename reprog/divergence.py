"""The one check for a training loop that diverged, shared by every path that learns (a victim, a program, an attack
that fits first), so each stops alike: `Diverged`, recorded `diverged`, with one line that names the step, the value
and the learning rate that most likely caused it. Torch only, so attacks use it outside Lightning too.
"""

from collections.abc import Iterable
from typing import Any

import torch

from reprog.errors import Diverged


def advice(lr_setting: str, lr: Any) -> str:
    """The end of every divergence message: what most likely caused it, as the setting to change."""
    return f"the run diverged; lower the learning rate ({lr_setting}={lr})"


def check_loss(loss: torch.Tensor, step: int, lr_setting: str, lr: Any, what: str = "the training loss") -> None:
    """Raise `Diverged` when `loss` holds NaN or inf; one host sync, so call it once a step."""
    if not bool(torch.isfinite(loss).all()):
        value = loss.item() if loss.numel() == 1 else "NaN or inf"
        raise Diverged(f"{what} became {value} at step {step}: {advice(lr_setting, lr)}")


def check_weights(
    named: Iterable[tuple[str, torch.Tensor]], steps: int, lr_setting: str, lr: Any, what: str = "the trained weights"
) -> None:
    """Raise `Diverged` when any of the named tensors holds NaN or inf after `steps` steps (a last step that blew up
    is not seen by any loss), before they are saved or used."""
    bad = [name for name, tensor in named if not bool(torch.isfinite(tensor).all())]
    if bad:
        raise Diverged(f"after {steps} steps {what} hold NaN or inf ({', '.join(bad[:3])}): {advice(lr_setting, lr)}")
