"""State dicts from files, read without executing code (safetensors or `weights_only=True`)."""

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from reprog.errors import UserError, brief


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file, or from a torch.save'd state dict (never unpickled code)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no weights file at {path}; download the weights once and point model.weights at them")
    try:
        state = load_file(path) if path.suffix == ".safetensors" else torch.load(path, "cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"cannot read weights file {path} ({brief(e)}); it must be "
            ".safetensors or a plain state_dict saved with torch.save"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    return state


def load_weights(net: nn.Module, path: str | Path | None) -> nn.Module:
    """Load `path` into `net` (none: `net` as it is); a file made for another architecture is a clear error."""
    if not path:
        return net
    try:
        net.load_state_dict(load_weights_file(path))
    except RuntimeError as e:
        raise UserError(f"weights file {path} does not fit this architecture ({brief(e)})") from e
    return net
