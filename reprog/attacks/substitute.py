"""Black-box attack through a substitute (Papernot et al., "Practical Black-Box Attacks", 2017).

The attacker sees the victim only through a `LabelOracle`. Starting from a small seed set it trains a
substitute on the oracle's labels, grows the set by Jacobian-based augmentation
(`x + lam * sign(d substitute_logit[oracle label] / dx)`, doubling it each round), then crafts
examples with a white-box attack on the substitute, which transfer to the victim.

As in the paper: `lam_period` flips the sign of lam every that many rounds (periodic step size), and
`reservoir` (reservoir sampling) augments only that many points a round after the first `reservoir_after`
rounds, so the queries grow linearly instead of doubling.

Beyond the paper: the substitute may train on randomly translated and flipped copies (`augment`, for natural
images, whose class a mirror keeps), which a small labelled set needs, and seeds may come from the training
split (`fit_on`). `probe_size` more images, held out of the seeds, draw the curve: after each round, the
substitute's agreement with the victim on them and the transfer success of `craft` from them, against the
queries spent. Their labels come from a separate, unbudgeted referee: they measure the attack and never teach
the substitute.

EOT: `eot_samples=n` goes to the `craft` attack, which crafts on the substitute through n draws of this attack's
`transform` per gradient (every gradient attack takes it); augmentation and the substitute's training do not.
"""

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack, build_attack
from reprog.attacks.oracle import LabelOracle
from reprog.data.augment import random_crop_flip
from reprog.domains import FLAG, INT_0, INT_1, NON_NEGATIVE, POSITIVE, check, nullable
from reprog.errors import UserError
from reprog.models import build_model
from reprog.models.export import save_victim
from reprog.transforms import Transform

log = logging.getLogger("reprog")
SOME = nullable(INT_1)  # a count, or null for none


@ATTACKS.register("substitute")
class SubstituteAttack(Attack):
    """`model` is the victim, reachable only through a `LabelOracle` kept here; `self.model` is the substitute,
    which `craft` (any attack kind, with `craft_settings`) attacks white-box."""

    stat_names = ("queries",)

    def __init__(
        self,
        model: nn.Module,
        substitute: dict[str, Any] | nn.Module,
        eps: float = 8 / 255,
        craft: str = "fgsm",
        craft_settings: dict[str, Any] | None = None,
        seed_size: int = 150,
        rounds: int = 6,
        lam: float = 0.1,
        lam_period: int | None = None,
        reservoir: int | None = None,
        reservoir_after: int = 3,
        epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 128,
        augment: bool = False,
        budget: int | None = None,
        fit_on: str = "val",
        probe_size: int = 0,
        seed: int = 0,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        check(self.kind, locals(), eps=NON_NEGATIVE, seed_size=INT_1, rounds=INT_0, lam=NON_NEGATIVE, lam_period=SOME)
        check(self.kind, locals(), reservoir=SOME, reservoir_after=INT_0, epochs=INT_1, lr=POSITIVE, batch_size=INT_1)
        check(self.kind, locals(), augment=FLAG, budget=SOME, probe_size=INT_0)
        if fit_on not in ("train", "val"):
            raise UserError(f"substitute fit_on={fit_on!r}: the seed images come from 'train' or 'val'")
        self.lam_period, self.reservoir, self.reservoir_after = lam_period, reservoir, reservoir_after
        self.check_budget(budget, seed_size, rounds)
        self.oracle, self.referee = LabelOracle(model, budget), LabelOracle(model)
        net = build_model(**substitute) if isinstance(substitute, dict) else substitute
        super().__init__(net, None, seed, eot_samples, transform)
        self.substitute, self.seed_size, self.rounds, self.lam = net, seed_size, rounds, lam
        self.spec = dict(substitute) if isinstance(substitute, dict) else None  # how a victim file rebuilds it
        self.fit_on, self.fit_size, self.probe_size = fit_on, seed_size + probe_size, probe_size
        self.epochs, self.lr, self.batch_size, self.augment = epochs, lr, batch_size, augment
        self.attack = build_attack(craft, net, transform, eps=eps, **self.craft_settings(craft_settings))
        self.training_set_size = self.steps = 0  # steps: the substitute's optimizer steps, for a divergence message

    def craft_settings(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        """`craft_settings` with this attack's `eot_samples` passed on; two different values are refused."""
        settings = dict(settings or {})
        if self.eot_samples is not None:
            if settings.get("eot_samples") not in (None, self.eot_samples):
                raise UserError(
                    f"substitute eot_samples={self.eot_samples} and craft_settings.eot_samples="
                    f"{settings['eot_samples']!r} differ: set it in one place"
                )
            settings["eot_samples"] = self.eot_samples
        return settings

    def craft(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`craft` on the substitute, in this attack's world."""
        return self.attack(images, labels)

    def check_budget(self, budget: int | None, seed_size: int, rounds: int) -> None:
        """Refuse a budget the whole fit cannot pay for, before any query is spent."""
        needed = self.queries_needed(seed_size, rounds)
        if budget is not None and budget < needed:
            raise UserError(
                f"substitute budget={budget} is too small: seed_size={seed_size} and rounds={rounds} take "
                f"{needed} label queries; raise the budget, lower rounds, or set reservoir"
            )

    def queries_needed(self, seed_size: int, rounds: int) -> int:
        """Label queries of a whole fit: the seed set, then each round's new points."""
        size = total = seed_size
        for round_ in range(rounds):
            new = self.reservoir if self.reservoir and round_ >= self.reservoir_after else size
            size, total = size + new, total + new
        return total

    def fit(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> "SubstituteAttack":
        """Train the substitute from seed `images` (N, C, H, W) in [0, 1], asking the oracle for their labels
        (`labels` are not used: the attacker has none); the last `probe_size` images only draw the curve."""
        x, probe = images.detach()[: self.seed_size].clone(), images.detach()[self.seed_size : self.fit_size].clone()
        y, probe_y = self.oracle(x), self.referee(probe)
        self.steps = 0
        with torch.inference_mode(False), torch.enable_grad():
            x, y = x.clone(), y.clone()
            self.curve = []
            for round_ in range(self.rounds + 1):
                self.train_substitute(x, y)
                if len(probe):
                    self.measure(probe, probe_y, len(x))
                if round_ == self.rounds:
                    break
                parents = self.parents(len(x), round_)
                lam = self.lam * (-1) ** (round_ // self.lam_period) if self.lam_period else self.lam
                x_new = (x[parents] + lam * self.label_jacobian_sign(x[parents], y[parents])).clamp(0, 1)
                y_new = self.oracle(x_new)
                with torch.no_grad():
                    self.substitute.eval()
                    fresh = (self.substitute(x_new).argmax(1) == y_new).float().mean().item()
                log.info(
                    "substitute round %d: %d oracle queries, agreement on the fresh points %.2f%%",
                    round_ + 1,
                    self.queries,
                    100 * fresh,
                )
                x, y = torch.cat([x, x_new]), torch.cat([y, y_new])
        self.check_fit_weights(list(self.substitute.named_parameters()), self.steps)
        self.substitute.eval()
        self.training_set_size = len(x)
        return self

    def measure(self, probe: torch.Tensor, probe_y: torch.Tensor, points: int) -> None:
        """One point of the curve: agreement with the victim on the probe images, and how often `craft` on the
        substitute changes the victim's answer there, at the queries spent so far."""
        self.substitute.eval()
        with torch.no_grad():
            agreement = (self.substitute(probe).argmax(1) == probe_y).float().mean().item()
        transfer = (self.referee(self.craft(probe, probe_y)) != probe_y).float().mean().item()
        self.curve.append(
            {"queries": self.queries, "training_points": points, "agreement": agreement, "transfer": transfer}
        )
        log.info(
            "substitute after %d queries: agreement %.2f%%, transfer %.2f%% on %d probe images",
            self.queries,
            100 * agreement,
            100 * transfer,
            len(probe),
        )

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
                xb = random_crop_flip(x[idx]) if self.augment else x[idx]
                loss = F.cross_entropy(self.substitute(xb), y[idx])
                self.check_fit_loss(loss, self.steps)
                loss.backward()
                optimizer.step()
                self.steps += 1

    def label_jacobian_sign(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """sign of d logit_y / dx, the substitute's sensitivity in the direction of the oracle's label."""
        self.substitute.eval()
        out = []
        for xb, yb in zip(x.split(self.batch_size), y.split(self.batch_size)):
            xb = xb.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.substitute(xb).gather(1, yb[:, None]).sum(), xb)
            out.append(grad.sign())
        return torch.cat(out)

    def save(self, path: Path) -> Path | None:
        """The trained substitute as a victim file (`path`.safetensors + .json): a stand-in for the victim that
        other tasks read white-box, e.g. to train a program offline before fine-tuning it through the oracle."""
        if self.spec is None or not self.training_set_size:
            return None
        self.substitute.eval()
        return save_victim(self.substitute, self.spec, path.with_suffix(".safetensors"))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial examples crafted on the substitute, to be shown to the victim."""
        x_adv = self.craft(images, labels)
        self.last_goal = self.attack.last_goal
        return x_adv

    def stats(self) -> dict[str, torch.Tensor]:
        return {"queries": torch.tensor(float(self.queries))}

    @property
    def queries(self) -> int:
        return self.oracle.queries
