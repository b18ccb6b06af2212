"""`FrozenVictim`: the one place a victim is frozen.

No parameter takes a gradient (autograd computes input gradients only), eval mode holds through
every `.train()` call Lightning makes (so BatchNorm running statistics never move), and the
checksum taken at freezing identifies the victim in a program's metadata.

A frozen BatchNorm is a fixed affine map, so the victim computes with a copy whose BatchNorms are
folded into the preceding convolutions (`torch.fx` fusion): program steps run ~1.3x faster on CPU.
A BatchNorm behind a max-pool folds too when its scales are positive (airbench's conv -> pool -> norm),
since max-pooling commutes with a per-channel affine map that keeps the order of values.
The original module, its state dict and its checksum are untouched.
"""

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse, replace_node_module
from torch.nn.utils.fusion import fuse_conv_bn_eval

from reprog.errors import UserError
from reprog.models import build_model
from reprog.models.export import load_victim, state_checksum
from reprog.models.runtime import apply_runtime, split_runtime


class FrozenVictim(nn.Module):
    """The white-box `Victim` (reprog.models.victim): it counts no queries and has no budget."""

    queries: int | None = None
    budget: int | None = None
    compute: nn.Module  # `model` with its BatchNorms folded, kept in __dict__ (see __init__)

    def __init__(
        self, model: nn.Module, spec: dict[str, Any], channels_last: bool = True, compile: bool = False
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.spec = spec
        self.sha256 = state_checksum(model)
        self.train(False)
        # not registered: it holds no state of its own, only a faster form of `model`
        self.__dict__["compute"] = apply_runtime(fold_batchnorm(self.model), channels_last, compile)

    def train(self, mode: bool = True) -> "FrozenVictim":
        # Lightning also restores modes by attribute (_ModuleMode), which is why we start in eval too
        return super().train(False)

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])

    def check_canvas(self, channels: int, canvas: int) -> None:
        """Refuse, in one line, a canvas the architecture cannot take (a head that flattens a fixed-size map)."""
        check_canvas(self, self.spec, channels, canvas, next(self.model.parameters()).device)

    def read(self, programs: Sequence[nn.Module], xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The victim's logits for each `programs[k](xs[k])`, in one pass: the white-box path (a `Victim`)."""
        canvases = [program(x) for program, x in zip(programs, xs)]
        return list(self(torch.cat(canvases)).split([len(c) for c in canvases]))

    def affords(self, batch_size: int) -> bool:
        """Whether a training step on `batch_size` images can be paid for: a white-box victim costs no queries."""
        return True

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "FrozenVictim":
        super()._apply(fn, recurse)  # .to(device), .half(), channels_last, ...
        if self.compute is not self.model:
            self.compute._apply(fn, recurse)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compute(x)


def check_canvas(
    victim: Callable[[torch.Tensor], torch.Tensor],
    spec: dict[str, Any],
    channels: int,
    canvas: int,
    device: torch.device | str = "cpu",
) -> None:
    """Probe `victim` with one blank image rather than list what each architecture takes: any architecture with
    global pooling passes."""
    try:
        with torch.no_grad():
            victim(torch.zeros(1, channels, canvas, canvas, device=device))
    except RuntimeError as e:
        raise UserError(
            f"victim {spec.get('name') or spec.get('arch')} cannot take a {channels}x{canvas}x{canvas} "
            f"canvas ({str(e).splitlines()[0][:120]}); victims with global pooling (resnet20/56/18, torchvision "
            f"models, efficientnet_lite0) take any canvas, airbench only 32 px: set data.canvas_size to what it "
            f"was trained on"
        ) from None


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode `model` with its BatchNorms folded into convolutions; `model` itself if it cannot be
    traced."""
    try:
        folded = cast(fx.GraphModule, fuse(model.eval()))  # conv -> norm; fuse builds a GraphModule, typed Module
    except Exception:  # e.g. data-dependent control flow: compute with the model as it is
        return model
    fold_batchnorm_behind_max_pool(folded)
    return folded.requires_grad_(False)


def fold_batchnorm_behind_max_pool(graph: fx.GraphModule) -> None:
    """conv -> max-pool -> norm becomes conv' -> max-pool, in place, where every scale of the norm is positive."""
    modules = dict(graph.named_modules())
    module = lambda node, kind: node.op == "call_module" and isinstance(modules[node.target], kind)  # noqa: E731
    for norm in list(graph.graph.nodes):
        if not module(norm, nn.BatchNorm2d):
            continue
        pool = norm.args[0]
        if not (module(pool, nn.MaxPool2d) and len(pool.users) == 1 and not modules[pool.target].return_indices):
            continue
        conv = pool.args[0]
        if not (module(conv, nn.Conv2d) and len(conv.users) == 1):
            continue
        bn = modules[norm.target]
        scale = (bn.weight if bn.weight is not None else 1) / torch.sqrt(bn.running_var + bn.eps)
        if (scale > 0).all():
            replace_node_module(conv, modules, fuse_conv_bn_eval(modules[conv.target], bn))
            norm.replace_all_uses_with(pool)
            graph.graph.erase_node(norm)
    graph.delete_all_unused_submodules()
    graph.recompile()


def load_frozen_victim(
    ckpt_path: str | None,
    random_init: bool = False,
    model: dict[str, Any] | None = None,
    seed: int = 0,
    channels_last: bool = True,
    compile: bool = False,
) -> FrozenVictim:
    """A trained victim from a .ckpt / .safetensors, `model` built with its pretrained weights, or (the paper's
    control) `model` with random weights."""
    if random_init and not model:
        raise UserError("victim.random_init=true needs victim.model (the architecture spec)")
    if random_init or (model and not ckpt_path):  # built from its spec: random weights, or those it names
        assert model is not None  # refused above when random_init has no model
        model, _ = split_runtime(model)
        if random_init:  # the control: the architecture without the weights its spec names
            model = {**model, "weights": None}
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return FrozenVictim(build_model(**model), model, channels_last=channels_last, compile=compile)
    if not ckpt_path:
        raise UserError(
            "victim.ckpt_path is not set; train a victim with `python train.py experiment=victim_cifar10` "
            "and pass victim.ckpt_path=<run>/victim.safetensors (or a .ckpt)"
        )
    return FrozenVictim(*load_victim(ckpt_path), channels_last=channels_last, compile=compile)
