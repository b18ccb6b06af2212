"""Time-to-accuracy: train the airbench-class victim on paths.data_dir, then reprogram it for MNIST.

Both run through `python train.py` exactly as a user runs them. Accuracy after each epoch is read
with the training time logged beside it (`time/train_s`, validation left out), from the runs'
TensorBoard events. Prints a table and writes JSON.

    python bench/time_to_accuracy.py [--victim-args trainer=gpu ...] [--program-args trainer.max_epochs=3 ...]
    python bench/time_to_accuracy.py --runs <earlier runs> --reuse-victim --program reprogram_mnist_scale
    python bench/time_to_accuracy.py --plot-only   # redraw the figure from the JSON
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"


def curve(run: Path) -> dict:
    """Per-epoch (train seconds, val/acc) and the final test/acc of a finished run."""
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    scalar = lambda tag: {e.step: e.value for e in events.Scalars(tag) if e.step > 0}  # noqa: E731 (0: HParams)
    seconds, acc = scalar("time/train_s"), scalar("val/acc")
    points = [(round(seconds[s], 2), round(acc[s], 4)) for s in sorted(acc) if s in seconds]
    metrics = json.loads((run / "metrics.json").read_text())
    return {"epochs": points, "test_acc": metrics["metrics"].get("test/acc"), "wall_time_s": metrics["wall_time_s"]}


def plot(results: dict, path: Path) -> None:
    """Validation accuracy against training seconds, one panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (key, title, target) in zip(
        axes, (("victim", "airbench-class victim, CIFAR-10", 0.93), ("program", "MNIST program through it", 0.95))
    ):
        if key == "program":
            title += f" ({results.get('program_experiment', 'reprogram_mnist')})"
        seconds, acc = zip(*results[key]["epochs"])
        ax.plot(seconds, [a * 100 for a in acc], "o-")
        ax.axhline(target * 100, ls="--", c="grey", lw=1, label=f"GPU target {target:.0%}")
        ax.set(title=title, xlabel="training seconds", ylabel="val accuracy (%)")
        ax.legend(loc="best")
    fig.suptitle(f"time-to-accuracy on {results['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    return next((s for s, a in points if a >= target), None)


def run(overrides: list[str], run_dir: Path) -> dict:
    cmd = [sys.executable, "train.py", *overrides, "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return {"command": "python " + " ".join(cmd[1:]), **curve(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim-args", nargs="*", default=[])
    parser.add_argument("--program-args", nargs="*", default=[])
    parser.add_argument("--runs", default=str(ROOT / "outputs" / "bench" / time.strftime("tta_%Y%m%d_%H%M%S")))
    parser.add_argument("--out", default=str(OUT / "time_to_accuracy.json"))
    parser.add_argument("--program", default="reprogram_mnist", help="the reprogramming experiment")
    parser.add_argument("--reuse-victim", action="store_true", help="keep the finished victim run in --runs")
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    if args.plot_only:
        plot(json.loads(out.read_text()), out.with_suffix(".png"))
        return

    victim_dir = runs / "victim"
    if args.reuse_victim:
        config = (victim_dir / ".hydra" / "overrides.yaml").read_text()
        victim = {
            "command": "python train.py " + " ".join(line[2:] for line in config.splitlines()),
            **curve(victim_dir),
        }
    else:
        victim = run(["experiment=victim_airbench", *args.victim_args], victim_dir)
    program = run(
        [f"experiment={args.program}", f"victim.ckpt_path={victim_dir / 'victim.safetensors'}", *args.program_args],
        runs / args.program,
    )
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\n{device}; train seconds exclude validation\n")
    print("| run | epoch | train s | val acc |\n|---|---|---|---|")
    for name, r in (("victim (airbench, CIFAR-10)", victim), ("program (MNIST)", program)):
        for epoch, (s, a) in enumerate(r["epochs"], 1):
            print(f"| {name} | {epoch} | {s:.1f} | {a:.2%} |")
    for name, r, target in (("victim", victim, 0.93), ("program", program, 0.95)):
        t = time_to(r["epochs"], target)
        print(
            f"{name}: test acc {r['test_acc']:.2%}; val acc {target:.0%} "
            + (f"reached after {t:.1f} s of training" if t is not None else "not reached")
        )
    results = {
        "device": device,
        "victim": victim,
        "program": program,
        "program_experiment": args.program,
        "victim_s_to_93": time_to(victim["epochs"], 0.93),
        "program_s_to_95": time_to(program["epochs"], 0.95),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"written {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
