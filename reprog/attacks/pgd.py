"""PGD (Madry et al., 2018) under L-inf or L2, with a random start, restarts and per-sample early stop.

Steps follow torchattacks exactly (signed step for L-inf, unit-L2 step for L2, then projection onto
the eps-ball and [0, 1]), so with `random_start=False` both give the same examples.
"""

import torch
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack
from reprog.domains import FLAG, INT_1, NON_NEGATIVE, POSITIVE, check
from reprog.errors import UserError
from reprog.transforms import Transform

NORMS = ("Linf", "L2")


def flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against images."""
    return t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


@ATTACKS.register("pgd")
class PGD(Attack):
    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        norm: str = "Linf",
        random_start: bool = True,
        restarts: int = 1,
        early_stop: bool = False,
        momentum: float = 0.0,
        target: int | str | None = None,
        seed: int | None = None,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        """`momentum` > 0 accumulates L1-normalised gradients (MI-FGSM, Dong et al. 2018: `momentum=1.0,
        random_start=false`), which transfer better from a substitute. `eot_samples`: EOT over `transform`."""
        super().__init__(model, target, seed, eot_samples, transform)
        if norm not in NORMS:
            raise UserError(f"unknown norm {norm!r}; use one of {NORMS}")
        check(self.kind, locals(), eps=NON_NEGATIVE, alpha=POSITIVE, steps=INT_1, momentum=NON_NEGATIVE)
        check(self.kind, locals(), random_start=FLAG)
        self.eps, self.alpha, self.steps, self.norm, self.momentum = eps, alpha, steps, norm, momentum
        self.random_start, self.restarts, self.early_stop = random_start, max(1, restarts), early_stop

    def start(self, images: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return images.clone()
        if self.norm == "Linf":
            delta = (torch.rand(images.shape, generator=self.generator).to(images) * 2 - 1) * self.eps
        else:  # a random direction at a uniform radius, as torchattacks
            delta = torch.randn(images.shape, generator=self.generator).to(images)
            radius = torch.rand(len(images), generator=self.generator).to(images).view(-1, *[1] * (images.dim() - 1))
            delta = delta / flat_norm(delta) * radius * self.eps
        return (images + delta).clamp(0, 1)

    def step(self, images: torch.Tensor, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "Linf":
            x = x + self.alpha * grad.sign()
            delta = (x - images).clamp(-self.eps, self.eps)
        else:
            x = x + self.alpha * grad / (flat_norm(grad) + 1e-10)
            delta = x - images
            delta = delta * (self.eps / (flat_norm(delta) + 1e-10)).clamp(max=1.0)
        return (images + delta).clamp(0, 1)

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        x_adv = images.clone()
        done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for restart in range(self.restarts):
            todo = (~done).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            x0, g = images[todo], goal[todo]
            x = self.start(x0)
            live = torch.arange(len(todo), device=images.device)  # rows of x still being attacked
            velocity = torch.zeros_like(x)
            for _ in range(self.steps):
                grad, logits = self.input_grad(x[live], g[live])
                if self.early_stop:  # a sample stops at its first successful iterate
                    keep = ~self.succeeded(logits, g[live])
                    live, grad = live[keep], grad[keep]
                    if len(live) == 0:
                        break
                if self.momentum:
                    l1 = grad.abs().flatten(1).mean(1).view(-1, *[1] * (grad.dim() - 1))
                    velocity[live] = grad = self.momentum * velocity[live] + grad / (l1 + 1e-12)
                x[live] = self.step(x0[live], x[live], grad)
            x_adv[todo] = x
            if restart + 1 < self.restarts:  # only a next restart needs to know who is still unbroken
                with torch.no_grad():
                    done[todo] = self.succeeded(self.model(x), g)
        return x_adv
