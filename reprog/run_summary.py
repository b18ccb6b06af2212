"""`metrics.json`: what one run (or one multirun job) leaves behind for reports and scripts.

Its `status` is "running" from the start, then "completed" or "failed" (with the error), so a job
that was killed is still visible as unfinished.
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.utilities import rank_zero_only


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Tensors and numbers as floats, sorted by name; non-finite values become None in JSON."""
    out = {}
    for k, v in sorted(metrics.items()):
        v = float(v.item() if isinstance(v, torch.Tensor) else v)
        out[k] = v if math.isfinite(v) else None
    return out


@rank_zero_only
def write_summary(path: str | Path, **fields: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2, default=str) + "\n")
    return path


def job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def record_failure(message: str) -> None:
    """Mark the current Hydra job's `metrics.json` as failed, keeping the error message."""
    if HydraConfig.initialized() and HydraConfig.get().runtime.output_dir:
        write_summary(Path(HydraConfig.get().runtime.output_dir) / "metrics.json", status="failed", error=message,
                      overrides=job_overrides())
