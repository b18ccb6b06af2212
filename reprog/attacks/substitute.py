"""Black-box attack through a substitute (Papernot et al., "Practical Black-Box Attacks", 2017).

The attacker sees the victim only through a `LabelOracle`. Starting from a small seed set it trains a
substitute on the oracle's labels, grows the set by Jacobian-based augmentation
(`x + lam * sign(d substitute_logit[oracle label] / dx)`, doubling it each round), then crafts
examples with a white-box attack on the substitute, which transfer to the victim.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from reprog.attacks.attack import Attack
from reprog.attacks.fgsm import FGSM
from reprog.attacks.oracle import LabelOracle


class SubstituteAttack:
    name = "substitute"

    def __init__(self, oracle: LabelOracle, substitute: nn.Module,
                 craft: Callable[[nn.Module], Attack] = FGSM, rounds: int = 6, lam: float = 0.1, epochs: int = 10,
                 lr: float = 1e-3, batch_size: int = 128, seed: int = 0) -> None:
        self.oracle, self.substitute, self.rounds, self.lam = oracle, substitute, rounds, lam
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.attack = craft(substitute)  # e.g. functools.partial(FGSM, eps=8/255)
        self.training_set_size = 0

    def fit(self, seed_images: torch.Tensor) -> "SubstituteAttack":
        """Train the substitute from `seed_images` (N, C, H, W) in [0, 1], querying the oracle for labels."""
        x = seed_images.detach().clone()
        y = self.oracle(x)
        with torch.inference_mode(False), torch.enable_grad():
            x, y = x.clone(), y.clone()
            for round_ in range(self.rounds + 1):
                self.train_substitute(x, y)
                if round_ == self.rounds:
                    break
                x_new = (x + self.lam * self.label_jacobian_sign(x, y)).clamp(0, 1)
                x, y = torch.cat([x, x_new]), torch.cat([y, self.oracle(x_new)])
        self.substitute.eval()
        self.training_set_size = len(x)
        return self

    def train_substitute(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.substitute.train()
        optimizer = torch.optim.Adam(self.substitute.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(x), generator=self.generator).to(x.device).split(self.batch_size):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(self.substitute(x[idx]), y[idx]).backward()
                optimizer.step()

    def label_jacobian_sign(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """sign of d logit_y / dx, the substitute's sensitivity in the direction of the oracle's label."""
        self.substitute.eval()
        out = []
        for xb, yb in zip(x.split(self.batch_size), y.split(self.batch_size)):
            xb = xb.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.substitute(xb).gather(1, yb[:, None]).sum(), xb)
            out.append(grad.sign())
        return torch.cat(out)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial examples crafted on the substitute, to be shown to the victim."""
        return self.attack(images, labels)

    @property
    def queries(self) -> int:
        return self.oracle.queries
