"""`Universal`: one perturbation for all inputs, inside an L-inf eps-ball, learned by gradient.

The perturbation (`UniversalPerturbation`, `eps * tanh(W)` over the whole image) is trained by Adam as a program
is; it lives here, not among the programs, so that attacks import nothing above them. Targeted (`target=k`: every
input to class k) or untargeted (maximise the loss of the true labels). Call `fit` first, then `attack(images, labels)`.
With `eot_samples=n` and a `transform`, as the patch, each step's loss is the mean over n draws of the world's
transform (EOT), so the one perturbation is learned to survive that world.
"""

import torch
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack, gradients_for
from reprog.domains import INT_0, INT_1, NON_NEGATIVE, POSITIVE, check
from reprog.errors import UserError
from reprog.transforms import Transform


class UniversalPerturbation(nn.Module):
    """`X_adv = clamp(X + eps * tanh(W), 0, 1)`: inside the L-inf eps-ball by construction. The clamp passes
    gradients straight through, since a hard clamp has none at the bounds, where it would stop `W` leaving 0."""

    def __init__(self, shape: tuple[int, ...], eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.W = nn.Parameter(torch.zeros(shape))

    def perturbation(self) -> torch.Tensor:
        return self.eps * torch.tanh(self.W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_adv = x + self.perturbation()
        return x_adv + (x_adv.clamp(0, 1) - x_adv).detach()


@ATTACKS.register("universal")
class Universal(Attack):
    fit_on = "train"
    target: int | None  # one class for every input, or None (untargeted)

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
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        if target is not None and not isinstance(target, int):
            raise UserError(
                f"a universal perturbation aims every input at one class: target must be an int or null, not {target!r}"
            )
        super().__init__(model, target, seed, eot_samples, transform)
        check(self.kind, locals(), eps=NON_NEGATIVE, epochs=INT_1, lr=POSITIVE, batch_size=INT_1, fit_size=INT_0)
        self.eps, self.epochs, self.lr, self.batch_size, self.fit_size = eps, epochs, lr, batch_size, fit_size
        self.program: UniversalPerturbation | None = None

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> "Universal":
        """Learn the perturbation on `images` (N, C, H, W) in [0, 1]."""
        with gradients_for(self.model):  # eval mode; also works when called in a Lightning test loop
            self.program = UniversalPerturbation(tuple(images.shape[1:]), self.eps).to(images.device)
            optimizer, step = torch.optim.Adam([self.program.W], lr=self.lr), 0
            for _ in range(self.epochs):
                order = torch.randperm(len(images), generator=self.generator).to(images.device)
                for idx in order.split(self.batch_size):
                    x, y = images[idx].clone(), labels[idx].clone()
                    goal = torch.full_like(y, self.target) if self.target is not None else y
                    x, goal = self.through_world(self.program(x), goal)
                    loss = -self.loss(self.model(x), goal).mean()
                    self.check_fit_loss(loss, step)
                    (self.program.W.grad,) = torch.autograd.grad(loss, [self.program.W])  # W's gradient only
                    optimizer.step()
                    step += 1
            self.check_fit_weights([("W", self.program.W)], step)
        return self

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if self.program is None:
            raise RuntimeError("Universal.fit(images, labels) learns the perturbation; call it before attacking")
        with torch.no_grad():
            return self.program(images)
