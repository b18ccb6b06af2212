"""Transfer of programs: apply each program to each victim and print the matrix of target accuracy.

    python -m reprog.transfer programs=[<run A>/program.safetensors,<run B>/program.safetensors] \
        victims=[<victim A>/victim.safetensors,<victim B>/victim.safetensors] [images=mnist] [out=transfer]

Rows are programs, named by the victim they were trained on (found by sha256; bold, or * in the map, where it is
applied to that victim), columns the victims they are applied to. Writes `<out>.json` and a heat map `<out>.png`.
Settings as in `reprog.predict` (data_dir, cache_dir, batch_size), plus `names=[...]` to label the victims.
"""

import json
import sys
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import OmegaConf

from reprog.errors import UserError, brief
from reprog.models.frozen import load_frozen_victim
from reprog.predict import classify, help_asked, read_images
from reprog.program_io import load_program

DEFAULTS = {
    "programs": "???",
    "victims": "???",
    "images": "mnist",
    "names": None,
    "out": "transfer",
    "data_dir": "${oc.env:REPROG_DATA_DIR,data}",
    "cache_dir": "${oc.env:REPROG_CACHE_DIR,outputs/cache}",
    "batch_size": 512,
}
USAGE = "usage: python -m reprog.transfer programs=[P1,P2,...] victims=[V1,V2,...]"


def transfer_matrix(
    programs: list[str], victims: list[str], images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> tuple[list[list[float]], list[list[bool]]]:
    """`accuracy[i][j]`: program i through victim j; `own[i][j]`: whether victim j is the one program i was made for."""
    loaded = [load_program(p) for p in programs]
    frozen = [load_frozen_victim(v) for v in victims]
    accuracy = [[(classify(p, v, images, batch_size) == labels).float().mean().item() for v in frozen] for p in loaded]
    own = [[p.victim_sha256 == v.sha256 for v in frozen] for p in loaded]
    return accuracy, own


def heat_map(accuracy: list[list[float]], own: list[list[bool]], rows: list[str], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(names), 1.2 + 1.0 * len(accuracy)))
    ax.imshow(accuracy, vmin=0, vmax=1, cmap="viridis")
    for i, row in enumerate(accuracy):
        for j, a in enumerate(row):
            ax.text(
                j,
                i,
                f"{a:.1%}{' *' if own[i][j] else ''}",
                ha="center",
                va="center",
                color="black" if a > 0.6 else "white",
                fontsize=9,
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(accuracy)), [f"program of {r}" for r in rows])
    ax.set_xlabel("applied to victim")
    ax.set_title("target accuracy (* = its own victim)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str]) -> None:
    if help_asked(argv, __doc__):
        return
    try:
        settings = _settings(argv)
        programs, victims = (
            [settings[k]] if isinstance(settings[k], str) else list(settings[k]) for k in ("programs", "victims")
        )
        names = list(settings["names"] or [Path(v).parent.name or Path(v).stem for v in victims])
        if len(names) != len(victims):
            raise UserError(f"names= gives {len(names)} names for {len(victims)} victims")
        x, y = read_images(settings["images"], settings["data_dir"], settings["cache_dir"])
        if y is None:
            raise UserError(f"images={settings['images']} has no labels; transfer accuracy needs them")
        accuracy, own = transfer_matrix(programs, victims, x, y, int(settings["batch_size"]))
    except UserError as e:
        raise SystemExit(f"error: {e}") from None

    rows = [names[o.index(True)] if any(o) else Path(p).parent.name for o, p in zip(own, programs)]
    _print_table(accuracy, own, rows, names)
    out = Path(settings["out"])
    record = {"programs": programs, "victims": victims, "names": names, "accuracy": accuracy, "own": own}
    _write_json(out.with_suffix(".json"), {**record, "images": settings["images"], "n": len(y)})
    heat_map(accuracy, own, rows, names, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def _settings(argv: list[str]) -> dict[str, Any]:
    """The command line merged onto DEFAULTS and resolved; an unknown or bad setting is one line."""
    unknown = [a.split("=", 1)[0] for a in argv if a.split("=", 1)[0] not in DEFAULTS]
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r}; known: {', '.join(DEFAULTS)}")
    try:
        cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_dotlist(argv))
        settings = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except Exception as e:
        raise UserError(f"bad settings ({brief(e, 160)}); {USAGE}") from e
    assert isinstance(settings, dict)  # merged onto the DEFAULTS mapping
    return cast(dict[str, Any], settings)


def _print_table(accuracy: list[list[float]], own: list[list[bool]], rows: list[str], names: list[str]) -> None:
    """The matrix as a Markdown table, a program's own victim in bold."""
    print("| program of \\ applied to | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i, row in enumerate(accuracy):
        cells = [f"**{a:.2%}**" if own[i][j] else f"{a:.2%}" for j, a in enumerate(row)]
        print(f"| {rows[i]} | " + " | ".join(cells) + " |")


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
