"""Any torchvision classifier by name, with optional weights from a local file.

Pretrained ImageNet victims matter for reprogramming, but these machines (and many clusters) have no
internet at run time, so weights come from a file the user downloaded once, never from a hub.
"""

import torchvision
from torch import nn

from reprog.errors import UserError
from reprog.models.architectures import MODELS
from reprog.models.weights import load_weights


@MODELS.register("torchvision")
def torchvision_classifier(num_classes: int = 1000, weights: str | None = None, name: str = "") -> nn.Module:
    """`torchvision.models.get_model(name)` with random init, then `weights` (.safetensors or .pth) if given."""
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise UserError(
            f"unknown torchvision classifier {name!r}; set model.name to one of "
            "torchvision.models.list_models(), e.g. model.name=resnet18"
        )
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    return load_weights(model, weights)
