"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size eps."""

import torch
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack
from reprog.domains import NON_NEGATIVE, check
from reprog.transforms import Transform


@ATTACKS.register("fgsm")
class FGSM(Attack):
    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        target: int | str | None = None,
        seed: int | None = None,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(model, target, seed, eot_samples, transform)
        check(self.kind, locals(), eps=NON_NEGATIVE)
        self.eps = eps

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        grad, _ = self.input_grad(images, goal)
        return (images + self.eps * grad.sign()).clamp(0, 1)
