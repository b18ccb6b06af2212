"""Classifier architectures. Every model takes [0, 1] images and normalizes them itself.

Models are built from a plain spec (`build_model(**spec)`) whose `arch` is looked up in `MODELS`, so a victim's JSON
sidecar can rebuild its architecture without importing anything the file names. Each architecture is one file that
registers itself; importing them here is what registers them.
"""

from collections.abc import Sequence
from typing import Any

from torch import nn

from reprog.models.airbench import airbench
from reprog.models.architectures import MODELS
from reprog.models.cifar_resnet import resnet18, resnet20, resnet56
from reprog.models.efficientnet_lite import efficientnet_lite0
from reprog.models.normalize import Normalize
from reprog.models.runtime import apply_runtime
from reprog.models.torchvision_model import torchvision_classifier
from reprog.registry import import_members


def build_model(
    arch: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    weights: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
    **options: Any,
) -> nn.Module:
    """`Normalize(mean, std)` followed by the network `arch` (a key of `MODELS`) with its `options` (torchvision's
    `name`, airbench's `whiten_eps`). `channels_last` and `compile` say how it runs (`reprog.models.runtime`), not
    what it computes."""
    net = MODELS.build(arch, num_classes, weights=weights, **options)
    return apply_runtime(nn.Sequential(Normalize(mean, std), net), channels_last, compile)


import_members(__name__)

__all__ = [
    "MODELS",
    "Normalize",
    "airbench",
    "build_model",
    "efficientnet_lite0",
    "resnet18",
    "resnet20",
    "resnet56",
    "torchvision_classifier",
]
