"""airbench94's own training code beside `train.py experiment=victim_airbench`, on the same data and device.

The reference is the `airbench` package (Keller Jordan's airbench94, MIT): its loader, network, optimizer,
lookahead, whitening init and TTA run unmodified. On a CPU four shims stand in for CUDA: a wall-clock
`torch.cuda.Event`, a no-op `synchronize`, loaders on the CPU, and float32 where it casts to float16 (CPUs
have no fast fp16 convolutions). Both models are then scored on the lossless test images and on their
JPEG copies, so the cost of the lossy pixels at test time is measured, not guessed. Neither run is warmed up
first (airbench's published GPU times are: on a GPU, expect its first run to be slower). Prints a table and
writes JSON.

    python bench/airbench_reference.py                      # the reference, then ours (~80 min on 2 CPU cores)
    python bench/airbench_reference.py --ours-args trainer=gpu
    python bench/airbench_reference.py --ours-run <finished run>   # score an earlier run of ours instead
"""

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import airbench
import numpy as np
import torch
from airbench.utils import CIFAR_MEAN, CIFAR_STD, CifarLoader
from torchvision.transforms import Normalize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reprog.data.arrays import load_arrays  # noqa: E402
from reprog.data.cifar10 import CLASSES  # noqa: E402
from reprog.host_memory import keep_freed_host_memory  # noqa: E402
from reprog.models.export import load_victim  # noqa: E402
from reprog.models.tta import tta_logits  # noqa: E402

airbench_normalize = Normalize(CIFAR_MEAN, CIFAR_STD)  # the reference's inputs are normalized outside the net


def write_airbench_data(data_dir: Path, work: Path) -> None:
    """Our array files in airbench's format: `cifar10/{train,test}.pt` under the working folder."""
    (work / "cifar10").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x, y = load_arrays(data_dir / "cifar10" / f"{split}.npz")
        data = {"images": x.permute(0, 2, 3, 1).contiguous(), "labels": y, "classes": list(CLASSES)}  # NHWC
        torch.save(data, work / "cifar10" / f"{split}.pt")


class WallClockEvent:
    """`torch.cuda.Event` for the CPU: airbench times each epoch with a pair of them."""

    def __init__(self, enable_timing: bool = True):
        self.t = 0.0

    def record(self) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: "WallClockEvent") -> float:
        return (end.t - self.t) * 1e3


@contextlib.contextmanager
def on_cpu() -> Iterator[Callable[..., torch.nn.Module]]:
    """Run airbench's CUDA code on the CPU in float32; yields the `make_net` to give `train94`."""
    init, make_net = CifarLoader.__init__, airbench.lib_airbench94.make_net94

    def cpu_loader(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "gpu": "cpu"})
        self.images = self.images.float()

    def cpu_net(*args, **kwargs):
        with (
            mock.patch.object(torch.nn.Module, "half", lambda m: m),
            mock.patch.object(torch.nn.Module, "cuda", lambda m, *a, **k: m),
        ):
            return make_net(*args, **kwargs)

    with (
        mock.patch.object(torch.cuda, "Event", WallClockEvent),
        mock.patch.object(torch.cuda, "synchronize"),
        mock.patch.object(CifarLoader, "__init__", cpu_loader),
    ):
        yield cpu_net


def parse_airbench_table(printed: str) -> dict:
    """Per-epoch (train seconds, test acc without TTA) and the final TTA accuracy from airbench's table."""
    epochs, tta = [], None
    for line in printed.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not re.fullmatch(r"\d+|eval", cells[1]):
            continue
        if cells[1] == "eval":
            tta = float(cells[5])
        else:
            epochs.append((float(cells[6]), float(cells[4])))
    return {"epochs": epochs, "train_s": epochs[-1][0], "test_acc": tta}


class Tee(io.TextIOBase):
    """Prints and keeps a copy: airbench reports its results only in its printed table."""

    def __init__(self, copy: io.StringIO):
        self.copy, self.out = copy, sys.stdout

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.out.write(s)


def train_reference(device: str, epochs: float) -> tuple[torch.nn.Module, dict]:
    """airbench.train94 on ./cifar10; returns the trained net and its per-epoch table."""
    printed = io.StringIO()
    with contextlib.ExitStack() as stack:
        make_net = stack.enter_context(on_cpu()) if device == "cpu" else airbench.make_net94
        stack.enter_context(contextlib.redirect_stdout(Tee(printed)))
        model = airbench.train94(epochs=epochs, make_net=make_net)
    return model, parse_airbench_table(printed.getvalue())


def train_ours(run_dir: Path, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "train.py",
        "experiment=victim_airbench",
        "data.val_size=0",  # airbench's protocol
        "callbacks.model_checkpoint.monitor=null",
        "trainer.enable_progress_bar=false",
        *extra,
        f"hydra.run.dir={run_dir}",
    ]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return summary_of_ours(run_dir)


def summary_of_ours(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "command": "python train.py " + " ".join(metrics["overrides"]),
        "run": str(run_dir),
        "train_s": metrics["metrics"]["time/train_s"],
        "test_acc": metrics["metrics"]["test/acc"],
    }


@torch.no_grad()
def lossless_check(
    model: torch.nn.Module, inputs: Callable[[torch.Tensor], torch.Tensor], data_dir: Path, device: str
) -> dict:
    """TTA accuracy on the lossless test images and on the JPEG copies of the same images.

    `inputs` maps [0, 1] pixels to what the model takes (airbench normalizes outside its net; ours inside).
    """
    lossless, y = load_arrays(data_dir / "cifar10" / "test_lossless_subset.npz")
    with np.load(data_dir / "cifar10" / "test_lossless_subset.npz") as f:
        index = torch.from_numpy(f["index"])
    jpeg = load_arrays(data_dir / "cifar10" / "test.npz")[0][index]
    model.eval()
    acc = {}
    for name, x in (("lossless", lossless), ("jpeg", jpeg)):
        x = inputs(x.float().div(255).to(device))
        acc[name] = (tta_logits(model, x, level=2).argmax(1).cpu() == y).float().mean().item()
    return {"images": len(y), **acc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours-args", nargs="*", default=[], help="more train.py overrides for our run")
    parser.add_argument("--ours-run", help="a finished `experiment=victim_airbench data.val_size=0` run to score")
    parser.add_argument("--epochs", type=float, default=9.9, help="the reference's epochs (airbench94: 9.9)")
    parser.add_argument("--work", default=str(ROOT / "outputs" / "bench" / time.strftime("airbench_ref_%Y%m%d_%H%M%S")))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "airbench_reference.json"))
    args = parser.parse_args()
    keep_freed_host_memory()  # the reference gets the allocator tuning that train.py gives ours
    data_dir = Path(os.environ.get("REPROG_DATA_DIR", ROOT / "data"))
    work, out = Path(args.work).resolve(), Path(args.out).resolve()
    ours_run = Path(args.ours_run).resolve() if args.ours_run else None
    device = "cuda" if torch.cuda.is_available() else "cpu"

    write_airbench_data(data_dir, work)
    os.chdir(work)  # airbench reads ./cifar10
    ref_model, reference = train_reference(device, args.epochs)
    dtype = next(ref_model.parameters()).dtype  # float16 on a GPU, as airbench trains it
    normalize = lambda x: airbench_normalize(x).to(dtype)  # noqa: E731
    reference["lossless_check"] = lossless_check(ref_model, normalize, data_dir, device)

    ours = summary_of_ours(ours_run) if ours_run else train_ours(work / "ours", args.ours_args)
    our_model, _ = load_victim(Path(ours["run"]) / "victim.safetensors")
    ours["lossless_check"] = lossless_check(our_model.to(device), lambda x: x, data_dir, device)

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"\n{name}, JPEG CIFAR-10 ({data_dir}); training seconds, evaluation left out\n")
    print("| run | training s | test acc (TTA) | lossless subset | its JPEG copies |\n|---|---|---|---|---|")
    for label, r in (("airbench94 (airbench package)", reference), ("ours: experiment=victim_airbench", ours)):
        c = r["lossless_check"]
        print(f"| {label} | {r['train_s']:.1f} | {r['test_acc']:.2%} | {c['lossless']:.2%} | {c['jpeg']:.2%} |")
    print(f"ours / reference training time: {ours['train_s'] / reference['train_s']:.2f}×")
    results = {
        "device": name,
        "reference": reference,
        "ours": ours,
        "time_ratio_ours_over_reference": ours["train_s"] / reference["train_s"],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
