"""Adversarial attacks in [0, 1] pixel space, torchattacks style: `x_adv = attack(images, labels)`.

They need only a model (normalization inside it) and work without Lightning or Hydra. Each attack is one file that
registers its class in `ATTACKS` (`reprog.attacks.attack`); importing them here is what registers them.
"""

from reprog.attacks.attack import ATTACKS, Attack, build_attack, pixel_units
from reprog.attacks.auto_attack import AutoAttack
from reprog.attacks.fgsm import FGSM
from reprog.attacks.iterative_targeted import IterativeTargeted
from reprog.attacks.oracle import ORACLES, LabelOracle, QueryBudgetExceeded, ScoreOracle
from reprog.attacks.patch import Patch, load_patch
from reprog.attacks.pgd import PGD
from reprog.attacks.substitute import SubstituteAttack
from reprog.attacks.universal import Universal
from reprog.attacks.zeroth_order import ESTIMATORS, SPSA, RandomDirections
from reprog.registry import import_members

import_members(__name__)

__all__ = [
    "ATTACKS",
    "ESTIMATORS",
    "FGSM",
    "ORACLES",
    "PGD",
    "SPSA",
    "Attack",
    "AutoAttack",
    "IterativeTargeted",
    "LabelOracle",
    "Patch",
    "QueryBudgetExceeded",
    "RandomDirections",
    "ScoreOracle",
    "SubstituteAttack",
    "Universal",
    "build_attack",
    "load_patch",
    "pixel_units",
]
