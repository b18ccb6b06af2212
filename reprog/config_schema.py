"""The domain of every numeric and boolean setting that belongs to no plug-in, checked once on the composed config
before anything runs.

One table, keyed by the setting's dotted path (`*` matches any part of a path). A value outside its domain stops
the run with one line that names the key, the value and the valid range:

    error: data.batch_size=abc: expected an integer >= 1

The settings of a plug-in (a program, label map, attack, oracle, estimator, model, transform or adversarial-training
recipe) are not here: each checks its own where it is built (`reprog.registry`, `reprog.domains.check`), so they
are declared once, in its own signature.

Why a table and not Hydra structured configs: dataclass schemas check types but not ranges, and they
would freeze every group's keys in Python beside the YAML that already declares them.
"""

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any, cast

from omegaconf import DictConfig, ListConfig, OmegaConf

from reprog.domains import FLAG, FRACTION, INT_0, INT_1, NON_NEGATIVE, POSITIVE, Domain, show
from reprog.errors import UserError

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
    "data.seed": INT_0,
    "data.num_workers": INT_0,
    "data.crop_padding": INT_0,
    "data.mean": FRACTION,
    "data.std": POSITIVE,
    "data.download": FLAG,
    "data.augment": FLAG,
    "data.device_resident": FLAG,
    "data.*batch_size": INT_1,
    "data.*_size": INT_1,  # digit_size, canvas_size, train_size, test_size
    "data.channels": INT_1,
    "data.grid": INT_1,
    "data.square": INT_1,
    "*num_classes": Domain(int, 2),
    "*channels_last": FLAG,  # how a model runs (reprog.models.runtime), not what it computes
    "*compile": FLAG,
    "victim.random_init": FLAG,
    "victim.seed": INT_0,
    "optimizer.lr": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.momentum": FRACTION,
    "scheduler.warmup_steps": INT_0,
    "scheduler.min_factor": FRACTION,
    "scheduler.pct_start": Domain(float, 0, 1, open_low=True),
    "scheduler.gamma": POSITIVE,
    "scheduler.every_epochs": INT_1,
    "program.lam": NON_NEGATIVE,  # the task's weight of the program's regularizer
    "mapping.batches": INT_1,  # the task's fit schedule of a map that learns from data
    "task.label_smoothing": Domain(float, 0, 1, nullable=False),
    "task.norm_bias_lr_scale": POSITIVE,
    "task.tta_level": Domain(int, 0, 2),
    "task.image_samples": INT_0,
    "task.fit_size": INT_1,
    "task.masking_gap": FRACTION,
    "task.eval_draws": INT_1,
    "task.figure_samples": INT_0,
    "task.eps_255": NON_NEGATIVE,
    "callbacks.*.epochs": INT_1,
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
            setting = f"{key} holds {show(value)}" if in_list else f"{key}={show(value)}"
            raise UserError(f"{setting}: expected {'each item to be ' if in_list else ''}{domain.describe(value)}")
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
    # a config read from YAML has str (or int) keys and a list int indices; none of DictKeyType's bytes or Enum
    for key, _ in cast(Iterable[tuple[str | int, Any]], items):
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
