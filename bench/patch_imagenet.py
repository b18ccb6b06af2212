"""Brown et al.'s setting for the adversarial patch: an ImageNet victim (the offline EfficientNet-Lite0) and a
targeted patch (their toaster, class 859) against patch size, beside a random patch of the same size (occlusion
alone). No ImageNet images ship offline, so the scenes are CIFAR-10 images resized to the canvas: the victim's own
clean answer is the label, and success counts, over test images the victim does not already call the target, how
often the patched image is called the target, at the same seeded random placements for every patch.

    python bench/patch_imagenet.py --canvas 128 --sizes 2 5 10 --fit 2000 --epochs 4 --test 500 \
        --out docs/bench/patch_imagenet_cpu.json
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from art_patch import arrays  # the same array-file reader as the ART comparison
from omegaconf import OmegaConf

from reprog.attacks.patch import Patch
from reprog.models.class_names import victim_class_names
from reprog.models.frozen import load_frozen_victim

ROOT = Path(__file__).resolve().parents[1]
VICTIM = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model/efficientnet_lite0.yaml"))  # model=efficientnet_lite0


@torch.no_grad()
def predict(victim: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([victim(c).argmax(1) for c in x.split(100)])


def scenes(path: Path, n: int, canvas: int) -> torch.Tensor:
    x, _ = arrays(path, n)
    return F.interpolate(x, size=(canvas, canvas), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def score(victim: torch.nn.Module, placer: Patch, patch: torch.Tensor, x: torch.Tensor, clean: torch.Tensor) -> dict:
    """Targeted success at the placements of the placer's seed, over images not already of the target class."""
    placer.patch, placer.generator = patch, torch.Generator().manual_seed(placer.generator.initial_seed())
    pred = torch.cat([predict(victim, placer.perturb(c, torch.empty(0))) for c in x.split(100)])
    counted = clean != placer.target
    return {
        "success": float((pred[counted] == placer.target).float().mean()),
        "changed": float((pred != clean).float().mean()),
        "counted_images": int(counted.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("REPROG_DATA_DIR", "data") + "/cifar10")
    parser.add_argument("--canvas", type=int, default=128, help="side the scenes are resized to")
    parser.add_argument("--sizes", type=float, nargs="+", default=[10.0], help="percent of the image area")
    parser.add_argument("--target", type=int, default=859, help="ImageNet class (859: toaster)")
    parser.add_argument("--fit", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/bench/patch_imagenet_cpu.json")
    args = parser.parse_args(given)

    victim = load_frozen_victim(None, model=VICTIM)
    names = victim_class_names(VICTIM)
    x_fit = scenes(Path(args.data) / "train.npz", args.fit, args.canvas)
    x_test = scenes(Path(args.data) / "test.npz", args.test, args.canvas)
    y_fit, clean = predict(victim, x_fit), predict(victim, x_test)
    rows = []
    for size in args.sizes:
        settings = dict(target=args.target, size=size, epochs=args.epochs, lr=args.lr, batch_size=args.batch)
        torch.manual_seed(args.seed)
        patch = Patch(victim, seed=args.seed, **settings)
        t = time.perf_counter()
        patch.fit(x_fit, y_fit)
        fit_s = time.perf_counter() - t
        assert patch.patch is not None
        placer = Patch(victim, seed=args.seed + 1, **settings)
        placer.mask, placer.image_shape = patch.mask, patch.image_shape
        noise = torch.rand(patch.patch.shape, generator=torch.Generator().manual_seed(args.seed))
        rows.append(
            {
                "size_percent": size,
                "side_px": patch.patch.shape[-1],
                "fit_steps": len(patch.curve),
                "fit_s": round(fit_s, 1),
                "images_per_s": round(args.epochs * args.fit / fit_s, 1),
                "fit_success_last": patch.curve[-1]["success"],
                "patch": score(victim, placer, patch.patch, x_test, clean),
                "random_patch": score(victim, placer, noise, x_test, clean),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "what": f"targeted patch ({names[args.target]}, ImageNet class {args.target}) against patch size through the "
        f"pretrained EfficientNet-Lite0, on CIFAR-10 images resized to {args.canvas} px",
        "settings": {
            "canvas": args.canvas,
            "fit_images": args.fit,
            "test_images": args.test,
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.batch,
            "degrees": 22.5,
            "scale": [0.8, 1.2],
        },
        "target_before": float((clean == args.target).float().mean()),
        "threads": torch.get_num_threads(),
        "device": f"CPU, {os.cpu_count()} cores, {platform.machine()}",
        "rows": rows,
        "command": "python bench/patch_imagenet.py " + shlex.join(given),
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
