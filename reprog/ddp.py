"""DDP inside Hydra multiruns: each job gets its own ranks, and leaves nothing behind for the next.

Lightning's `strategy=ddp` starts rank k > 0 by re-running `sys.argv` with `hydra.run.dir` set to
`HydraConfig.run.dir`. In a single run that is rank 0's directory. In a multirun job `sys.argv` is the
sweep and `run.dir` a fresh timestamp, so every rank would re-run the sweep elsewhere; and the process
group and rank variables of job 1 would make job 2 wait for ranks that never start.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, read_write


@contextmanager
def ddp_job_scope() -> Iterator[None]:
    """In a multirun job: DDP ranks re-run this job's overrides in its directory, then are torn down."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        yield
        return
    hydra_cfg, argv, env = HydraConfig.get(), sys.argv, dict(os.environ)
    sys.argv = [argv[0], *hydra_cfg.overrides.task]
    run = cast(DictConfig, hydra_cfg.run)  # typed as Hydra's dataclass, a DictConfig at runtime
    with read_write(run):
        run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        sys.argv = argv
        os.environ.clear()
        os.environ.update(env)
