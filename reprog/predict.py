"""Classify images through a victim with a learned program.

    python -m reprog.predict program=<run>/program.safetensors victim=<victim run>/victim.safetensors \
        images=digits.npz          # an array .npz: x uint8 (N, H, W[, 1]), y optional
    python -m reprog.predict program=... victim=... images=mnist   # MNIST test set under paths.data_dir

Prints the accuracy (when labels are given) and the first predictions. A program made for another
victim is refused: its metadata holds the sha256 of the victim it was trained on.
"""

import sys

import numpy as np
import torch
from omegaconf import OmegaConf

from reprog.data.arrays import load_arrays
from reprog.data.mnist import PaddedMNISTDataModule
from reprog.data.target_images import resize, to_canvas
from reprog.errors import UserError, brief
from reprog.models.frozen import load_frozen_victim
from reprog.program_io import load_program

DEFAULTS = {"program": "???", "victim": "???", "images": "???", "data_dir": "${oc.env:REPROG_DATA_DIR,data}",
            "batch_size": 512, "show": 20}


def read_images(images: str, data_dir: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Grey images as uint8 (N, 1, H, W) and labels if present."""
    if images == "mnist":
        return PaddedMNISTDataModule(data_dir, download=False).raw_split(train=False)
    try:
        with np.load(images, allow_pickle=False) as f:
            x, y = f["x"], (f["y"] if "y" in f.files else None)
    except Exception as e:
        raise UserError(f"cannot read images {images} ({brief(e)}); give an .npz with x uint8 "
                        "(N, H, W) or (N, H, W, 1) and optional labels y, or images=mnist") from e
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 1):
        raise UserError(f"images {images}: x is {x.dtype} {x.shape}; expected uint8 (N, H, W) or (N, H, W, 1)")
    x = torch.from_numpy(x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]).copy())
    return x, (torch.from_numpy(y.astype(np.int64)) if y is not None else None)


@torch.inference_mode()
def predict(program_path: str, victim_path: str, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Target-class predictions for uint8 (N, 1, H, W) images."""
    loaded = load_program(program_path)
    victim = load_frozen_victim(victim_path)
    if victim.sha256 != loaded.victim_sha256:
        raise UserError(f"program {program_path} was made for victim sha256 {loaded.victim_sha256[:12]}…, but "
                        f"{victim_path} is {victim.sha256[:12]}…; pass the victim it was trained on")
    placement, channels = loaded.program.placement, loaded.program.channels
    images = resize(images, placement.size)
    preds = [loaded.label_map(victim(loaded.program(to_canvas(chunk, placement, channels)))).argmax(1)
             for chunk in images.split(batch_size)]
    return torch.cat(preds)


def main(argv: list[str]) -> None:
    try:
        cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_dotlist(argv))
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise UserError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        for key in ("program", "victim", "images"):
            if OmegaConf.is_missing(cfg, key):
                raise UserError(f"{key}=... is required; usage: python -m reprog.predict program=P victim=V images=I")
        x, y = read_images(cfg.images, cfg.data_dir)
        preds = predict(cfg.program, cfg.victim, x, cfg.batch_size)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print("predictions:", " ".join(map(str, preds[: cfg.show].tolist())), "…" if len(preds) > cfg.show else "")
    if y is not None:
        print(f"accuracy: {(preds == y).float().mean().item():.4f} on {len(y)} images")


if __name__ == "__main__":
    main(sys.argv[1:])
