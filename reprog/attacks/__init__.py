"""Adversarial attacks in [0, 1] pixel space, torchattacks style: `x_adv = attack(images, labels)`.

They need only a model (normalization inside it) and work without Lightning or Hydra.
"""

from typing import Any

from torch import nn

from reprog.attacks.attack import Attack
from reprog.attacks.auto_attack import AutoAttack
from reprog.attacks.fgsm import FGSM
from reprog.attacks.iterative_targeted import IterativeTargeted
from reprog.attacks.oracle import LabelOracle, QueryBudgetExceeded
from reprog.attacks.patch import Patch, load_patch
from reprog.attacks.pgd import PGD
from reprog.attacks.substitute import SubstituteAttack
from reprog.attacks.universal import Universal
from reprog.errors import UserError
from reprog.transforms import Transform

ATTACKS: dict[str, type[Attack]] = {
    "fgsm": FGSM,
    "pgd": PGD,
    "iterative_targeted": IterativeTargeted,
    "universal": Universal,
    "substitute": SubstituteAttack,
    "autoattack": AutoAttack,
    "patch": Patch,
}


def pixel_units(settings: dict[str, Any]) -> dict[str, Any]:
    """Config values in 1/255 units to [0, 1] pixels: `eps_255: 8` becomes `eps: 8 / 255`."""
    return {
        k.removesuffix("_255"): (v / 255 if k.endswith("_255") and v is not None else v) for k, v in settings.items()
    }


def build_attack(kind: str, model: nn.Module, transform: Transform | None = None, **settings: Any) -> Attack:
    """An attack by name; settings may use 1/255 units (`eps_255`, `alpha_255`). `transform` is the world its
    examples are judged in: every attack holds it, and a gradient attack with `eot_samples` averages over it."""
    if kind not in ATTACKS:
        raise UserError(f"unknown attack kind {kind!r}; choose one of {sorted(ATTACKS)}")
    if "eot_samples" in settings and kind in ("universal", "substitute", "autoattack"):
        raise UserError(f"attack kind {kind} takes no eot_samples; EOT is for fgsm, pgd, iterative_targeted and patch")
    attack = ATTACKS[kind](model, **pixel_units(settings))
    attack.transform = transform
    return attack


__all__ = [
    "ATTACKS",
    "FGSM",
    "PGD",
    "Attack",
    "AutoAttack",
    "IterativeTargeted",
    "LabelOracle",
    "Patch",
    "QueryBudgetExceeded",
    "SubstituteAttack",
    "Universal",
    "build_attack",
    "load_patch",
    "pixel_units",
]
