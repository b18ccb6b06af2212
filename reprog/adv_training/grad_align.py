"""GradAlign (Andriushchenko and Flammarion, 2020): FGSM with step eps from the clean image, plus 0.2 x (1 - cos) of
the input gradients at the image and at a random point of the eps-ball, the fix for catastrophic overfitting."""

from typing import Any

from torch import nn

from reprog.adv_training.recipe import RECIPES, AdversarialTraining


@RECIPES.register("grad_align")
class GradAlign(AdversarialTraining):
    def __init__(
        self,
        model: nn.Module,
        alpha_255: float = 8,
        steps: int = 1,
        random_start: bool = False,
        grad_align: float = 0.2,
        **settings: Any,
    ) -> None:
        super().__init__(
            model, alpha_255=alpha_255, steps=steps, random_start=random_start, grad_align=grad_align, **settings
        )
