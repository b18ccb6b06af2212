"""Adversarial-training recipes for victims, one file each, registered in `RECIPES` by `adv_training.kind`;
importing them here is what registers them."""

from typing import Any

from torch import nn

from reprog.adv_training.fgsm_rs import FastFGSM
from reprog.adv_training.grad_align import GradAlign
from reprog.adv_training.recipe import RECIPES, AdversarialTraining
from reprog.registry import import_members


def build_recipe(model: nn.Module, kind: str = "none", **settings: Any) -> AdversarialTraining | None:
    """The recipe `kind` for `model` (conf/adv_training/<kind>.yaml); None for `none`: clean images only."""
    return RECIPES.build(kind, model, **settings)


import_members(__name__)

__all__ = ["RECIPES", "AdversarialTraining", "FastFGSM", "GradAlign", "build_recipe"]
