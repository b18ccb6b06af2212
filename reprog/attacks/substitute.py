"""Black-box attack through a substitute (Papernot et al., "Practical Black-Box Attacks", 2017).

The attacker sees the victim only through a `LabelOracle`. Starting from a small seed set it trains a
substitute on the oracle's labels, grows the set by Jacobian-based augmentation
(`x + lam * sign(d substitute_logit[oracle label] / dx)`, doubling it each round), then crafts
examples with a white-box attack on the substitute, which transfer to the victim.

As in the paper: `lam_period` flips the sign of lam every that many rounds (periodic step size), and
`reservoir` (reservoir sampling) augments only that many points a round after the first `reservoir_after`
rounds, so the queries grow linearly instead of doubling. `curve` records, per round, the queries spent and
how often the substitute already agreed with the oracle on the fresh points, before it trained on them.
"""

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprog.attacks.attack import Attack
from reprog.attacks.oracle import LabelOracle
from reprog.errors import UserError
from reprog.models import build_model

log = logging.getLogger("reprog")


class SubstituteAttack(Attack):
    """`model` is the victim, reachable only through a `LabelOracle` kept here; `self.model` is the substitute,
    which `craft` (any attack kind, with `craft_settings`) attacks white-box."""

    name = "substitute"
    fit_on = "val"  # seed images; their labels come from the oracle
    stat_names = ("queries",)

    def __init__(self, model: nn.Module, substitute: dict[str, Any] | nn.Module, eps: float = 8 / 255,
                 craft: str = "fgsm", craft_settings: dict[str, Any] | None = None, seed_size: int = 150,
                 rounds: int = 6, lam: float = 0.1, lam_period: int | None = None, reservoir: int | None = None,
                 reservoir_after: int = 3, epochs: int = 10, lr: float = 1e-3, batch_size: int = 128,
                 budget: int | None = None, seed: int = 0) -> None:
        from reprog.attacks import build_attack  # the registry imports this file

        self.lam_period, self.reservoir, self.reservoir_after = lam_period, reservoir, reservoir_after
        needed = self.queries_needed(seed_size, rounds)
        if budget is not None and budget < needed:
            raise UserError(f"substitute budget={budget} is too small: seed_size={seed_size} and rounds={rounds} take "
                            f"{needed} label queries; raise the budget, lower rounds, or set reservoir")

        self.oracle = LabelOracle(model, budget)
        net = build_model(**substitute) if isinstance(substitute, dict) else substitute
        super().__init__(net, None, seed)
        self.substitute, self.fit_size, self.rounds, self.lam = net, seed_size, rounds, lam
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.attack = build_attack(craft, net, eps=eps, **(craft_settings or {}))
        self.training_set_size = 0
        self.curve: list[dict[str, float]] = []

    def queries_needed(self, seed_size: int, rounds: int) -> int:
        """Label queries of a whole fit: the seed set, then each round's new points."""
        size = total = seed_size
        for round_ in range(rounds):
            new = self.reservoir if self.reservoir and round_ >= self.reservoir_after else size
            size, total = size + new, total + new
        return total

    def fit(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> "SubstituteAttack":
        """Train the substitute from seed `images` (N, C, H, W) in [0, 1], asking the oracle for their labels
        (`labels` are not used: the attacker has none)."""
        x = images.detach().clone()
        y = self.oracle(x)
        with torch.inference_mode(False), torch.enable_grad():
            x, y = x.clone(), y.clone()
            self.curve = []
            for round_ in range(self.rounds + 1):
                self.train_substitute(x, y)
                if round_ == self.rounds:
                    break
                parents = self.parents(len(x), round_)
                lam = self.lam * (-1) ** (round_ // self.lam_period) if self.lam_period else self.lam
                x_new = (x[parents] + lam * self.label_jacobian_sign(x[parents], y[parents])).clamp(0, 1)
                y_new = self.oracle(x_new)
                with torch.no_grad():
                    self.substitute.eval()
                    fresh = (self.substitute(x_new).argmax(1) == y_new).float().mean().item()
                self.curve.append({"round": round_ + 1, "queries": self.queries, "fresh_agreement": fresh})
                log.info("substitute round %d: %d oracle queries, agreement on the fresh points %.2f%%",
                         round_ + 1, self.queries, 100 * fresh)
                x, y = torch.cat([x, x_new]), torch.cat([y, y_new])
        self.substitute.eval()
        self.training_set_size = len(x)
        return self

    def parents(self, size: int, round_: int) -> torch.Tensor:
        """The points this round augments: all of them, or `reservoir` drawn at random once it applies."""
        if self.reservoir and round_ >= self.reservoir_after:
            return torch.randperm(size, generator=self.generator)[: self.reservoir]
        return torch.arange(size)

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
        x_adv = self.attack(images, labels)
        self.last_goal = self.attack.last_goal
        return x_adv

    def stats(self) -> dict[str, torch.Tensor]:
        return {"queries": torch.tensor(float(self.queries))}

    @property
    def queries(self) -> int:
        return self.oracle.queries
