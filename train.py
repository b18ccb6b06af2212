"""Train any task chosen by config: `python train.py experiment=victim_cifar10 trainer.max_epochs=5`.

Flow: check the config -> seed -> datamodule -> task (a LightningModule) -> callbacks, loggers -> Trainer ->
open and check every data split the run touches -> fit (train=true) -> export -> test -> metrics.json in the
run directory. It knows nothing about what the task does.
"""

import logging
import os
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar

from reprog.cli import exit_on_user_error, one_line
from reprog.config_schema import check_config
from reprog.ddp import ddp_job_scope
from reprog.errors import Diverged, UserError
from reprog.host_memory import keep_freed_host_memory
from reprog.hparams_view import log_hparams
from reprog.instantiators import instantiate_group
from reprog.resume import check_resume_checkpoint
from reprog.run_dir_guard import refuse_finished_run
from reprog.run_summary import (
    RunRecord,
    job_overrides,
    plain_metrics,
    requeued_resume,
    resume_point,
    retire_hpc_checkpoints,
    slurm_fields,
)

log = logging.getLogger("reprog")


def train(cfg: DictConfig) -> dict[str, float | None]:
    """Fit and test the configured task; returns the final metrics. `metrics.json` says how it went."""
    output_dir = Path(cfg.paths.output_dir)
    refuse_finished_run(output_dir, bool(cfg.get("overwrite")))
    record = RunRecord(output_dir / "metrics.json", overrides=job_overrides(), **slurm_fields())
    with record.tracking(describe=one_line, resume_hint=lambda: resume_point(output_dir)):
        return run(cfg, record)


def run(cfg: DictConfig, record: RunRecord) -> dict[str, float | None]:
    start, output_dir = time.perf_counter(), Path(cfg.paths.output_dir)
    check_config(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    if cfg.get("keep_freed_host_memory"):
        keep_freed_host_memory()
    datamodule: pl.LightningDataModule = instantiate(cfg.data)
    module: pl.LightningModule = instantiate(cfg.task)
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):  # the override wins over the default RichProgressBar
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.get("logger")))
    fit, test, ckpt_path = cfg.get("train", True), cfg.get("test"), cfg.get("ckpt_path")
    if fit and not ckpt_path and (ckpt_path := requeued_resume(output_dir)):  # a pre-empted SLURM job, requeued
        record.update(resumed_from=str(ckpt_path))
        log.info("requeued by SLURM: resuming from %s", ckpt_path)
    if ckpt_path:
        check_resume_checkpoint(ckpt_path, module)
    open_data(datamodule, ["fit"] * fit + ["test"] * bool(test))
    if fit:
        check_trains_something(cfg, datamodule)

    metrics, epochs, steps = {}, 0, 0
    if fit:
        log.info("fitting %s on %s", type(module).__name__, type(datamodule).__name__)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics = dict(trainer.callback_metrics)
        epochs, steps = trainer.current_epoch, trainer.global_step
        restore_best(trainer, module)
        check_finite(module, steps)
    if cfg.get("export") and hasattr(module, "export") and trainer.is_global_zero:  # before testing can fail
        exported = module.export(output_dir)
        record.update(exports=[str(exported), str(exported.with_suffix(".json"))], epochs=epochs, steps=steps)
        log.info("exported %s", exported)
    if test:
        if trainer.is_global_zero and (moved := retire_hpc_checkpoints(output_dir)):  # else test() would load one
            if "resumed_from" in record.fields:
                record.update(resumed_from=moved.get(record.fields["resumed_from"], record.fields["resumed_from"]))
        trainer.strategy.barrier()
        trainer.test(module, datamodule=datamodule, weights_only=True)
        metrics.update(trainer.callback_metrics)

    metrics = plain_metrics(metrics)
    hparams = {"seed": cfg.get("seed"), **dict(o.split("=", 1) for o in job_overrides() if "=" in o)}
    log_hparams(trainer.loggers, hparams, metrics)  # TensorBoard's HParams view: this job's settings and results
    summary = record.update(
        status="completed",
        metrics=metrics,
        epochs=epochs,
        steps=steps,
        wall_time_s=round(time.perf_counter() - start, 2),
        world_size=trainer.world_size,
    )
    if trainer.is_global_zero:
        log.info("results in %s", summary)
    return metrics


def open_data(datamodule: pl.LightningDataModule, stages: list[str]) -> None:
    """Load and check every split the run will touch now, so bad data fails in seconds, not after training."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:  # DDP ranks > 0 start after rank 0 has prepared the data
        datamodule.prepare_data()
    for stage in stages:
        datamodule.setup(stage)


def check_trains_something(cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """Refuse, before fitting, a run that would take no optimizer step and so export an untrained result."""
    if cfg.trainer.get("limit_train_batches") == 0:
        raise UserError(
            "trainer.limit_train_batches=0 trains on no batch; give a number of batches >= 1 or a "
            "fraction > 0, or train=false to only test"
        )
    batches = getattr(datamodule, "train_batches", None)
    if batches is not None and batches() == 0:
        raise UserError(
            f"data.batch_size={datamodule.batch_size} is larger than the {len(datamodule.train_set)} "
            "training images, so an epoch takes no step (the last partial batch is dropped); lower "
            "data.batch_size"
        )


def check_finite(module: pl.LightningModule, steps: int) -> None:
    """Refuse to export or test weights that hold NaN or inf (a last step that diverged, a metric that did)."""
    bad = [name for name, p in module.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise Diverged(
            f"after {steps} steps the trained weights hold NaN or inf ({', '.join(bad[:3])}): the run "
            "diverged; lower the learning rate (optimizer.lr)"
        )


def restore_best(trainer: pl.Trainer, module: pl.LightningModule) -> None:
    """The best checkpoint's weights back into the module (the last ones when none was kept): what is exported and
    tested."""
    best = getattr(trainer.checkpoint_callback, "best_model_path", "") if not trainer.fast_dev_run else ""
    if best:
        module.load_state_dict(torch.load(best, map_location=module.device, weights_only=True)["state_dict"])


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    with ddp_job_scope():
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "", None)


if __name__ == "__main__":
    main()
