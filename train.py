"""Train any task chosen by config: `python train.py experiment=victim_cifar10 trainer.max_epochs=5`.

The run's steps live in `reprog.run`: prepare -> datamodule -> task -> Trainer -> fit -> export -> test -> finish.
"""

import hydra
from omegaconf import DictConfig

from reprog.cli import exit_on_user_error
from reprog.ddp import ddp_job_scope
from reprog.run import train

__all__ = ["main", "train"]


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    with ddp_job_scope():
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "", None)


if __name__ == "__main__":
    main()
