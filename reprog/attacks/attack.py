"""`Attack`: the torchattacks-style call, `x_adv = attack(images, labels)`, in [0, 1] pixel space.

Normalization lives inside the model, so an attack sees and returns plain pixels. The model is put
in eval mode for the attack and given back in the mode it had; its parameters get no gradients.

Every attack has the same small interface, so an evaluator treats them all alike:
- `attack(images, labels)` -> adversarial images; `last_goal` is what that call moved away from (the
  labels) or towards (the targets);
- `fit(images, labels)`, for an attack that learns first (universal, substitute); it says where its data
  comes from with `fit_on` ("train" or "val", None: nothing to learn) and how much with `fit_size`;
- `curve`: what `fit` measured as it learned, one dict a step (e.g. agreement against queries); the evaluator
  writes it out and plots it;
- `stats()`: per-image figures of the last call beyond success and size (`stat_names` lists them), e.g. the
  steps an iterative attack took, or which images survive each stage of AutoAttack;
- `save(path)`: what `fit` learned, as a file others can use (the substitute: a victim file), if anything;
- `picture()`: what `fit` learned, as an image to look at (a patch), if anything.

A `fit` that diverges (a loss or a learned tensor that is no longer finite) stops with `reprog.errors.Diverged`
through `check_fit_loss` and `check_fit_weights`, the same check as every other training loop (`reprog.divergence`).

EOT (Athalye et al. 2018): an attack given a `transform` (the world its examples must survive, `reprog.transforms`)
and `eot_samples=n` takes every gradient in `input_grad` as the mean over n random draws of that transform, so
every gradient attack gets EOT from the base class. Without `eot_samples` the transform is not sampled.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprog.attacks.targets import pick_targets
from reprog.divergence import check_loss, check_weights
from reprog.domains import SEED, check
from reprog.errors import UserError
from reprog.registry import Registry
from reprog.transforms import Transform


@contextmanager
def gradients_for(model: nn.Module, train: bool = False) -> Iterator[None]:
    """Autograd on (inside Lightning's inference-mode test loop too), `model` in train or eval mode meanwhile."""
    was_training = model.training
    model.train(train)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        model.train(was_training)


ATTACKS: Registry["Attack"] = Registry("attack kind")


def pixel_units(settings: dict[str, Any]) -> dict[str, Any]:
    """Config values in 1/255 units to [0, 1] pixels: `eps_255: 8` becomes `eps: 8 / 255`."""
    return {
        k.removesuffix("_255"): (v / 255 if k.endswith("_255") and v is not None else v) for k, v in settings.items()
    }


def build_attack(kind: str, model: nn.Module, transform: Transform | None = None, /, **settings: Any) -> "Attack":
    """An attack by kind; settings may use 1/255 units (`eps_255`, `alpha_255`). `transform` is the world its
    examples are judged in: every attack holds it, and a gradient attack with `eot_samples` averages over it."""
    if "transform" in settings:
        raise UserError(f"{kind}: an attack's world is the run's `transform=` group, not a setting of the attack")
    return ATTACKS.build(kind, model, **pixel_units(settings), transform=transform)


class Attack:
    kind = "attack"  # set by ATTACKS.register
    eval_mode = True  # craft with BatchNorm in eval mode; adversarial training crafts in train mode
    fit_on: str | None = None  # "train" or "val": the split `fit` learns from
    fit_size = 0  # images `fit` takes; 0: the evaluator's default (task.fit_size)
    stat_names: tuple[str, ...] = ()  # the keys of `stats()`
    bounded = True  # works inside an eps-ball, so the evaluator runs it once per eps (a patch is not: once)
    key = ""  # the evaluator's name for this run (e.g. universal_eps8), for messages
    config_path = ""  # where its settings live in the run's config (e.g. task.attacks.universal), for messages

    def __init__(
        self,
        model: nn.Module,
        target: int | str | None = None,
        seed: int | None = None,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        if eot_samples is not None and (
            isinstance(eot_samples, bool) or not isinstance(eot_samples, int) or eot_samples < 1
        ):
            raise UserError(
                f"eot_samples={eot_samples!r}: expected a whole number >= 1 (draws of the transform "
                "averaged per gradient), or null for no EOT"
            )
        check(self.kind, locals(), seed=SEED)
        self.model, self.target = model, target
        self.eot_samples, self.transform = eot_samples, transform
        self.last_goal: torch.Tensor | None = None
        self.curve: list[dict[str, float]] = []
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    @property
    def name(self) -> str:
        """The older spelling of `kind`."""
        return self.kind

    @property
    def targeted(self) -> bool:
        return self.target is not None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with gradients_for(self.model, train=self.model.training and not self.eval_mode):
            images, labels = images.detach().clone(), labels.detach().clone()
            self.last_goal = self.goal(images, labels)  # the true labels, or the targets
            return self.perturb(images, self.last_goal).detach()

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> "Attack":
        """Learn from `fit_size` images of the `fit_on` split before attacking; most attacks learn nothing."""
        return self

    def check_fit_loss(self, loss: torch.Tensor, step: int) -> None:
        """Stop a `fit` whose loss is NaN or inf at `step`, naming this attack's learning rate as the likely cause."""
        what = f"the training loss of attack {self.key or self.name}"
        check_loss(loss, step, self.setting_name("lr"), getattr(self, "lr", None), what)

    def check_fit_weights(self, named: list[tuple[str, torch.Tensor]], steps: int) -> None:
        """Stop a `fit` whose learned tensors hold NaN or inf, before they are saved or attack anything."""
        what = f"the tensors attack {self.key or self.name} learned"
        check_weights(named, steps, self.setting_name("lr"), getattr(self, "lr", None), what)

    def setting_name(self, name: str) -> str:
        """A setting of this attack as the user writes it on the command line."""
        return f"{self.config_path}.{name}" if self.config_path else name

    def stats(self) -> dict[str, torch.Tensor]:
        """Per-image figures of the last call, one (N,) tensor per name in `stat_names`."""
        return {}

    def save(self, path: Path) -> Path | None:
        """Write what `fit` learned to `path` (+ a suffix of the attack's choosing); None: nothing to keep."""
        return None

    def picture(self) -> torch.Tensor | None:
        """What `fit` learned as a (C, H, W) image in [0, 1] to show (a patch); None: nothing to show."""
        return None

    def goal(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The labels to move away from (untargeted) or towards (targeted)."""
        if self.target is None:  # untargeted
            return labels
        with torch.no_grad():
            logits = self.model(images)
        return pick_targets(self.target, logits, labels, self.generator)

    def loss(self, logits: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Per-sample loss to ascend: CE of the true label, or minus CE of the target."""
        ce = F.cross_entropy(logits, goal, reduction="none")
        return -ce if self.targeted else ce

    def succeeded(self, logits: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(1)
        return pred == goal if self.targeted else pred != goal

    @property
    def eot(self) -> bool:
        return bool(self.eot_samples) and self.transform is not None

    def through_world(self, x: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Under EOT, `x` as `eot_samples` draws of the transform see it (one batch of n copies, drawn from the
        attack's generator) and `goal` repeated to match; without EOT both as they are."""
        if not self.eot:
            return x, goal
        n, transform = self.eot_samples, self.transform
        assert n is not None and transform is not None  # both set, or `eot` is False
        return transform(x.repeat(n, *[1] * (x.dim() - 1)), self.generator), goal.repeat(n)

    def input_grad(self, x: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the summed loss w.r.t. the input, and the logits it was taken at; under EOT both are means
        over the draws of `through_world`."""
        x = x.detach().requires_grad_(True)
        seen, goals = self.through_world(x, goal)
        logits = self.model(seen)
        n = len(seen) // len(x)
        (grad,) = torch.autograd.grad(self.loss(logits, goals).sum() / n, x)
        return grad, logits.detach().view(n, len(x), -1).mean(0)

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        eot = f", eot_samples={self.eot_samples}" if self.eot_samples else ""
        return f"{type(self).__name__}(target={self.target}{eot})"
