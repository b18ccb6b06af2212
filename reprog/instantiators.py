"""Build the Trainer's callbacks and loggers from their config groups (one `_target_` node each)."""

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Every `_target_` node of a group such as `callbacks` or `logger`; null entries are skipped."""
    return [instantiate(node) for node in (cfg or {}).values() if node and "_target_" in node]
