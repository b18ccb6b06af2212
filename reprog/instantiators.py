"""Build the Trainer's callbacks and loggers from their config groups (one `_target_` node each)."""

from omegaconf import DictConfig
from hydra.utils import instantiate
from pytorch_lightning import Callback
from pytorch_lightning.loggers import Logger


def instantiate_callbacks(cfg: DictConfig | None) -> list[Callback]:
    return [instantiate(c) for c in (cfg or {}).values() if c and "_target_" in c]


def instantiate_loggers(cfg: DictConfig | None) -> list[Logger]:
    return [instantiate(c) for c in (cfg or {}).values() if c and "_target_" in c]
