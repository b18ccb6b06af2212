"""A resume checkpoint opened before fitting: an unreadable file, or another task's, gets one line.

Lightning would find out only inside `trainer.fit`, after the data is loaded, with a traceback. The file
is read with `weights_only=True`, so a checkpoint that carries code is refused, never run. A file that is plainly
something else (a run's JSON, a safetensors export) is named for what it is, not blamed for holding code.
"""

import json
from pathlib import Path

import pytorch_lightning as pl
import torch

from reprog.errors import UserError, brief

HINT = "pass the .ckpt of an earlier run of the same experiment, e.g. ckpt_path=<run>/checkpoints/last.ckpt"


def check_resume_checkpoint(path: str | Path, module: pl.LightningModule) -> None:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint to resume from at {path}; {HINT}")
    if what := plainly_not_a_checkpoint(path):
        raise UserError(f"cannot resume from {path}: it is {what}, not a checkpoint; {HINT}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"cannot resume from {path} ({brief(e, 160)}): it is empty, truncated, not a Lightning "
            f"checkpoint, or holds code, which is never run; {HINT}"
        ) from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "loops" not in ckpt:
        raise UserError(f"{path} is not a Lightning training checkpoint (it has no state_dict and loop state); {HINT}")
    theirs, ours = set(ckpt.get("hyper_parameters") or {}), set(module.hparams)
    if theirs != ours:
        raise UserError(
            f"{path} was saved by another task (its settings: {', '.join(sorted(theirs)) or 'none'}; "
            f"{type(module).__name__} takes {', '.join(sorted(ours))}); {HINT}"
        )
    state = ckpt["state_dict"]
    for name, tensor in module.state_dict().items():
        if name not in state:
            raise UserError(
                f"{path} does not fit this run's model: it has no {name}; resume with the settings "
                "it was trained with (its run folder's .hydra/overrides.yaml lists them)"
            )
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise UserError(
                f"{path} does not fit this run's model: {name} is {tuple(state[name].shape)} there, "
                f"{tuple(tensor.shape)} here; resume with the settings it was trained with "
                "(its run folder's .hydra/overrides.yaml lists them)"
            )


def plainly_not_a_checkpoint(path: Path) -> str | None:
    """What `path` is when its first bytes show it is no torch checkpoint (a zip, or a pickle since protocol 2,
    starts otherwise): a JSON file or a safetensors export; None when it may be a checkpoint."""
    try:
        with path.open("rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError:
        return None  # torch.load will say why it cannot be read
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "a safetensors export (a victim or program file: victim.ckpt_path= or predict take those)"
    if head.lstrip()[:1] in (b"{", b"[") and size < 64 * 2**20:
        try:
            json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return "a JSON file (a run's metrics.json, or the .json beside an export)"
    return None
