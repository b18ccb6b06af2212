"""`metrics.json`: what one run (or one multirun job) leaves behind for reports and scripts."""

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Tensors and numbers as floats, sorted by name; non-finite values become None in JSON."""
    out = {}
    for k, v in sorted(metrics.items()):
        v = float(v.item() if isinstance(v, torch.Tensor) else v)
        out[k] = v if math.isfinite(v) else None
    return out


def write_summary(path: str | Path, **fields: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2, default=str) + "\n")
    return path
