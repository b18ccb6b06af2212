"""Our adversarial patch beside the adversarial-robustness-toolbox's (ART's `AdversarialPatchPyTorch`), on the same
victim, the same training images, the same patch size, shape, EOT ranges, optimiser, learning rate, batch and
epochs, timed in the same process one after the other, and scored the same way: pasted onto the same held-out test
images at the same seeded random placements (`reprog.transforms.paste`), success = the target class reached, over
test images of another class that the victim gets right (`test/patch/success` of `task=attack`). ART's patch is also
scored with ART's own `apply_patch` (its own random placements, at the nominal size) for reference.

ART is not a dependency of reprog; this script needs it installed (`pip install -c constraints.txt
adversarial-robustness-toolbox`, or the `art` extra).

    python bench/art_patch.py --victim outputs/phys/victim/victim.safetensors --size 10 --fit 1000 --epochs 2 \
        --test 500 --out docs/bench/art_patch_cpu.json
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from reprog.attacks.patch import Patch
from reprog.models.frozen import load_frozen_victim
from reprog.transforms import patch_side, shape_mask

ROOT = Path(__file__).resolve().parents[1]


def arrays(path: Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `n` images (N, 3, H, W) in [0, 1] and labels of an array data set (.npz: x uint8 NHWC, y)."""
    with np.load(path) as f:
        x, y = f["x"][:n], f["y"][:n]
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(y).long()


@torch.no_grad()
def success(victim: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, patched: torch.Tensor, target: int) -> dict:
    """Targeted success over images of another class the victim gets right, as `task=attack` counts it."""
    clean = torch.cat([victim(c).argmax(1) for c in x.split(250)])
    pred = torch.cat([victim(c).argmax(1) for c in patched.split(250)])
    counted = (clean == y) & (y != target)
    return {
        "success": float((pred[counted] == target).float().mean()),
        "counted_images": int(counted.sum()),
        "clean_acc": float((clean == y).float().mean()),
    }


def ours_placed(patch: torch.Tensor, like: Patch, x: torch.Tensor, seed: int) -> torch.Tensor:
    """`x` with `patch` pasted at the placements drawn from `seed`: the same for every patch scored."""
    like.patch, like.generator = patch, torch.Generator().manual_seed(seed)
    return torch.cat([like.perturb(c, torch.empty(0)) for c in x.split(250)])


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", required=True)
    parser.add_argument("--data", default=os.environ.get("REPROG_DATA_DIR", "data") + "/cifar10")
    parser.add_argument("--size", type=float, default=10.0, help="percent of the image area")
    parser.add_argument("--target", type=int, default=0)
    parser.add_argument("--fit", type=int, default=1000, help="training images the patches learn on")
    parser.add_argument("--test", type=int, default=500, help="held-out test images they are scored on")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--degrees", type=float, default=22.5)
    parser.add_argument("--scale", type=float, nargs=2, default=[0.8, 1.2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/bench/art_patch_cpu.json")
    args = parser.parse_args(given)

    import art
    from art.attacks.evasion import AdversarialPatchPyTorch
    from art.estimators.classification import PyTorchClassifier

    victim = load_frozen_victim(args.victim)
    x_fit, y_fit = arrays(Path(args.data) / "train.npz", args.fit)
    x_test, y_test = arrays(Path(args.data) / "test.npz", args.test)
    _, h, w = x_fit.shape[1:]
    side = patch_side(args.size, h, w)
    settings = dict(
        target=args.target,
        size=args.size,
        shape="square",
        degrees=args.degrees,
        scale=tuple(args.scale),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch,
    )

    torch.manual_seed(args.seed)
    ours = Patch(victim, seed=args.seed, **settings)
    t = time.perf_counter()
    ours.fit(x_fit, y_fit)
    ours_s = time.perf_counter() - t

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    classifier = PyTorchClassifier(
        model=victim,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(3, h, w),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = AdversarialPatchPyTorch(
        classifier,
        rotation_max=args.degrees,
        scale_min=args.scale[0] * side / min(h, w),  # ART's scale: the patch's side over the image's
        scale_max=args.scale[1] * side / min(h, w),
        learning_rate=args.lr,
        max_iter=args.epochs,  # ART's iterations are passes over the images, as our epochs are
        batch_size=args.batch,
        patch_shape=(3, side, side),
        patch_type="square",
        optimizer="Adam",
        targeted=True,
        verbose=False,
    )
    goals = np.eye(10, dtype=np.float32)[np.full(len(x_fit), args.target)]
    t = time.perf_counter()
    art_patch, _ = attack.generate(x=x_fit.numpy(), y=goals)
    art_s = time.perf_counter() - t
    art_patch_t = torch.from_numpy(art_patch).float()

    scorer = Patch(victim, seed=args.seed, **settings)
    scorer.mask, scorer.image_shape = shape_mask(side, "square"), (3, h, w)
    placement_seed = args.seed + 1
    rows = {
        "ours": {
            "fit_s": round(ours_s, 1),
            **success(victim, x_test, y_test, ours_placed(ours.patch, scorer, x_test, placement_seed), args.target),
        },
        "art": {
            "fit_s": round(art_s, 1),
            **success(victim, x_test, y_test, ours_placed(art_patch_t, scorer, x_test, placement_seed), args.target),
        },
    }
    np.random.seed(placement_seed)
    art_placed = torch.from_numpy(attack.apply_patch(x_test.numpy(), scale=side / min(h, w))).float()
    rows["art"]["success_art_placements"] = success(victim, x_test, y_test, art_placed, args.target)["success"]
    record = {
        "what": f"targeted patch (class {args.target}), {args.size:g} % of the area ({side} px square), ours against "
        f"ART {art.__version__} AdversarialPatchPyTorch",
        "victim": args.victim,
        "settings": {**settings, "scale": list(args.scale), "fit_images": args.fit, "test_images": args.test},
        "side_px": side,
        "threads": torch.get_num_threads(),
        "device": f"CPU, {os.cpu_count()} cores, {platform.machine()}",
        "art_version": art.__version__,
        "rows": rows,
        "ours_success_at_least_art": rows["ours"]["success"] >= rows["art"]["success"],
        "ours_faster": ours_s < art_s,
        "command": "python bench/art_patch.py " + shlex.join(given),
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
