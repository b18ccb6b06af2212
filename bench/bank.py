"""Program banks against one program at a time: step throughput, and a whole sweep's wall time.

    python bench/bank.py throughput [--models resnet20 airbench] [--ks 1 2 4 8 12] [--batches 32 128]
    python bench/bank.py study --victim <victim run>/victim.safetensors [--train-batches 40]

`throughput`: one training step of K masked programs (each at its own digit size) through one frozen victim, as a
`ReprogramModule` of K members takes it: place, program, one victim pass of K x batch images, backward, Adam. Per
model and batch size: the median step time over `--repeats`, images/s per program, and the speed-up K x t(1) / t(K)
(JSON, and a PNG beside it).
`study`: `experiment=sweep_digit_size` (12 jobs) at a reduced budget, through Hydra's basic launcher and then as
banks (`hydra/launcher=bank`, once per `--caps` value of max_images), back to back: total wall time, and each job's
accuracies side by side.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprog.data.target_images import resize, to_canvas
from reprog.label_mapping import build_label_map
from reprog.models.frozen import load_frozen_victim
from reprog.placement import Placement
from reprog.program import build_program
from reprog.program.bank import ProgramBank

ROOT = Path(__file__).resolve().parents[1]
SIZES = (28, 24, 20, 14, 10, 7)  # the study's digit sizes, in turn
MODELS = {"resnet20": {"arch": "resnet20"}, "airbench": {"arch": "airbench", "whiten_eps": 5e-4}}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "callbacks.rich_progress_bar=null"]


def step_seconds(victim, k: int, batch: int, steps: int, repeats: int) -> float:
    """Median over `repeats` of the mean time of one bank training step (after one warm-up step)."""
    placements = [Placement(32, SIZES[i % len(SIZES)]) for i in range(k)]
    bank = ProgramBank(
        [build_program("masked", p) for p in placements], [build_label_map("first_k", 10, 10) for _ in placements]
    )
    optimizer = torch.optim.Adam(bank.parameters(), lr=0.05)
    x, y = torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (batch,))

    def step() -> None:
        canvases = [to_canvas(resize(x, p.size), p) for p in placements]
        loss = sum(F.cross_entropy(z, y) for z in bank(victim, canvases))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def throughput(args: argparse.Namespace) -> dict:
    rows = []
    for model in args.models:
        spec = {**MODELS[model], "num_classes": 10, "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}
        victim = load_frozen_victim(None, random_init=True, model=spec)  # speed does not depend on the weights
        for batch in args.batches:
            alone = None
            for k in args.ks:
                t = step_seconds(victim, k, batch, args.steps, args.repeats)
                alone = t if k == 1 else alone
                rows.append(
                    {
                        "model": model,
                        "batch": batch,
                        "programs": k,
                        "step_s": round(t, 4),
                        "images_per_s_per_program": round(batch / t, 1),
                        "speedup": round(k * alone / t, 3) if alone else None,
                    }
                )
                print(rows[-1], flush=True)
    return {"rows": rows, "threads": torch.get_num_threads()}


def plot(rows: list[dict], path: Path) -> None:
    """Speed-up K x t(1) / t(K) against K, one line per model and batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for model, batch in sorted({(r["model"], r["batch"]) for r in rows}):
        line = [(r["programs"], r["speedup"]) for r in rows if (r["model"], r["batch"]) == (model, batch)]
        ax.plot(*zip(*line), "o-", label=f"{model}, batch {batch}")
    ax.axhline(1, ls="--", c="grey", lw=1)
    ax.set(
        xlabel="programs in the bank (K)",
        ylabel="speed-up over K programs alone",
        title="program bank: one training step, CPU",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def study(args: argparse.Namespace) -> dict:
    out = Path(args.sweeps)
    common = [
        "train.py",
        "-m",
        "experiment=sweep_digit_size",
        f"victim.ckpt_path={args.victim}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={args.train_batches}",
        f"trainer.limit_val_batches={args.val_batches}",
        f"trainer.limit_test_batches={args.test_batches}",
        *QUIET,
    ]
    result = {"budget": common[3:]}
    variants = [("basic", [])] + [
        (f"bank_{cap}", ["hydra/launcher=bank", f"hydra.launcher.max_images={cap}"]) for cap in args.caps
    ]
    for name, extra in variants:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *common, *extra, f"hydra.sweep.dir={out / name}"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"the {name} sweep failed:\n{done.stderr[-3000:]}")
        result[f"{name}_wall_s"] = round(time.perf_counter() - start, 1)
        print(name, result[f"{name}_wall_s"], "s", flush=True)
    result["speedup"] = {name: round(result["basic_wall_s"] / result[f"{name}_wall_s"], 3) for name, _ in variants[1:]}
    jobs = {}
    for name, _ in variants:
        for summary in (json.loads(p.read_text()) for p in (out / name).glob("*/metrics.json")):
            key = " ".join(o for o in summary["overrides"] if o.startswith(("data.digit_size=", "optimizer.lr=")))
            jobs.setdefault(key, {})[name] = {m: summary["metrics"].get(m) for m in ("val/acc_best", "test/acc")}
    result["jobs"] = jobs
    result["max_test_acc_diff"] = {
        name: max(abs(j["basic"]["test/acc"] - j[name]["test/acc"]) for j in jobs.values()) for name, _ in variants[1:]
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    t.add_argument("--ks", nargs="+", type=int, default=[1, 2, 4, 8, 12])
    t.add_argument("--batches", nargs="+", type=int, default=[32, 128])
    t.add_argument("--steps", type=int, default=3)
    t.add_argument("--repeats", type=int, default=5)
    s = sub.add_parser("study")
    s.add_argument("--victim", required=True)
    s.add_argument("--train-batches", type=int, default=40)
    s.add_argument("--val-batches", type=int, default=2)
    s.add_argument("--test-batches", type=int, default=4)
    s.add_argument("--caps", nargs="+", type=int, default=[4096, 512], help="hydra.launcher.max_images per bank run")
    s.add_argument("--sweeps", default="outputs/multiruns/bank_bench")
    for p in (t, s):
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    result = {
        "part": args.part,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        **(throughput(args) if args.part == "throughput" else study(args)),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.part == "throughput":
        plot(result["rows"], Path(args.out).with_suffix(".png"))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
