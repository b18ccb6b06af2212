"""Tweak an image until the model gives the answer we want, with the confidence we want.

Targeted signed-gradient steps (inside an optional L-inf ball of radius eps) that stop, per sample, once
the target's softmax probability reaches `confidence`, or when `max_steps` run out. `stats()` says how each
image went: the steps it took and the target's final probability.
"""

import torch
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack
from reprog.domains import FRACTION, INT_1, NON_NEGATIVE, POSITIVE, check, nullable
from reprog.transforms import Transform


@ATTACKS.register("iterative_targeted")
class IterativeTargeted(Attack):
    stat_names = ("steps", "confidence")

    def __init__(
        self,
        model: nn.Module,
        target: int | str = "least_likely",
        confidence: float = 0.9,
        alpha: float = 1 / 255,
        max_steps: int = 100,
        eps: float | None = 16 / 255,
        seed: int | None = None,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(model, target, seed, eot_samples, transform)
        eps_domain = nullable(NON_NEGATIVE)
        check(self.kind, locals(), confidence=FRACTION, alpha=POSITIVE, max_steps=INT_1, eps=eps_domain)
        self.confidence, self.alpha, self.max_steps, self.eps = confidence, alpha, max_steps, eps
        self.steps_used = self.final_confidence = self.targets = torch.empty(0)

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        x = images.clone()
        steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
        live = torch.arange(len(x), device=x.device)
        for step in range(self.max_steps + 1):
            grad, logits = self.input_grad(x[live], goal[live])
            reached = logits.softmax(1).gather(1, goal[live, None]).squeeze(1) >= self.confidence
            live, grad = live[~reached], grad[~reached]
            if len(live) == 0 or step == self.max_steps:
                break
            x[live] = x[live] + self.alpha * grad.sign()
            if self.eps is not None:
                x[live] = images[live] + (x[live] - images[live]).clamp(-self.eps, self.eps)
            x[live] = x[live].clamp(0, 1)
            steps[live] += 1
        with torch.no_grad():
            self.final_confidence = self.model(x).softmax(1).gather(1, goal[:, None]).squeeze(1)
        self.steps_used, self.targets = steps, goal
        return x

    def stats(self) -> dict[str, torch.Tensor]:
        return {"steps": self.steps_used.float(), "confidence": self.final_confidence}
