"""A learned program as a file people share: `program.safetensors` + `program.json`.

The tensors are the program's (`W`, and `a` for the scale kind) and the label map's (an index, a weight
matrix, a linear layer). The metadata (the program's kind, placement, nonlinearity, channels, the label map's kind,
sizes and settings, how target images are resized, and the victim it was made for: model spec and sha256) lives in
the safetensors header; `program.json` is its readable copy (`reprog.artifacts`). A file whose tensors do not
fit its metadata, or whose `.json` was edited, is refused. Nothing in either file is executed when it is loaded:
the kinds it names are looked up among the registered ones. Files saved before the program's key was `kind` name
it `family`, and still load.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprog.artifacts import check_shapes, read_artifact, save_artifact
from reprog.errors import UserError, brief
from reprog.label_mapping import IndexMap, LabelMap, build_label_map
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


def save_program(
    path: str | Path, program: AdversarialProgram, label_map: LabelMap, victim: dict[str, Any], **extra: Any
) -> Path:
    """Write the program and its sidecar; `victim` is {"sha256": ..., "model": spec}."""
    tensors = {f"program.{k}": v for k, v in program.state_dict().items()}
    tensors.update({f"label_map.{k}": v for k, v in label_map.state_dict().items()})
    meta = {
        "program": program.config(),
        "label_map": {
            "kind": label_map.kind,
            "num_source": label_map.num_source,
            "num_targets": label_map.num_targets,
            "settings": label_map.settings(),
        },
        "victim": victim,
        **extra,
    }
    return save_artifact(path, tensors, meta)


def load_program(path: str | Path) -> LoadedProgram:
    """Restore a program saved by `save_program` (e.g. `outputs/runs/<stamp>/program.safetensors`)."""
    path = Path(path)
    tensors, meta = read_artifact(path, "program", TRAIN_HINT)
    try:
        cfg = dict(meta["program"])
        placement = Placement(**cfg.pop("placement"))
        kind = cfg.pop("kind") if "kind" in cfg else cfg.pop("family")  # older files say family
        program = build_program(kind, placement, **cfg)
        maps = meta["label_map"]
        label_map = build_label_map(
            str(maps["kind"]), int(maps["num_source"]), int(maps["num_targets"]), **dict(maps["settings"])
        )
        victim_sha256 = meta["victim"]["sha256"]
        expected = {f"program.{k}": v for k, v in program.state_dict().items()}
        expected.update({f"label_map.{k}": v for k, v in label_map.state_dict().items()})
    except UserError as e:
        raise UserError(f"program {path}: its metadata is not valid ({e})") from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"program {path}: its metadata is incomplete ({brief(e)}); {TRAIN_HINT}") from e
    if not isinstance(victim_sha256, str):
        raise UserError(f"program {path}: its metadata names no victim sha256; {TRAIN_HINT}")
    check_shapes(tensors, expected, path, f"program ({meta['program']}) and label map ({maps})")
    program.load_state_dict({k.removeprefix("program."): v for k, v in tensors.items() if k.startswith("program.")})
    label_map.load_state_dict(
        {k.removeprefix("label_map."): v for k, v in tensors.items() if k.startswith("label_map.")}
    )
    if isinstance(label_map, IndexMap):
        try:
            label_map.set_index(label_map.index)  # a saved index is checked like a built one
        except UserError as e:
            raise UserError(f"program {path}: {e}") from e
    return LoadedProgram(program.eval(), label_map, meta)
