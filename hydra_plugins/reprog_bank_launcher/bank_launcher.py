"""`hydra/launcher=bank`: the jobs of a sweep that can share a frozen victim train together, as program banks.

Every job still gets its own folder (with `.hydra/`, `metrics.json`, its program and TensorBoard scalars); jobs
that cannot share a bank run one by one, as Hydra's basic launcher runs them. The grouping is `reprog.bank_run`'s.
"""

import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    """The job's config with its own folder filled in; run by `run_job`, which makes that folder and `.hydra/`."""
    return OmegaConf.to_container(cfg, resolve=True)


class BankLauncher(Launcher):
    def __init__(self, max_images: int | None = None) -> None:
        self.max_images = max_images
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from reprog.bank_run import plan  # not at import: Hydra imports every plugin it finds
        from reprog.errors import UserError

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs, prepared = [], []
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = idx
            configs.append(cfg)
            prepared.append(self._run(_resolved, cfg))
        resolved = [r.return_value if r.status == JobStatus.COMPLETED else None for r in prepared]
        try:
            banks = plan(resolved, self.max_images)
        except UserError as e:
            raise SystemExit(f"error: {e}") from None
        for note in banks.notes:
            log.info(note)
        log.info(
            "Launching %d jobs: %d as %d banks, %d alone",
            len(configs),
            sum(map(len, banks.banks)),
            len(banks.banks),
            len(banks.alone),
        )
        runs: dict[int, JobReturn] = {}
        for i in banks.alone:
            log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(job_overrides[i])))
            runs[i] = self._run(self.task_function, configs[i])
        for bank in banks.banks:
            log.info("\tbank #%s", ", #".join(str(initial_job_idx + i) for i in bank))
            values = _run_bank(
                [OmegaConf.create(resolved[i]) for i in bank], [prepared[i].overrides for i in bank], self.max_images
            )
            for i, value in zip(bank, values):
                runs[i] = prepared[i]
                runs[i].status = JobStatus.FAILED if isinstance(value, BaseException) else JobStatus.COMPLETED
                runs[i].return_value = value
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [runs[i] for i in range(len(configs))]

    def _run(self, task_function: TaskFunction, cfg: DictConfig) -> JobReturn:
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=task_function,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret


def _run_bank(configs: list[DictConfig], overrides: list[Sequence[str]], max_images: int | None) -> list[Any]:
    """`run_bank`, with each failure as the one line an ordinary job's would be, and a signal stopping the sweep
    with 130 or 143, as it stops a single run."""
    from reprog.bank_run import run_bank
    from reprog.cli import JobFailed, one_line
    from reprog.run_summary import interruption

    try:
        values = run_bank(configs, [list(o) for o in overrides], max_images)
    except BaseException as e:
        how = interruption(e)
        if not how:
            raise
        log.error("interrupted by %s; each job of the bank records it in its metrics.json", how)
        raise SystemExit(128 + getattr(signal, how)) from None
    for config, value in zip(configs, values):
        if isinstance(value, BaseException):
            log.error("job %s: %s", Path(config.paths.output_dir).name, one_line(value))
    return [JobFailed(f"error: {one_line(v)}") if isinstance(v, BaseException) else v for v in values]
