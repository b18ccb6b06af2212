"""A resume checkpoint opened before fitting: an unreadable file, or another task's, gets one line.

Lightning would find out only inside `trainer.fit`, after the data is loaded, with a traceback. The file
is read with `weights_only=True`, so a checkpoint that carries code is refused, never run.
"""

from pathlib import Path

import pytorch_lightning as pl
import torch

from reprog.errors import UserError, brief

HINT = "pass the .ckpt of an earlier run of the same experiment, e.g. ckpt_path=<run>/checkpoints/last.ckpt"


def check_resume_checkpoint(path: str | Path, module: pl.LightningModule) -> None:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint to resume from at {path}; {HINT}")
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
