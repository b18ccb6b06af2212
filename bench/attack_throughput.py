"""PGD-10 throughput against torchattacks' PGD: same model, same batch, same settings, images/s.

Both run on the plain eval-mode victim (the same computation); ours also runs on the `FrozenVictim`
that `task=attack` uses (BatchNorm folded into the convolutions). Runs alternate, medians are quoted.

    python bench/attack_throughput.py [--victim outputs/runs/<victim>/victim.safetensors] [--batch 256]
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torchattacks

from reprog.attacks import PGD
from reprog.host_memory import keep_freed_host_memory
from reprog.models import build_model
from reprog.models.export import load_victim
from reprog.models.frozen import FrozenVictim

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def timed(attack, images: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        attack(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        attack(images, labels)
    return steps * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", default=None, help="victim.safetensors (default: a random resnet20)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "attack_throughput.json"))
    args = parser.parse_args()
    keep_freed_host_memory()  # as train.py runs (keep_freed_host_memory=true): both attacks share it
    torch.manual_seed(0)
    if args.victim:
        model, spec = load_victim(args.victim)
    else:
        spec = {"arch": "resnet20", "num_classes": 10, "mean": MEAN, "std": STD}
        model = build_model(**spec)
    model.eval()
    frozen = FrozenVictim(copy.deepcopy(model), spec)
    images, labels = torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    settings = dict(eps=8 / 255, alpha=2 / 255, steps=10)
    attacks = {
        "torchattacks PGD": torchattacks.PGD(model, random_start=True, **settings),
        "reprog PGD": PGD(model, random_start=True, **settings),
        "reprog PGD, frozen victim": PGD(frozen, random_start=True, **settings),
    }
    runs = {name: [] for name in attacks}
    for _ in range(args.repeats):  # alternate, so drift on a noisy machine hits all alike
        for name, attack in attacks.items():
            runs[name].append(timed(attack, images, labels, args.calls))
    median = {k: statistics.median(v) for k, v in runs.items()}
    base = median["torchattacks PGD"]
    print(f"| attack (PGD-10, eps 8/255, batch {args.batch}) | images/s (median of {args.repeats}) | vs torchattacks |")
    print("|---|---|---|")
    for k, v in median.items():
        print(f"| {k} | {v:.0f} | {v / base:.2f}x |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "images_per_s": runs,
                "median": median,
                "ratio": {k: v / base for k, v in median.items()},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
