"""AutoAttack (Croce and Hein, 2020), the field's standard robustness test, through torchattacks' implementation.

torchattacks' `AutoAttack` builds the suite (standard: APGD-CE, APGD-T, FAB-T, Square with 5,000 queries) and runs
it as a `MultiAttack`, each attack on the images that are still classified correctly. This class runs torchattacks'
own members in the same order, so that `stats()` can say which images survive each stage: robust accuracy after
APGD-CE, after APGD-T, and so on. A gap between PGD and AutoAttack points at gradient masking (Square needs no
gradient). torchattacks is installed with `--no-deps` (README → Quick start).

EOT: with `eot_samples=n` and a `transform`, the APGD stages (CE, DLR, T) attack the victim seen through a fresh draw
of the transform on every forward, averaging each gradient over n of them (torchattacks' `eot_iter`, as AutoAttack's
`rand` version does for randomized defenses). FAB and Square are not EOT attacks: they attack the plain victim.
"""

import torch
from torch import nn

from reprog.attacks.attack import ATTACKS, Attack
from reprog.domains import INT_1, NON_NEGATIVE, check, nullable
from reprog.errors import UserError
from reprog.transforms import Transform, Transformed

STAGES = {
    "standard": ("apgd_ce", "apgd_t", "fab_t", "square"),
    "plus": ("apgd_ce", "apgd_dlr", "fab", "square", "apgd_t", "fab_t"),
    "rand": ("apgd_ce", "apgd_dlr"),
}
NORMS = ("Linf", "L2")


@ATTACKS.register("autoattack")
class AutoAttack(Attack):
    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        norm: str = "Linf",
        version: str = "standard",
        n_classes: int | None = None,
        seed: int = 0,
        steps: int | None = None,
        square_queries: int | None = None,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        """`steps` (APGD and FAB iterations, 100 in the standard) and `square_queries` (5,000) only shorten a
        smoke test; any other value is no longer the standard AutoAttack."""
        if norm not in NORMS:
            raise UserError(f"autoattack norm={norm!r}: choose one of {', '.join(NORMS)}")
        some = nullable(INT_1)
        check(self.kind, locals(), eps=NON_NEGATIVE, steps=some, square_queries=some, n_classes=some)
        if version not in STAGES:
            raise UserError(f"autoattack version={version!r}: choose one of {', '.join(STAGES)}")
        try:
            import torchattacks
        except ImportError:
            raise UserError("kind=autoattack needs torchattacks: pip install --no-deps torchattacks") from None
        super().__init__(model, None, seed, eot_samples, transform)
        self.eps, self.norm, self.version, self.seed = eps, norm, version, seed
        n_classes = n_classes or int(getattr(model, "num_classes", 10))
        suite = torchattacks.AutoAttack(model, norm=norm, eps=eps, version=version, n_classes=n_classes, seed=seed)
        self.stages = dict(zip(STAGES[version], suite._autoattack.attacks))
        for attack in self.stages.values():
            if steps is not None and hasattr(attack, "steps"):
                attack.steps = steps
            if square_queries is not None and hasattr(attack, "n_queries"):
                attack.n_queries = square_queries
        self.stat_names = tuple(f"robust_after_{stage}" for stage in self.stages)
        self.survivors: dict[str, torch.Tensor] = {}
        self.world: nn.Sequential | None = None  # the victim behind the transform, under EOT
        if self.eot:
            assert transform is not None  # `eot` needs one
            # in eval mode, which torchattacks gives back to the victim after each stage; draws from `eval_seed`
            self.world = nn.Sequential(Transformed(nn.Identity(), transform, eval_seed=seed), model).eval()
            for attack in self.stages.values():
                if hasattr(attack, "eot_iter"):  # APGD, APGDT: gradient attacks
                    attack.set_model(self.world)
                    attack.eot_iter = eot_samples

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        x_adv = images.clone()
        with torch.no_grad():
            robust = self.model(images).argmax(1) == goal  # misclassified images need no attack
        for stage, attack in self.stages.items():
            todo = robust.nonzero().squeeze(1)
            if len(todo):
                candidate = attack(images[todo], goal[todo])
                with torch.no_grad():
                    fooled = self.model(candidate).argmax(1) != goal[todo]
                x_adv[todo[fooled]] = candidate[fooled]
                robust[todo[fooled]] = False
            self.survivors[f"robust_after_{stage}"] = robust.float()
        return x_adv

    def stats(self) -> dict[str, torch.Tensor]:
        return dict(self.survivors)
