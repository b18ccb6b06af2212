"""ResNets with a CIFAR stem (3x3 conv, stride 1, no max-pool) for 32x32 inputs.

`resnet20`/`resnet56` are He et al.'s (2016) 3-stage, 16/32/64-wide networks; `resnet18` is the
4-stage ImageNet layout with the CIFAR stem. Downsampling shortcuts are 1x1 projections.
"""

from torch import Tensor, nn

from reprog.models.architectures import MODELS
from reprog.models.weights import load_weights


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class CifarResNet(nn.Module):
    def __init__(self, blocks: list[int], widths: list[int], num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, in_planes = [], widths[0]
        for i, (n, planes) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            for j in range(n):
                stages.append(BasicBlock(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_planes, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


@MODELS.register("resnet20")
def resnet20(num_classes: int = 10, weights: str | None = None) -> nn.Module:
    return load_weights(CifarResNet([3, 3, 3], [16, 32, 64], num_classes), weights)


@MODELS.register("resnet56")
def resnet56(num_classes: int = 10, weights: str | None = None) -> nn.Module:
    return load_weights(CifarResNet([9, 9, 9], [16, 32, 64], num_classes), weights)


@MODELS.register("resnet18")
def resnet18(num_classes: int = 10, weights: str | None = None) -> nn.Module:
    return load_weights(CifarResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes), weights)
