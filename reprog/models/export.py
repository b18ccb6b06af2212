"""Shareable victim files: `<name>.safetensors` (weights) + `<name>.json` (the model spec).

The spec holds only plain values that `build_model` looks up by name, so loading a victim from an
untrusted source never imports or runs anything it names. Lightning `.ckpt` files from
`VictimModule` load too, with `torch.load(weights_only=True)`.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

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
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path)
    meta = {"model": spec, "sha256": state_checksum(model)}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_victim(path: str | Path) -> tuple[nn.Sequential, dict[str, Any]]:
    """Rebuild a victim from a `.safetensors` export or a VictimModule `.ckpt`; returns (model, spec)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no victim checkpoint at {path}; {TRAIN_HINT}")
    try:
        if path.suffix == ".safetensors":
            spec = json.loads(path.with_suffix(".json").read_text())["model"]
            state = load_file(path)
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            spec = ckpt["hyper_parameters"]["model"]
            state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as e:
        raise UserError(f"cannot read victim {path} ({brief(e)}); "
                        f"expected a VictimModule .ckpt or a .safetensors export with its .json; {TRAIN_HINT}") from e
    try:
        model = build_model(**spec)
        model.load_state_dict(state)
    except (TypeError, RuntimeError) as e:
        raise UserError(f"victim {path} does not match its own model spec {spec} ({brief(e)})") from e
    return model, spec
