"""A run folder that holds a finished run is never written into again, unless the user asks (`+overwrite=true`).

Hydra writes a run's `.hydra/` files before the task starts, so the check runs as a Hydra callback at the start of
the run (`on_run_start`), before anything is written; `train.py` repeats it for runs composed without Hydra's
entry point.
"""

import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reprog.errors import UserError


def refuse_finished_run(run_dir: str | Path, overwrite: bool) -> None:
    """Raise a one-line UserError when `run_dir/metrics.json` says `completed` and `overwrite` is not set."""
    record = Path(run_dir) / "metrics.json"
    try:
        status = json.loads(record.read_text()).get("status")
    except (OSError, ValueError, AttributeError):  # no record, or not ours: nothing finished to protect
        return
    if status == "completed" and not overwrite:
        raise UserError(
            f"{run_dir} holds a completed run (its metrics.json); choose another hydra.run.dir, or add "
            "+overwrite=true to replace it"
        )


class RefuseFinishedRunDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # as run_job does next: the run dir may name ${hydra:...}
        try:
            refuse_finished_run(config.hydra.run.dir, bool(config.get("overwrite")))
        except UserError as e:
            sys.exit(f"error: {e}")
