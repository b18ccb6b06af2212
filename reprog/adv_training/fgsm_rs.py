"""FGSM-RS, "Fast is better than free" (Wong et al., 2020): one FGSM step of 1.25 eps from a random start."""

from typing import Any

from torch import nn

from reprog.adv_training.recipe import RECIPES, AdversarialTraining


@RECIPES.register("fgsm_rs")
class FastFGSM(AdversarialTraining):
    def __init__(self, model: nn.Module, alpha_255: float = 10, steps: int = 1, **settings: Any) -> None:
        super().__init__(model, alpha_255=alpha_255, steps=steps, **settings)
