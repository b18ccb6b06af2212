"""`Universal`: one perturbation for all inputs, inside an L-inf eps-ball, learned by gradient.

The perturbation is a program (`reprog.program.UniversalPerturbation`, the whole canvas unmasked)
trained by Adam as a program is. Targeted (`target=k`: every input to class k) or untargeted
(maximise the loss of the true labels). Call `fit` first, then `attack(images, labels)`.
"""

import torch
from torch import nn

from reprog.attacks.attack import Attack, gradients_for
from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program import UniversalPerturbation


class Universal(Attack):
    name = "universal"
    fit_on = "train"

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        target: int | None = None,
        epochs: int = 5,
        lr: float = 0.05,
        batch_size: int = 128,
        fit_size: int = 0,
        seed: int | None = 0,
    ) -> None:
        if target is not None and not isinstance(target, int):
            raise UserError(
                f"a universal perturbation aims every input at one class: target must be an int or null, not {target!r}"
            )
        super().__init__(model, target, seed)
        self.eps, self.epochs, self.lr, self.batch_size, self.fit_size = eps, epochs, lr, batch_size, fit_size
        self.program: UniversalPerturbation | None = None

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> "Universal":
        """Learn the perturbation on `images` (N, C, H, W) in [0, 1]."""
        with gradients_for(self.model):  # eval mode; also works when called in a Lightning test loop
            self.program = UniversalPerturbation(
                Placement(images.shape[-1], images.shape[-1]), images.shape[1], self.eps
            ).to(images.device)
            optimizer = torch.optim.Adam([self.program.W], lr=self.lr)
            for _ in range(self.epochs):
                order = torch.randperm(len(images), generator=self.generator).to(images.device)
                for idx in order.split(self.batch_size):
                    x, y = images[idx].clone(), labels[idx].clone()
                    goal = torch.full_like(y, self.target) if self.targeted else y
                    loss = -self.loss(self.model(self.program(x)), goal).mean()
                    (self.program.W.grad,) = torch.autograd.grad(loss, [self.program.W])  # W's gradient only
                    optimizer.step()
        return self

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if self.program is None:
            raise RuntimeError("Universal.fit(images, labels) learns the perturbation; call it before attacking")
        with torch.no_grad():
            return self.program(images)
