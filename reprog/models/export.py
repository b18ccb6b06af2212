"""Shareable victim files: `<name>.safetensors` (weights; the model spec and sha256 in its header) + `<name>.json`.

The spec holds only plain values that `build_model` looks up by name, so loading a victim from an
untrusted source never imports or runs anything it names. The weights are checked against the sha256
recorded with them, and the `.json` against the header (`reprog.artifacts`). Lightning `.ckpt` files
from `VictimModule` load too, with `torch.load(weights_only=True)`.
"""

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprog.artifacts import read_artifact, save_artifact
from reprog.errors import UserError, brief
from reprog.models import build_model

TRAIN_HINT = "train one with `python train.py experiment=victim_cifar10`"


def state_checksum(model: nn.Module) -> str:
    """sha256 over the names, shapes and bytes of a state dict: identifies a victim exactly."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_victim(model: nn.Module, spec: dict[str, Any], path: str | Path) -> Path:
    """Write `path` (.safetensors) and its `.json` sidecar; returns the weights path."""
    return save_artifact(path, model.state_dict(), {"model": spec, "sha256": state_checksum(model)})


def load_victim(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a victim from a `.safetensors` export or a VictimModule `.ckpt`; returns (model, spec)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no victim checkpoint at {path}; {TRAIN_HINT}")
    sha256 = None
    try:
        if path.suffix == ".safetensors":
            state, meta = read_artifact(path, "victim", TRAIN_HINT)
            spec, sha256 = meta["model"], meta["sha256"]
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            spec = ckpt["hyper_parameters"]["model"]
            state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"cannot read victim {path} ({brief(e)}); "
            f"expected a VictimModule .ckpt or a .safetensors export with its .json; {TRAIN_HINT}"
        ) from e
    try:
        model = build_model(**{**spec, "weights": None})  # the file holds the weights: the spec's source is not read
        model.load_state_dict(state)
    except (UserError, TypeError, RuntimeError, ValueError) as e:  # UserError: an arch or option it does not know
        raise UserError(f"victim {path} does not match its own model spec {spec} ({brief(e)})") from e
    if sha256 is not None and state_checksum(model) != sha256:
        raise UserError(
            f"victim {path}: its weights do not match the sha256 recorded with them "
            f"({str(sha256)[:12]}…); the file was modified: copy it again or re-export it"
        )
    return model, spec
