"""Shareable artifacts (victims, programs, patches): `<name>.safetensors` that describes itself, plus `<name>.json`.

The metadata lives inside the safetensors header (its `metadata` field, under the key `reprog`), so the
weights file alone says what it is. The `.json` beside it is a readable copy: on load the two must agree,
field by field, or the load is refused with the first field that differs. Both are written to temporary
names, then renamed, the `.safetensors` first: a kill between the two renames leaves a weights file that is
complete and describes itself, never a sidecar without its weights. Loading never executes anything.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from reprog.atomic_files import write_files
from reprog.errors import UserError, brief

HEADER_KEY = "reprog"
USES = {  # what each kind of artifact is for, said when one is handed where another kind belongs
    "program": "a program: apply it with `python -m reprog.predict program=<it> victim=<victim> images=<images>`",
    "patch": "an adversarial patch: apply it with `python -m reprog.patch_predict patch=<it> victim=<victim> "
    "images=<images>`",
    "victim": "a victim: pass it as victim=<it> (train.py: victim.ckpt_path=<it>)",
}


def kind_of(meta: dict[str, Any]) -> str | None:
    """Which artifact a header's metadata describes, from the fields each kind writes."""
    if meta.get("attack") == "patch":
        return "patch"
    if "program" in meta and "label_map" in meta:
        return "program"
    if "model" in meta and "sha256" in meta:
        return "victim"
    return None


def save_artifact(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write `path` (.safetensors, `meta` in its header) and its `.json` copy; returns the .safetensors path."""
    path = Path(path).with_suffix(".safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    blob = save(tensors, metadata={HEADER_KEY: json.dumps(meta, sort_keys=True)})
    write_files({path: blob, path.with_suffix(".json"): json.dumps(meta, indent=2) + "\n"})
    return path


def read_artifact(path: str | Path, kind: str, hint: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of an artifact; `kind` ("program", "victim") and `hint` (how to make one) go into errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {kind} at {path}; {hint}")
    try:
        with safe_open(path, "pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise UserError(
            f"cannot read {kind} {path} ({brief(e)}); it is not a complete .safetensors file: copy it again, or {hint}"
        ) from e
    if HEADER_KEY not in header:
        raise UserError(
            f"{path} carries no reprog metadata in its header (written by another tool, or by reprog "
            f"before the header held it); {hint}"
        )
    try:
        meta = json.loads(header[HEADER_KEY])
    except ValueError as e:
        raise UserError(f"the metadata in {path}'s header is not JSON ({brief(e)}); {hint}") from e
    found = kind_of(meta) if isinstance(meta, dict) else None
    if found not in (None, kind):
        raise UserError(f"{path} is {USES[found]}; it is not a {kind}")
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            copy = json.loads(sidecar.read_text())
        except (OSError, ValueError) as e:
            raise UserError(
                f"cannot read {sidecar} ({brief(e)}); delete it (the metadata inside {path.name} "
                "is the original) or restore it"
            ) from e
        field = first_difference(meta, copy)
        if field is not None:
            raise UserError(
                f"{sidecar.name} disagrees with the metadata inside {path.name} at {field} "
                f"({_at(copy, field)!r} in the .json, {_at(meta, field)!r} in the file): the .json "
                f"was edited or belongs to another file; delete it or restore it"
            )
    return tensors, meta


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The dotted path of the first field where two JSON values differ, or None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{prefix}{key}"
            field = first_difference(a[key], b[key], f"{prefix}{key}.")
            if field is not None:
                return field
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            field = first_difference(x, y, f"{prefix}{i}.")
            if field is not None:
                return field
        return None
    return None if a == b and type(a) is type(b) else prefix.rstrip(".") or "(the whole file)"


def _at(value: Any, field: str) -> Any:
    for key in field.split("."):
        if isinstance(value, dict):
            value = value.get(key, "(missing)")
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return value
    return value


def check_shapes(
    tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path, meta_name: str
) -> None:
    """The file's tensors are exactly those its metadata implies, with the same shapes."""
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise UserError(
            f"{path} does not fit its own metadata: tensors {missing or ''} missing, "
            f"{extra or ''} unexpected for its {meta_name}"
        )
    for name, tensor in expected.items():
        if tuple(tensors[name].shape) != tuple(tensor.shape):
            raise UserError(
                f"{path} does not fit its own metadata: {name} is {tuple(tensors[name].shape)}, "
                f"but its {meta_name} needs {tuple(tensor.shape)}"
            )
