"""An airbench94-style net (Jordan, 2024): the fastest known way to a 94 % CIFAR-10 classifier.

A frozen 2x2 whitening conv, then three groups of conv -> max-pool -> BatchNorm -> GELU -> conv ->
BatchNorm -> GELU at 64/256/256 channels, a 3x3 max-pool and a linear head scaled by 1/9.
Convolutions start as identities (Dirac) on the channels they share and BatchNorm scales stay at 1
(only their biases learn), which lets the large learning rates of a 10-epoch schedule train it from
the first step.
"""

import torch
import torch.distributed as dist
from torch import Tensor, nn

from reprog.domains import POSITIVE, check
from reprog.models.architectures import MODELS
from reprog.models.weights import load_weights


class Whitening(nn.Conv2d):
    """airbench's stem: each 2x2 patch projected onto the eigenvectors of the patch covariance, scaled to unit
    variance, in + and - halves (so the GELU after it loses nothing).

    The weights are fitted to the first batch it sees in training (a data-dependent initialization, like
    ActNorm's) and then stay frozen; only the bias learns. The `fitted` flag is saved with the weights, so
    a resumed or loaded model is never refitted. Under DDP the covariance is averaged over the ranks.
    """

    fitted: Tensor  # a buffer (declared for the type checker)

    def __init__(self, in_channels: int = 3, kernel_size: int = 2, eps: float = 5e-4) -> None:
        super().__init__(in_channels, 2 * in_channels * kernel_size**2, kernel_size, bias=True)
        self.weight.requires_grad_(False)
        self.eps = eps
        self.register_buffer("fitted", torch.tensor(False))
        self._checked = False  # `fitted` is read once, not every step (a host sync on the GPU)
        self.register_forward_pre_hook(self._fit_first_training_batch)

    def _fit_first_training_batch(self, module: nn.Module, args: tuple[Tensor, ...]) -> None:
        if self.training and not self._checked:
            if not self.fitted:
                self.fit(args[0])
            self._checked = True

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set the weights from the (normalized) images `x`."""
        c, (h, w) = x.shape[1], self.kernel_size
        patches = x.float().unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)
        with torch.autocast(x.device.type, enabled=False):  # fp32 covariance under bf16-mixed
            covariance = patches.T @ patches / len(patches)
        if dist.is_available() and dist.is_initialized():  # the same whitening on every rank
            dist.all_reduce(covariance)
            covariance /= dist.get_world_size()
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / (eigenvalues[:, None] + self.eps).sqrt()).flip(0).reshape(-1, c, h, w)
        self.weight.copy_(torch.cat([filters, -filters]))
        self.fitted.fill_(True)


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])
    return conv


def batchnorm(channels: int) -> nn.BatchNorm2d:
    """airbench's BatchNorm: scale frozen at 1, fast-moving running statistics (momentum 0.6 in its convention)."""
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


class ConvGroup(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            conv3x3(c_in, c_out),
            nn.MaxPool2d(2),
            batchnorm(c_out),
            nn.GELU(),
            conv3x3(c_out, c_out),
            batchnorm(c_out),
            nn.GELU(),
        )


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


@MODELS.register("airbench")
def airbench(
    num_classes: int = 10,
    weights: str | None = None,
    widths: tuple[int, int, int] = (64, 256, 256),
    whiten_eps: float = 5e-4,
) -> nn.Module:
    """32x32 inputs: 31 after the stem, then 15, 7, 3 after each group, 1 after the last pool.

    `whiten_eps` is added to the patch variances before whitening. airbench's 5e-4 lifts the faintest
    (high-frequency) directions by up to 80x, where an 8/255 perturbation has 25x the power of the images, so
    adversarial training raises it (see `conf/experiment/victim_airbench_adv.yaml`)."""
    check("model=airbench", locals(), whiten_eps=POSITIVE)
    stem = Whitening(3, kernel_size=2, eps=whiten_eps)
    net = nn.Sequential(
        stem,
        nn.GELU(),
        ConvGroup(stem.out_channels, widths[0]),
        ConvGroup(widths[0], widths[1]),
        ConvGroup(widths[1], widths[2]),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(widths[2], num_classes, bias=False),
        Scale(1 / 9),
    )
    return load_weights(net, weights)
