"""channels_last against the default NCHW layout: a full training step and an input-gradient-only step.

The input-gradient step is what a program step and an attack step cost (frozen weights). Same
network, same weights and batch; layouts alternate within each repeat, medians are quoted.

    python bench/memory_format.py [--models resnet20 resnet18 airbench] [--batch 128] [--device cpu|cuda]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprog.host_memory import keep_freed_host_memory
from reprog.models import build_model

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def timed(step, steps: int, batch: int, device: torch.device, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def steps_for(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        loss = F.cross_entropy(model.train()(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def input_grad_step() -> None:
        model.eval().requires_grad_(False)
        xr = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xr), y), xr)
        model.requires_grad_(True)

    return {"training": train_step, "input gradient": input_grad_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet18", "airbench"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory_format.json"))
    args = parser.parse_args()
    keep_freed_host_memory()  # as train.py runs (keep_freed_host_memory=true)
    device = torch.device(args.device)
    x, y = torch.rand(args.batch, 3, 32, 32, device=device), torch.randint(0, 10, (args.batch,), device=device)

    print("| model | step | NCHW images/s | channels_last images/s | speed-up |\n|---|---|---|---|---|", flush=True)
    results = []
    for name in args.models:
        torch.manual_seed(0)
        nets = {"nchw": build_model(name, 10, MEAN, STD).to(device)}
        torch.manual_seed(0)
        nets["channels_last"] = build_model(name, 10, MEAN, STD, channels_last=True).to(device)
        steps = {layout: steps_for(net, x, y) for layout, net in nets.items()}
        for kind in ("training", "input gradient"):
            runs = {layout: [] for layout in nets}
            for _ in range(args.repeats):
                for layout in nets:
                    runs[layout].append(timed(steps[layout][kind], args.steps, args.batch, device))
            median = {k: statistics.median(v) for k, v in runs.items()}
            ratio = median["channels_last"] / median["nchw"]
            results.append({"model": name, "step": kind, "images_per_s": runs, "median": median, "speedup": ratio})
            print(
                f"| {name} | {kind} | {median['nchw']:.0f} | {median['channels_last']:.0f} | {ratio:.2f}x |", flush=True
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"device": str(device), "batch": args.batch, "threads": torch.get_num_threads(), "results": results},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
