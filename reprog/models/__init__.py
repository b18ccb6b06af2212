"""Classifier architectures. Every model takes [0, 1] images and normalizes them itself.

Models are built from a plain spec (`build_model(**spec)`) looked up by name, so a victim's JSON
sidecar can rebuild its architecture without importing anything the file names.
"""

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from reprog.errors import UserError
from reprog.models.airbench import airbench
from reprog.models.cifar_resnet import resnet18, resnet20, resnet56
from reprog.models.efficientnet_lite import efficientnet_lite0
from reprog.models.normalize import Normalize
from reprog.models.runtime import apply_runtime
from reprog.models.torchvision_model import torchvision_classifier
from reprog.models.weights import load_weights

CIFAR_ARCHS: dict[str, Callable[..., nn.Module]] = {
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnet18": resnet18,
    "airbench": airbench,
}


class UnknownModelOption(UserError, TypeError):
    """An architecture option the net does not take: a user's override, or a tampered victim spec."""


def build_model(
    arch: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    name: str | None = None,
    weights: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
    **options: Any,
) -> nn.Sequential:
    """`Normalize(mean, std)` followed by the network: a CIFAR net, `torchvision` + `name`, or `efficientnet_lite0`.

    `options` go to a CIFAR net's constructor (airbench's `whiten_eps`). `channels_last` and `compile` say how it
    runs (`reprog.models.runtime`), not what it computes.
    """
    if options and arch in ("torchvision", "efficientnet_lite0"):
        raise UnknownModelOption(f"model.arch={arch} takes no option {', '.join(sorted(options))}")
    if arch == "torchvision":
        net = torchvision_classifier(name or "", num_classes, weights)
    elif arch == "efficientnet_lite0":
        net = efficientnet_lite0(num_classes, weights)
    elif arch in CIFAR_ARCHS:
        accepted = inspect.signature(CIFAR_ARCHS[arch]).parameters
        if unknown := sorted(set(options) - set(accepted)):
            takes = ", ".join(p for p in accepted if p != "num_classes") or "none"
            raise UnknownModelOption(f"model.arch={arch} has no option {', '.join(unknown)}; it takes {takes}")
        net = CIFAR_ARCHS[arch](num_classes=num_classes, **options)
        if weights:
            load_weights(net, weights)
    else:
        known = ", ".join([*CIFAR_ARCHS, "torchvision", "efficientnet_lite0"])
        raise UserError(f"unknown model.arch {arch!r}; choose one of: {known}")
    return apply_runtime(nn.Sequential(Normalize(mean, std), net), channels_last, compile)


__all__ = ["build_model", "Normalize", "CIFAR_ARCHS", "resnet20", "resnet56", "resnet18"]
