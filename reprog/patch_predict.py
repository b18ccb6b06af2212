"""Stick a saved adversarial patch onto images and classify them through the victim it was made for.

    python -m reprog.patch_predict patch=<attack run>/patch.safetensors victim=<victim run>/victim.safetensors \
        images=cifar10   # the CIFAR-10 test set under data_dir; or an .npz with x uint8 (N, H, W, C), y optional

Settings (key=value): patch, victim, images (required); data_dir (env REPROG_DATA_DIR, default data), seed (0: the
placements, position, angle and size, drawn per image), batch_size (512), show (20: predictions printed).
A separate entry point from `reprog.predict`, which applies programs: a patch has no label map and reads images at
the victim's own size. Prints the predictions, the accuracy when labels are given, and how often the patch wins
(predictions of its target class among images of another class). A patch made for another victim is refused.
"""

import os
import sys

import torch

from reprog.attacks.patch import Patch, load_patch
from reprog.errors import UserError
from reprog.models.frozen import FrozenVictim, load_frozen_victim
from reprog.predict import help_asked, read_images

DEFAULTS = {  # "": not given
    "patch": "",
    "victim": "",
    "images": "",
    "data_dir": "",
    "seed": "0",
    "batch_size": "512",
    "show": "20",
}
USAGE = "usage: python -m reprog.patch_predict patch=P victim=V images=I"


def settings(argv: list[str]) -> dict[str, str]:
    cfg = dict(DEFAULTS)
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in DEFAULTS:
            raise UserError(f"argument {arg!r} is not one of {', '.join(f'{k}=' for k in DEFAULTS)}; {USAGE}")
        cfg[key] = value
    for key in ("patch", "victim", "images"):
        if not cfg[key]:
            raise UserError(f"{key}=... is required; {USAGE}")
    for key, low in (("seed", 0), ("batch_size", 1), ("show", 0)):
        if not cfg[key].isdigit() or int(cfg[key]) < low:
            raise UserError(f"{key}={cfg[key]} is not a whole number >= {low}")
    return cfg


def load(patch_path: str, victim_path: str) -> tuple[Patch, FrozenVictim]:
    """The patch and its victim, checked to belong together."""
    victim = load_frozen_victim(victim_path)
    patch = load_patch(patch_path, victim)
    made_for = patch.meta["victim"]["sha256"]
    if made_for != victim.sha256:
        raise UserError(
            f"patch {patch_path} was made for victim sha256 {str(made_for)[:12]}…, but {victim_path} is "
            f"{victim.sha256[:12]}…; pass the victim it was trained on"
        )
    return patch, victim


@torch.inference_mode()
def classify(
    patch: Patch, victim: FrozenVictim, images: torch.Tensor, seed: int = 0, batch_size: int = 512
) -> torch.Tensor:
    """Victim predictions for uint8 (N, C, H, W) images with the patch stuck on, at placements drawn from `seed`."""
    patch.generator = torch.Generator().manual_seed(seed)
    x = images.float() / 255
    if x.shape[1] == 1 and patch.image_shape[0] == 3:
        x = x.expand(-1, 3, -1, -1)
    return torch.cat([victim(patch.perturb(chunk, torch.empty(0))).argmax(1) for chunk in x.split(batch_size)])


def main(argv: list[str]) -> None:
    if help_asked(argv, __doc__):
        return
    try:
        cfg = settings(argv)
        patch, victim = load(cfg["patch"], cfg["victim"])
        data_dir = cfg["data_dir"] or os.environ.get("REPROG_DATA_DIR", "data")
        x, y = read_images(cfg["images"], data_dir)
        preds = classify(patch, victim, x, int(cfg["seed"]), int(cfg["batch_size"]))
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    show = int(cfg["show"])
    print("predictions:", " ".join(map(str, preds[:show].tolist())), "…" if len(preds) > show else "")
    if y is not None:
        print(f"accuracy: {(preds == y).float().mean().item():.4f} on {len(y)} images")
        target = patch.target
        if isinstance(target, int):  # a targeted patch: its class index
            other = y != target
            print(
                f"patch success: {(preds[other] == target).float().mean().item():.4f} "
                f"(class {target}, on {int(other.sum())} images of other classes)"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
