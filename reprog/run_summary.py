"""`metrics.json`: what one run (or one multirun job) leaves behind for reports and scripts.

Its `status` says what happened: `running` (with the process id and host, so a report can tell a
killed run from a live one), then `completed`, `failed` (with the error), `diverged` (a non-finite loss or
weights; nothing exported), or `interrupted` (SIGINT or
SIGTERM, with the checkpoint to resume from). Each change rewrites the file atomically and keeps what
was already recorded (the exports, for instance), so a crash in testing still lists the trained result.
"""

import json
import math
import os
import signal
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from reprog.atomic_files import write_file
from reprog.errors import Diverged, brief


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Tensors and numbers as floats, sorted by name; non-finite values become None in JSON."""
    out: dict[str, float | None] = {}
    for k, v in sorted(metrics.items()):
        v = float(v.item() if isinstance(v, torch.Tensor) else v)
        out[k] = v if math.isfinite(v) else None
    return out


def job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def resume_point(run_dir: Path) -> str | None:
    """`ckpt_path=` of the newest checkpoint to resume from: last.ckpt, or the one Lightning saves for a SLURM
    requeue."""
    saved = [*run_dir.glob("checkpoints/last.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    return f"ckpt_path={max(saved, key=lambda p: p.stat().st_mtime)}" if saved else None


def requeued_resume(run_dir: Path) -> Path | None:
    """The checkpoint a requeued SLURM job (pre-empted, or requeued by Lightning on its warning signal) resumes
    from: the newest in its folder (`resume_point`). None for a first start (SLURM_RESTART_COUNT unset or 0)."""
    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) < 1:
        return None
    point = resume_point(run_dir)
    return Path(point.split("=", 1)[1]) if point else None


def retire_hpc_checkpoints(run_dir: Path) -> dict[str, str]:
    """Move the `hpc_ckpt_*.ckpt` a requeued job resumed from into `checkpoints/`, once fitting is over: under SLURM
    Lightning's `test(ckpt_path=None)` would load the newest one from the run folder in place of the trained
    weights. Returns {old path: new path}."""
    moved = {}
    for hpc in sorted(run_dir.glob("hpc_ckpt_*.ckpt")):
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        moved[str(hpc)] = str(hpc.replace(run_dir / "checkpoints" / hpc.name))
    return moved


def slurm_fields() -> dict[str, Any]:
    """Under SLURM, the job id and how often it was requeued, for metrics.json; nothing elsewhere."""
    job = (
        os.environ.get("SLURM_ARRAY_JOB_ID")
        and f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    )
    job = job or os.environ.get("SLURM_JOB_ID")
    return {"slurm": {"job_id": job, "restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0)}} if job else {}


class Terminated(BaseException):
    """SIGTERM outside Lightning's loops (loading data, exporting): stop here, with the run recorded. Not an
    `Exception`, so no handler meant for bad files or configs mistakes it for one."""


class RunRecord:
    """The run's `metrics.json`, rewritten atomically at each change (on rank zero only)."""

    def __init__(self, path: str | Path, **fields: Any) -> None:
        self.path = Path(path)
        self.fields: dict[str, Any] = dict(fields)

    def update(self, **fields: Any) -> Path:
        self.fields.update(fields)
        self._write()
        return self.path

    @rank_zero_only
    def _write(self) -> None:
        write_file(self.path, json.dumps(self.fields, indent=2, default=str) + "\n")

    @contextmanager
    def tracking(
        self, describe: Callable[[BaseException], str] = brief, resume_hint: Callable[[], str | None] = lambda: None
    ) -> Iterator["RunRecord"]:
        """`running` now; `failed` or `interrupted` if the block raises (the block records `completed` itself).

        SIGTERM (a SLURM pre-emption, `kill`) outside `trainer.fit`/`test` raises `Terminated`; inside
        them Lightning's own handler stops at the next batch and raises `SIGTERMException`.
        """
        self.update(
            status="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now().isoformat(timespec="seconds"),
        )
        previous = signal.getsignal(signal.SIGTERM)

        def terminate(signum: int, frame: FrameType | None) -> None:
            if signal.getsignal(signal.SIGTERM) is terminate:  # else Lightning's handler, which called this one,
                raise Terminated("SIGTERM")  # stops the loop at the next batch

        installed = _set_signal(signal.SIGTERM, terminate)
        try:
            yield self
        except BaseException as e:
            how = interruption(e)
            if how:
                self.update(status="interrupted", signal=how, resume=resume_hint(), error=None)
            elif isinstance(e, Diverged):
                self.update(status="diverged", error=describe(e))
            elif not (isinstance(e, SystemExit) and not e.code):
                self.update(status="failed", error=describe(e))
            raise
        finally:
            if installed:
                _set_signal(signal.SIGTERM, previous)


def interruption(error: BaseException) -> str | None:
    """ "SIGINT" or "SIGTERM" when `error` is how Python or Lightning reports that signal, else None."""
    if isinstance(error, (SIGTERMException, Terminated)):
        return "SIGTERM"
    if isinstance(error, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(error, SystemExit) and isinstance(error.__context__, KeyboardInterrupt):
        return "SIGINT"  # Lightning's graceful shutdown after Ctrl+C ends in sys.exit(1)
    return None


def _set_signal(signum: int, handler: Any) -> bool:
    try:
        signal.signal(signum, handler)
    except ValueError:  # not the main thread (e.g. a launcher's worker thread): leave signals alone
        return False
    return True
