"""Train any task chosen by config: `python train.py experiment=victim_cifar10 trainer.max_epochs=5`.

Flow: seed -> datamodule -> task (a LightningModule) -> callbacks, loggers -> Trainer -> fit (train=true) -> test
-> export + metrics.json in the run directory. It knows nothing about what the task does.
"""

import logging
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.loggers import TensorBoardLogger

from reprog.cli import exit_on_user_error
from reprog.ddp import ddp_job_scope
from reprog.errors import UserError
from reprog.host_memory import keep_freed_host_memory
from reprog.instantiators import instantiate_group
from reprog.run_summary import job_overrides, plain_metrics, write_summary

log = logging.getLogger("reprog")


def train(cfg: DictConfig) -> dict[str, float | None]:
    """Fit and test the configured task; returns the final metrics."""
    start = time.perf_counter()
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    if cfg.get("keep_freed_host_memory"):
        keep_freed_host_memory()
    output_dir = Path(cfg.paths.output_dir)
    write_summary(output_dir / "metrics.json", status="running", overrides=job_overrides())
    datamodule: pl.LightningDataModule = instantiate(cfg.data)
    module: pl.LightningModule = instantiate(cfg.task)
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):  # the override wins over the default RichProgressBar
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.get("logger")))
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise UserError(f"no checkpoint to resume from at {ckpt_path}; pass an existing .ckpt (e.g. <run>/checkpoints/last.ckpt)")

    fit = cfg.get("train", True)
    metrics, epochs, steps = {}, 0, 0
    if fit:
        log.info("fitting %s on %s", type(module).__name__, type(datamodule).__name__)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics = dict(trainer.callback_metrics)
        epochs, steps = trainer.current_epoch, trainer.global_step
    if cfg.get("test"):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if fit and not trainer.fast_dev_run else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(trainer.callback_metrics)

    metrics = plain_metrics(metrics)
    hparams = {"seed": cfg.get("seed"), **dict(o.split("=", 1) for o in job_overrides() if "=" in o)}
    for logger in trainer.loggers:  # TensorBoard's HParams view: this job's settings beside its results
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, {k: v for k, v in metrics.items() if v is not None})
    if trainer.is_global_zero:
        if cfg.get("export") and hasattr(module, "export"):
            log.info("exported %s", module.export(output_dir))
        summary = write_summary(output_dir / "metrics.json", status="completed", metrics=metrics, epochs=epochs,
                                steps=steps, wall_time_s=round(time.perf_counter() - start, 2),
                                overrides=job_overrides(), world_size=trainer.world_size)
        log.info("results in %s", summary)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    with ddp_job_scope():
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "", None)


if __name__ == "__main__":
    main()
