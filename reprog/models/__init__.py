"""Classifier architectures. Every model takes [0, 1] images and normalizes them itself.

Models are built from a plain spec (`build_model(**spec)`) looked up by name, so a victim's JSON
sidecar can rebuild its architecture without importing anything the file names.
"""

from collections.abc import Callable, Sequence

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


def build_model(
    arch: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    name: str | None = None,
    weights: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> nn.Sequential:
    """`Normalize(mean, std)` followed by the network: a CIFAR net, `torchvision` + `name`, or `efficientnet_lite0`.

    `channels_last` and `compile` say how it runs (`reprog.models.runtime`), not what it computes.
    """
    if arch == "torchvision":
        net = torchvision_classifier(name or "", num_classes, weights)
    elif arch == "efficientnet_lite0":
        net = efficientnet_lite0(num_classes, weights)
    elif arch in CIFAR_ARCHS:
        net = CIFAR_ARCHS[arch](num_classes=num_classes)
        if weights:
            load_weights(net, weights)
    else:
        options = ", ".join([*CIFAR_ARCHS, "torchvision", "efficientnet_lite0"])
        raise UserError(f"unknown model.arch {arch!r}; choose one of: {options}")
    return apply_runtime(nn.Sequential(Normalize(mean, std), net), channels_last, compile)


__all__ = ["build_model", "Normalize", "CIFAR_ARCHS", "resnet20", "resnet56", "resnet18"]
