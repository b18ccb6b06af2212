"""The steps of one run, for `train.py` and for the bank launcher (`reprog.bank_run`), which runs the same ones.

Flow: prepare (check the config, seed) -> datamodule -> task (a LightningModule) -> Trainer -> open and check every
data split the run touches -> fit (train=true) -> export -> test -> finish (metrics.json in the run directory).
It knows nothing about what the task does. The steps are functions: the bank launcher (`reprog.bank_run`) runs the
same ones for a bank of jobs.
"""

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.loggers import Logger

from reprog.cli import one_line
from reprog.config_schema import check_config
from reprog.divergence import check_weights
from reprog.errors import UserError
from reprog.host_memory import keep_freed_host_memory
from reprog.hparams_view import log_hparams
from reprog.instantiators import instantiate_group
from reprog.modules.classification import configured_lr
from reprog.resume import check_resume_checkpoint
from reprog.run_dir_guard import refuse_finished_run
from reprog.run_summary import (
    RunRecord,
    Terminated,
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
    prepare(cfg)
    datamodule: pl.LightningDataModule = instantiate(cfg.data)
    module: pl.LightningModule = instantiate(cfg.task)
    trainer = build_trainer(cfg, instantiate_group(cfg.get("callbacks")), logger=instantiate_group(cfg.get("logger")))
    fit, test, ckpt_path = cfg.get("train", True), cfg.get("test"), cfg.get("ckpt_path")
    if fit and not ckpt_path and (ckpt_path := requeued_resume(output_dir)):  # a pre-empted SLURM job, requeued
        record.update(resumed_from=str(ckpt_path))
        log.info("requeued by SLURM: resuming from %s", ckpt_path)
    if ckpt_path:
        check_resume_checkpoint(ckpt_path, module)
    open_data(datamodule, ["fit"] * fit + ["test"] * bool(test))

    metrics: dict[str, Any] = {}
    epochs = steps = 0
    if fit:
        check_trains_something(cfg, datamodule)
        metrics, epochs, steps = fit_task(trainer, module, datamodule, ckpt_path)
        if stopped := getattr(module, "stopped_by", None):  # e.g. a query budget spent
            record.update(stopped=stopped)
            if "val/acc" not in metrics:  # the stop came before any validation: measure what it learned
                trainer.validate(module, datamodule=datamodule, weights_only=True)
                metrics.update(trainer.callback_metrics)
    export = getattr(module, "export", None)  # tasks with a shareable result: a victim, a program
    if cfg.get("export") and export is not None and trainer.is_global_zero:  # before testing can fail
        exported = export(output_dir)
        record.update(exports=[str(exported), str(exported.with_suffix(".json"))], epochs=epochs, steps=steps)
        log.info("exported %s", exported)
    if test:
        if trainer.is_global_zero and (moved := retire_hpc_checkpoints(output_dir)):  # else test() would load one
            if "resumed_from" in record.fields:
                record.update(resumed_from=moved.get(record.fields["resumed_from"], record.fields["resumed_from"]))
        trainer.strategy.barrier()
        metrics.update(test_task(trainer, module, datamodule))
    return finish(cfg, record, trainer, metrics, epochs, steps, start)


def prepare(cfg: DictConfig) -> None:
    """Check the config, seed, and set the process-wide numerics a run asks for."""
    check_config(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    if cfg.get("keep_freed_host_memory"):
        keep_freed_host_memory()


def build_trainer(cfg: DictConfig, callbacks: Sequence[pl.Callback], **settings: Any) -> pl.Trainer:
    """The configured Trainer; `enable_progress_bar=false` wins over the default RichProgressBar."""
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return instantiate(cfg.trainer, callbacks=callbacks, **settings)


def fit_task(
    trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule, ckpt_path: str | None = None
) -> tuple[dict[str, Any], int, int]:
    """Fit (the task restores its best weights at the end); the metrics, epochs and steps it took."""
    log.info("fitting %s on %s", type(module).__name__, type(datamodule).__name__)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    stop_if_terminated(trainer)
    trained = ((name, p) for name, p in module.named_parameters() if p.requires_grad)  # NaN or inf: not exported
    check_weights(
        trained, trainer.global_step, "optimizer.lr", configured_lr(getattr(module, "optimizer_factory", None))
    )
    return dict(trainer.callback_metrics), trainer.current_epoch, trainer.global_step


def test_task(trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule) -> dict[str, Any]:
    trainer.test(module, datamodule=datamodule, weights_only=True)
    stop_if_terminated(trainer)
    return dict(trainer.callback_metrics)


def finish(
    cfg: DictConfig,
    record: RunRecord,
    trainer: pl.Trainer,
    metrics: dict[str, Any],
    epochs: int,
    steps: int,
    start: float,
    overrides: list[str] | None = None,
    loggers: list[Logger] | None = None,
) -> dict[str, float | None]:
    """Record a completed run: `metrics.json`, and the job's settings and results in TensorBoard's HParams view."""
    metrics = plain_metrics(metrics)
    overrides = job_overrides() if overrides is None else overrides
    hparams = {"seed": cfg.get("seed"), **dict(o.split("=", 1) for o in overrides if "=" in o)}
    log_hparams(trainer.loggers if loggers is None else loggers, hparams, metrics)
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


def check_trains_something(cfg: DictConfig, datamodule: Any) -> None:
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


def stop_if_terminated(trainer: pl.Trainer) -> None:
    """Lightning looks for a SIGTERM between batches only: one after the last batch would let the run go on."""
    if trainer.received_sigterm:
        raise Terminated("SIGTERM")
