"""A learned program as a file people share: `program.safetensors` + `program.json`.

The tensors are `W` (and `a` for the scale family) and the label map's index; the JSON holds the
placement, the nonlinearity, the label map's kind, and the victim it was made for (its model spec and
sha256). Nothing in either file is executed when it is loaded.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from reprog.errors import UserError, brief
from reprog.label_mapping import LabelMap, restore
from reprog.placement import Placement
from reprog.program import AdversarialProgram, build_program


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
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"program.{k}": v.detach().cpu().contiguous() for k, v in program.state_dict().items()}
    tensors["label_map.index"] = label_map.index.cpu().contiguous()
    save_file(tensors, path)
    meta = {"program": program.config(), "label_map": {"kind": label_map.kind, "num_source": label_map.num_source},
            "victim": victim, **extra}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_program(path: str | Path) -> LoadedProgram:
    """Restore a program saved by `save_program` (e.g. `outputs/runs/<stamp>/program.safetensors`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no program at {path}; train one with `python train.py experiment=reprogram_mnist "
                        "victim.ckpt_path=<victim>`")
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        tensors = load_file(path)
        cfg = dict(meta["program"])
        placement = Placement(**cfg.pop("placement"))
        program = build_program(cfg.pop("family"), placement, **cfg)
        program.load_state_dict({k.removeprefix("program."): v for k, v in tensors.items() if k.startswith("program.")})
        label_map = restore(tensors["label_map.index"], meta["label_map"]["num_source"], meta["label_map"]["kind"])
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read program {path} ({brief(e)}); expected program.safetensors "
                        "with its program.json beside it, as written by a reprogramming run") from e
    return LoadedProgram(program.eval(), label_map, meta)
