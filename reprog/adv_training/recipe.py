"""`AdversarialTraining`: how a victim trains on adversarial examples, a plug-in found by `adv_training.kind`.

A recipe crafts each training step's examples (`adversary`, in train mode, as Madry et al. and Wong et al. craft
them), may add terms to the loss (`penalties`), and says how robustness is validated each epoch: PGD-`val_steps` at
the training eps (step eps/4, eval mode) on the first `val_batches` held-out batches, where a fall below
`overfit_floor` after a best of twice it is catastrophic overfitting. `VictimModule` calls these without asking
which recipe it holds. `grad_align` > 0 adds GradAlign at that weight to any recipe (`reprog.adv_training.alignment`).
"""

import torch
from torch import nn

from reprog.adv_training.alignment import grad_align
from reprog.attacks.pgd import PGD
from reprog.domains import FLAG, FRACTION, INT_1, NON_NEGATIVE, POSITIVE, SEED, check
from reprog.registry import Registry

RECIPES: Registry["AdversarialTraining | None"] = Registry("adv_training.kind")


@RECIPES.register("none")
def standard_training(model: nn.Module) -> None:
    """Clean images only."""
    return None


@RECIPES.register("pgd")
class AdversarialTraining:
    """Madry et al. (2018): PGD-`steps` examples in the L-inf ball of `eps_255`/255, step `alpha_255`/255."""

    kind: str  # set by RECIPES.register

    def __init__(
        self,
        model: nn.Module,
        eps_255: float = 8,
        alpha_255: float = 2,
        steps: int = 7,
        random_start: bool = True,
        grad_align: float = 0.0,
        val_steps: int = 10,
        val_batches: int = 1,
        overfit_floor: float = 0.1,
        seed: int | None = None,
    ) -> None:
        crafting = {"eps_255": NON_NEGATIVE, "alpha_255": POSITIVE, "steps": INT_1, "random_start": FLAG, "seed": SEED}
        validation = {"val_steps": INT_1, "val_batches": INT_1, "overfit_floor": FRACTION}
        check(f"adv_training={self.kind}", locals(), grad_align=NON_NEGATIVE, **crafting, **validation)
        eps = eps_255 / 255
        self.adversary = PGD(model, eps=eps, alpha=alpha_255 / 255, steps=steps, random_start=random_start, seed=seed)
        self.adversary.eval_mode = False
        self.val_adversary = PGD(model, eps=eps, alpha=eps / 4, steps=val_steps, seed=0)
        self.val_batches, self.overfit_floor, self.grad_align = val_batches, overfit_floor, float(grad_align)

    def penalties(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """Terms added to the training loss on clean `x`: name -> (weight, term), each term logged as train/<name>."""
        if not self.grad_align:
            return {}
        return {"grad_align": (self.grad_align, grad_align(model, x, y, self.adversary.eps))}
