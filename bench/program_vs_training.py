"""Program steps against full victim training steps: same model, same batch, images/s.

A program step runs the frozen victim forward and backward, but autograd computes only input
gradients (the victim's parameters have requires_grad=False), and the optimizer touches only W.

    python bench/program_vs_training.py [--model resnet20] [--batch 128] [--steps 20] [--repeats 5]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprog.label_mapping import FirstK
from reprog.models import build_model
from reprog.models.frozen import FrozenVictim
from reprog.placement import Placement
from reprog.program import AdversarialProgram

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def timed(step, steps: int, batch: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--digit-size", type=int, default=28)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "program_vs_training.json"))
    args = parser.parse_args()
    torch.manual_seed(0)

    spec = {"arch": args.model, "num_classes": 10, "mean": MEAN, "std": STD}
    net = build_model(**spec).train()
    sgd = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images, labels = torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))

    def train_step() -> None:
        loss = F.cross_entropy(net(images), labels)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    placement = Placement(32, args.digit_size)
    victim, program, label_map = FrozenVictim(build_model(**spec), spec), AdversarialProgram(placement), FirstK(10, 10)
    adam = torch.optim.Adam(program.parameters(), lr=0.05)
    digits = placement.place(torch.rand(args.batch, 3, args.digit_size, args.digit_size))

    def program_step() -> None:
        loss = F.cross_entropy(label_map(victim(program(digits))), labels) + 1e-6 * program.regularizer()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()

    runs = {"training": [], "program": []}
    for _ in range(args.repeats):  # alternate, so drift on a noisy machine hits both alike
        runs["training"].append(timed(train_step, args.steps, args.batch))
        runs["program"].append(timed(program_step, args.steps, args.batch))
    median = {k: statistics.median(v) for k, v in runs.items()}
    ratio = median["program"] / median["training"]
    print(f"| step | images/s (median of {args.repeats}) |\n|---|---|")
    for k in runs:
        print(f"| {k} | {median[k]:.0f} |")
    print(f"\nprogram / training = {ratio:.2f}x  ({args.model}, batch {args.batch}, {torch.get_num_threads()} threads)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "batch": args.batch, "images_per_s": runs,
                                          "median": median, "ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
