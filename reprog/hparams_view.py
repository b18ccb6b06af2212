"""TensorBoard's HParams view of a finished run: its settings beside its final metrics, with its curves kept whole.

Lightning's `TensorBoardLogger.log_hyperparams(params, metrics)` logs the metrics again at step 0, and TensorBoard's
default (Rust) loader reads a step going back to 0 as a restart and drops each curve's history. So the summary is
written here without those step-0 points: the HParams view reads each metric from the scalars the run already
logged.
"""

from collections.abc import Iterable
from typing import Any

from pytorch_lightning.loggers import Logger, TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summary


def log_hparams(loggers: Iterable[Logger], params: dict[str, Any], metrics: dict[str, float | None]) -> None:
    """Declare `params` and the names of `metrics` to every TensorBoard logger; no scalar is written."""
    names = {name: 0.0 for name, value in metrics.items() if value is not None}  # values come from the scalars
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()  # as Lightning's log_hyperparams writes it
            for summary in hparams_summary(logger._sanitize_params(params), names):
                writer.add_summary(summary)
            writer.flush()
