"""The defender's view: a stateful detector (Chen et al., 2020) against benign CIFAR-10 traffic, zeroth-order
reprogramming queries and the substitute attack's queries.

The threshold is calibrated on the first half of the CIFAR-10 test set for a target false-positive rate and
measured on the second half. Each attack stream then starts from an empty memory, as a new user would.

    python bench/detection.py --victim <victim run>/victim.safetensors [--steps 100] \
        [--out bench/results/detection.json]
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprog.attacks.black_box import BlackBoxVictim
from reprog.attacks.substitute import SubstituteAttack
from reprog.data.cifar10 import CIFAR10DataModule
from reprog.data.mnist import PaddedMNISTDataModule
from reprog.detectors import StatefulDetector
from reprog.label_mapping import build_label_map
from reprog.models.frozen import load_frozen_victim
from reprog.program import build_program

ROOT = Path(__file__).resolve().parents[1]
SUBSTITUTE = {"arch": "resnet20", "num_classes": 10, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}


def images(datamodule, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return datamodule.preprocess(datamodule.load_split(train=train), train=False)


def reprogramming_traffic(victim, detector: StatefulDetector, data_dir: str, steps: int, batch: int, q: int) -> dict:
    """`steps` zeroth-order steps of the scale program with a linear map (the black-box recipe), detector watching."""
    mnist = PaddedMNISTDataModule(data_dir, download=False, digit_size=32)
    x, y = images(mnist, train=True)
    box = BlackBoxVictim(victim, "score", q=q).train()
    box.oracle.detector = detector
    program = build_program("scale", mnist.placement, scale="pixel")
    label_map = build_label_map("linear", 10, 10)
    optimizer = torch.optim.Adam([*program.parameters(), *label_map.parameters()], lr=0.05)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        i = order[step * batch : (step + 1) * batch]
        loss = F.cross_entropy(label_map(box.answer(program, x[i])), y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {**detector.stats(), "steps": steps, "queries_per_step": batch * box.estimator.batches}


def substitute_traffic(victim, detector: StatefulDetector, seeds: torch.Tensor) -> dict:
    """Papernot et al.'s substitute training: seed images, then Jacobian-augmented rounds, detector watching."""
    attack = SubstituteAttack(victim, SUBSTITUTE, seed_size=len(seeds), rounds=2, epochs=2, lam=0.1)
    attack.oracle.detector = detector
    attack.fit(seeds)
    return detector.stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", required=True)
    parser.add_argument("--data-dir", default=os.environ.get("REPROG_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--fpr", type=float, default=0.001, help="target false-positive rate on benign traffic")
    parser.add_argument("--steps", type=int, default=100, help="zeroth-order steps of reprogramming traffic")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--q", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1000, help="substitute attack: seed images (then 2 rounds)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "detection.json"))
    args = parser.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    victim = load_frozen_victim(args.victim)
    cifar = CIFAR10DataModule(args.data_dir, download=False)
    benign, _ = images(cifar, train=False)
    half = len(benign) // 2
    detector = StatefulDetector(k=args.k)
    threshold = detector.calibrate(benign[:half], args.fpr)
    detector(benign[half:])
    rows = {"benign CIFAR-10 test images (held-out half)": detector.stats()}
    detector.reset()
    rows["zeroth-order reprogramming (MNIST, scale + linear)"] = reprogramming_traffic(
        victim, detector, args.data_dir, args.steps, args.batch, args.q
    )
    detector.reset()
    train_images, _ = images(cifar, train=True)
    rows["substitute attack (Papernot et al.)"] = substitute_traffic(victim, detector, train_images[: args.seeds])

    print(f"threshold {threshold:.4f} (k={args.k}, target false-positive rate {args.fpr:.2%})")
    print("| traffic | queries | flagged | rate | queries before the first flag |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['queries']:,} | {r['flagged']:,} | {r['flag_rate']:.2%} | {r['first_flag']} |")
    result = {
        "threshold": threshold,
        "k": args.k,
        "fpr_target": args.fpr,
        "victim": args.victim,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
