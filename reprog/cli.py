"""Turn bad input into one clear line on stderr and a non-zero exit, never a traceback wall.

Set HYDRA_FULL_ERROR=1 to get the full traceback instead. In a multirun the error is re-raised so
that Hydra marks just that job as failed and the sweep goes on. Any failure is also recorded in the
job's `metrics.json` (status "failed" and the message), so a sweep report keeps it.
"""

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from reprog.errors import UserError
from reprog.run_summary import record_failure

log = logging.getLogger("reprog")

USER_ERRORS = (UserError, InstantiationException, OmegaConfBaseException)


def one_line(error: BaseException) -> str:
    """The innermost UserError's message, or the error flattened to a single line."""
    e: BaseException | None = error
    while e is not None:
        if isinstance(e, UserError):
            return str(e)
        if isinstance(e, MissingMandatoryValue):
            return f"{e.full_key} has no value; set it on the command line, e.g. {e.full_key}=..."
        e = e.__cause__
    return " ".join(str(error).split())


def exit_on_user_error(task: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except Exception as e:
            message = one_line(e)
            record_failure(message)
            if not isinstance(e, USER_ERRORS) or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error(message)
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            raise SystemExit(f"error: {message}") from None

    return wrapper
