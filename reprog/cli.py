"""Turn bad input into one clear line on stderr and a non-zero exit, never a traceback wall.

Set HYDRA_FULL_ERROR=1 to get the full traceback instead. In a multirun the error is raised as a `JobFailed`, so
that Hydra marks just that job as failed, the sweep goes on, and it ends with that one line and exit 1; a signal
(SIGINT, SIGTERM) stops the whole sweep with 130 or 143, as it stops a single run. The job's `metrics.json` records
the failure or interruption itself (`reprog.run_summary.RunRecord`), so a sweep report keeps it.
"""

import functools
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from reprog.errors import UserError, brief
from reprog.run_summary import interruption, resume_point

log = logging.getLogger("reprog")

USER_ERRORS = (UserError, InstantiationException, OmegaConfBaseException)


class JobFailed(CompactHydraException):
    """A sweep job's one-line error: Hydra marks the job failed, the sweep goes on, and at its end Hydra prints this
    line (no traceback) and exits 1."""


def one_line(error: BaseException) -> str:
    """The innermost UserError's message, or the error flattened to a single line."""
    e: BaseException | None = error
    while e is not None:
        if isinstance(e, UserError):
            return str(e)
        if isinstance(e, MissingMandatoryValue):
            return f"{e.full_key} has no value; set it on the command line, e.g. {e.full_key}=..."
        e = e.__cause__
    return " ".join(str(error).split()) if isinstance(error, USER_ERRORS) and str(error).strip() else brief(error)


def exit_on_user_error(task: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        try:
            return task(*args, **kwargs)
        except BaseException as e:
            how = interruption(e)
            if how:  # no traceback for a signal the user or the scheduler sent; a sweep stops with its job
                resume = resume_point(Path(HydraConfig.get().runtime.output_dir)) if HydraConfig.initialized() else None
                log.error(
                    "interrupted by %s; %s",
                    how,
                    f"resume with {resume}" if resume else "no checkpoint was saved yet: run it again to start over",
                )
                raise SystemExit(128 + getattr(signal, how)) from None
            if (
                not isinstance(e, Exception)
                or not isinstance(e, USER_ERRORS)
                or os.environ.get("HYDRA_FULL_ERROR") == "1"
            ):
                raise
            message = one_line(e)
            log.error(message)
            if multirun:
                raise JobFailed(f"error: {message}") from None
            raise SystemExit(f"error: {message}") from None

    return wrapper
