"""The domain of every numeric and boolean setting, checked once on the composed config before anything runs.

One table, keyed by the setting's dotted path (`*` matches any part of a path, so one rule covers a
setting wherever an experiment puts it, e.g. every attack's `steps`). A value outside its domain stops the
run with one line that names the key, the value and the valid range:

    error: data.batch_size=abc: expected an integer >= 1

Why a table and not Hydra structured configs: dataclass schemas check types but not ranges, and they
would freeze every group's keys in Python beside the YAML that already declares them.
"""

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from reprog.errors import UserError


@dataclass(frozen=True)
class Domain:
    kind: type  # int, float or bool
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False  # low itself is outside (e.g. a learning rate > 0)
    nullable: bool = False

    def admits(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int):
            return False
        if not math.isfinite(value):
            return False
        return (value > self.low if self.open_low else value >= self.low) and value <= self.high

    def describe(self) -> str:
        if self.kind is bool:
            text = "true or false"
        else:
            noun = "an integer" if self.kind is int else "a number"
            bounds = []
            if self.low > -math.inf:
                bounds.append(f"{'>' if self.open_low else '>='} {self.low:g}")
            if self.high < math.inf:
                bounds.append(f"<= {self.high:g}")
            text = f"{noun} {' and '.join(bounds)}".strip()
        return text + (", or null" if self.nullable else "")


INT_1, INT_0 = Domain(int, 1), Domain(int, 0)
POSITIVE, NON_NEGATIVE, FRACTION = Domain(float, 0, open_low=True), Domain(float, 0), Domain(float, 0, 1)
FLAG = Domain(bool)

# First match wins: specific paths before patterns.
RULES: dict[str, Domain] = {
    "seed": Domain(int, 0, 2**32 - 1, nullable=True),
    "task.program_seed": Domain(int, 0, 2**32 - 1, nullable=True),
    "train": FLAG,
    "test": FLAG,
    "export": FLAG,
    "keep_freed_host_memory": FLAG,
    "trainer.max_epochs": Domain(int, -1),  # -1: until max_steps (checked with it below)
    "trainer.max_steps": Domain(int, -1),
    "trainer.min_epochs": Domain(int, 0, nullable=True),
    "trainer.accumulate_grad_batches": INT_1,
    "trainer.log_every_n_steps": INT_1,
    "trainer.check_val_every_n_epoch": Domain(int, 1, nullable=True),
    "trainer.val_check_interval": Domain(float, 0, open_low=True),  # a fraction of an epoch, or a number of steps
    "trainer.limit_*_batches": Domain(float, 0, nullable=True),
    "trainer.overfit_batches": NON_NEGATIVE,
    "trainer.gradient_clip_val": Domain(float, 0, nullable=True),
    "trainer.num_nodes": INT_1,
    "data.val_size": INT_0,
    "data.split_seed": INT_0,
    "data.num_workers": INT_0,
    "data.crop_padding": INT_0,
    "data.mean": FRACTION,
    "data.std": POSITIVE,
    "data.download": FLAG,
    "data.augment": FLAG,
    "data.device_resident": FLAG,
    "*batch_size": INT_1,
    "*num_classes": Domain(int, 2),
    "*digit_size": INT_1,
    "*canvas_size": INT_1,
    "*channels": INT_1,
    "oracle.grid": Domain(int, 1, nullable=True),  # before data's *.grid
    "*train_size": INT_1,
    "*test_size": INT_1,
    "*.grid": INT_1,
    "*.square": INT_1,
    "*channels_last": FLAG,
    "*compile": FLAG,
    "*random_init": FLAG,
    "*random_start": FLAG,
    "*learn_scale": FLAG,
    "optimizer.lr": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.momentum": FRACTION,
    "scheduler.warmup_steps": INT_0,
    "scheduler.min_factor": FRACTION,
    "scheduler.pct_start": Domain(float, 0, 1, open_low=True),
    "scheduler.gamma": POSITIVE,
    "scheduler.every_epochs": INT_1,
    "program.lam": NON_NEGATIVE,
    "program.init_scale": Domain(float),
    "program.mask_width": INT_1,
    "mapping.k": INT_1,
    "mapping.batches": INT_1,
    "mapping.top_k": INT_0,
    "mapping.laplace": NON_NEGATIVE,
    "task.label_smoothing": Domain(float, 0, 1, nullable=False),
    "task.norm_bias_lr_scale": POSITIVE,
    "task.tta_level": Domain(int, 0, 2),
    "task.image_samples": INT_0,
    "task.fit_size": INT_1,
    "task.masking_gap": FRACTION,
    "task.attacks.*.momentum": NON_NEGATIVE,
    "*eot_samples": Domain(int, 1, nullable=True),  # draws of the transform averaged per gradient (null: no EOT)
    "task.eval_draws": INT_1,
    "task.attacks.*.size": Domain(float, 0, 100, open_low=True),  # a patch's share of the image area, in percent
    "task.attacks.*.degrees": NON_NEGATIVE,
    "transform.degrees": NON_NEGATIVE,
    "transform.translate": FRACTION,
    "transform.brightness": NON_NEGATIVE,
    "transform.blur": NON_NEGATIVE,
    "transform.noise": NON_NEGATIVE,
    "*.lam_period": Domain(int, 1, nullable=True),
    "*.reservoir": Domain(int, 1, nullable=True),
    "*.reservoir_after": INT_0,
    "*.probe_size": INT_0,
    "model.whiten_eps": POSITIVE,
    "oracle.q": INT_1,
    "oracle.mu": POSITIVE,
    "oracle.correction": Domain(float, 0, 1),
    "oracle.top_k": Domain(int, 1, nullable=True),
    "oracle.decimals": Domain(int, 0, nullable=True),
    "adv_training.val_batches": INT_1,
    "adv_training.overfit_floor": FRACTION,
    "adv_training.grad_align": NON_NEGATIVE,
    "*.square_queries": Domain(int, 1, nullable=True),
    "task.figure_samples": INT_0,
    "*eps_255": NON_NEGATIVE,
    "*.eps": NON_NEGATIVE,
    "*alpha_255": POSITIVE,
    "*.alpha": POSITIVE,
    "*steps": INT_1,
    "*.epochs": INT_1,
    "*.rounds": Domain(int, 0),
    "*seed_size": INT_1,
    "*.budget": Domain(int, 1, nullable=True),
    "*.seed": Domain(int, 0, nullable=True),
    "*.confidence": FRACTION,
    "*.lam": NON_NEGATIVE,
    "*.lr": POSITIVE,
    "callbacks.lookahead.every": INT_1,
    "callbacks.lookahead.base": FRACTION,
}


def domain_of(key: str) -> Domain | None:
    return next((d for pattern, d in RULES.items() if fnmatchcase(key, pattern)), None)


def check_config(cfg: DictConfig) -> None:
    """Raise a one-line `UserError` for the first setting outside its domain, or a run that cannot train."""
    for key, value, in_list in _leaves(cfg):
        domain = domain_of(key)
        if domain is not None and not domain.admits(value):
            setting = f"{key} holds {_show(value)}" if in_list else f"{key}={_show(value)}"
            raise UserError(f"{setting}: expected {'each item to be ' if in_list else ''}{domain.describe()}")
    trainer = cfg.get("trainer") or {}
    if cfg.get("train", True) and not trainer.get("fast_dev_run"):
        epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps", -1)
        if epochs == 0 or steps == 0:
            raise UserError(
                f"trainer.max_{'epochs' if epochs == 0 else 'steps'}=0 trains nothing; set it >= 1 "
                "(a task that only evaluates runs with train=false)"
            )
        if epochs == -1 and (steps is None or steps < 1):
            raise UserError(
                "trainer.max_epochs=-1 trains until trainer.max_steps, which is not set; "
                "set trainer.max_epochs >= 1 or trainer.max_steps >= 1"
            )


def _leaves(node: Any, prefix: str = "") -> Any:
    """(dotted key, resolved value, whether it is a list item) for every leaf; a subtree that interpolates
    another one is its copy, skipped."""
    items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node)
    for key, _ in items:
        path = f"{prefix}{key}"
        if path == "hydra" or OmegaConf.is_missing(node, key):
            continue
        if OmegaConf.is_interpolation(node, key):  # a copy of another node, or a value worth checking here
            if domain_of(path) is not None and not isinstance(value := node[key], (DictConfig, ListConfig)):
                yield path, value, False
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            yield from _leaves(value, f"{path}.")
        elif isinstance(value, ListConfig):
            yield from ((path, v, True) for _, v, _ in _leaves(value, f"{path}."))  # items share the list's domain
        else:
            yield path, value, False


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
