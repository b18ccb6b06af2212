"""A learned program as a file people share: `program.safetensors` + `program.json`.

The tensors are the program's (`W`, and `a` for the scale family) and the label map's index. The
metadata (family, placement, nonlinearity, channels, the label map's kind and shape, how target images
are resized, and the victim it was made for: model spec and sha256) lives in the safetensors header;
`program.json` is its readable copy (`reprog.artifacts`). A file whose tensors do not fit its metadata,
or whose `.json` was edited, is refused. Nothing in either file is executed when it is loaded.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reprog.artifacts import check_shapes, read_artifact, save_artifact
from reprog.errors import UserError, brief
from reprog.label_mapping import LabelMap, restore
from reprog.placement import Placement
from reprog.program import AdversarialProgram, build_program

TRAIN_HINT = "train one with `python train.py experiment=reprogram_mnist victim.ckpt_path=<victim>`"


@dataclass
class LoadedProgram:
    program: AdversarialProgram
    label_map: LabelMap
    meta: dict[str, Any]

    @property
    def victim_sha256(self) -> str:
        return self.meta["victim"]["sha256"]


def save_program(path: str | Path, program: AdversarialProgram, label_map: LabelMap, victim: dict[str, Any],
                 **extra: Any) -> Path:
    """Write the program and its sidecar; `victim` is {"sha256": ..., "model": spec}."""
    tensors = {f"program.{k}": v for k, v in program.state_dict().items()}
    tensors["label_map.index"] = label_map.index
    meta = {"program": program.config(),
            "label_map": {"kind": label_map.kind, "num_source": label_map.num_source,
                          "num_targets": label_map.num_targets, "k": label_map.index.shape[1]},
            "victim": victim, **extra}
    return save_artifact(path, tensors, meta)


def load_program(path: str | Path) -> LoadedProgram:
    """Restore a program saved by `save_program` (e.g. `outputs/runs/<stamp>/program.safetensors`)."""
    path = Path(path)
    tensors, meta = read_artifact(path, "program", TRAIN_HINT)
    try:
        cfg = dict(meta["program"])
        placement = Placement(**cfg.pop("placement"))
        program = build_program(cfg.pop("family"), placement, **cfg)
        maps = meta["label_map"]
        victim_sha256 = meta["victim"]["sha256"]
        expected = {f"program.{k}": v for k, v in program.state_dict().items()}
        expected["label_map.index"] = torch.empty(int(maps["num_targets"]), int(maps["k"]))
    except UserError as e:
        raise UserError(f"program {path}: its metadata is not valid ({e})") from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"program {path}: its metadata is incomplete ({brief(e)}); {TRAIN_HINT}") from e
    if not isinstance(victim_sha256, str):
        raise UserError(f"program {path}: its metadata names no victim sha256; {TRAIN_HINT}")
    check_shapes(tensors, expected, path, f"program ({meta['program']}) and label map ({maps})")
    program.load_state_dict({k.removeprefix("program."): v for k, v in tensors.items() if k.startswith("program.")})
    try:
        label_map = restore(tensors["label_map.index"], int(maps["num_source"]), str(maps["kind"]))
    except UserError as e:
        raise UserError(f"program {path}: {e}") from e
    return LoadedProgram(program.eval(), label_map, meta)
