"""Accuracy against images seen for reprogramming runs through the ImageNet victim (Elsayed et al.'s protocol).

Reads each run's TensorBoard scalars (`val/acc` at every validation; the step times the batch size is the images
seen) and its `metrics.json` (test accuracy, training time), and writes one JSON record and one plot: the rows of
the protocol table and a curve a reader can extrapolate.

    python bench/imagenet_curve.py --runs mnist=outputs/imagenet/mnist_224_ilm ... --out docs/imagenet_protocol_cpu
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from reprog.data.cifar10_target import CIFAR10TargetDataModule  # noqa: E402
from reprog.models.class_names import describe_reads, victim_class_names  # noqa: E402
from reprog.program_io import load_program  # noqa: E402

TARGETS = {"reprog.data.cifar10_target.CIFAR10TargetDataModule": CIFAR10TargetDataModule}  # those with class names


def scalars(run: Path, tag: str) -> list[tuple[int, float, float]]:
    """(step, value, wall time) of `tag` over every event file of the run, in step order."""
    points: dict[int, tuple[float, float]] = {}
    for events in sorted((run / "tensorboard").rglob("events.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            points.update({e.step: (e.value, e.wall_time) for e in acc.Scalars(tag)})
    return [(step, *points[step]) for step in sorted(points)]


def row(name: str, run: Path) -> dict:
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    record = json.loads((run / "metrics.json").read_text())
    metrics, batch = record.get("metrics", {}), cfg["data"]["batch_size"]
    # runs before the HParams fix re-logged every metric at step 0 when they ended: not a point of the curve
    first = [p for p in scalars(run, "train/loss_step") + scalars(run, "val/acc") if p[0] > 0]
    start = min(wall for _, _, wall in first) if first else 0.0
    curve = [
        {"images": (step + 1) * batch, "val_acc": value, "wall_s": round(wall - start, 1)}
        for step, value, wall in scalars(run, "val/acc")
        if step > 0
    ]
    train_s = metrics.get("time/train_s")
    images = record.get("steps", 0) * batch
    return {
        "name": name,
        "run": str(run),
        "command": "python train.py " + " ".join(record["overrides"]),
        "status": record["status"],
        "task": cfg["data"]["_target_"].rsplit(".", 1)[1],
        "canvas": cfg["data"]["canvas_size"],
        "image_size": cfg["data"]["digit_size"],
        "program": cfg["program"].get("kind") or cfg["program"]["family"],  # runs before the rename say family
        "mapping": cfg["mapping"]["kind"],
        "victim_weights": cfg["model"].get("weights") if not cfg["victim"].get("random_init") else None,
        "precision": cfg["trainer"]["precision"],
        "epochs": record.get("epochs"),
        "steps": record.get("steps"),
        "images_seen": images,
        "train_s": train_s,
        "images_per_s": round(images / train_s, 1) if train_s else None,
        "test_acc": metrics.get("test/acc"),
        "val_acc_best": metrics.get("val/acc_best"),
        "curve": curve,
        "reads": reads(run / "program.safetensors", getattr(TARGETS.get(cfg["data"]["_target_"]), "class_names", None)),
    }


def reads(program: Path, target_names: list[str] | None) -> list[dict] | None:
    """Which ImageNet classes each target reads, from the exported program itself (as program.json lists them)."""
    if not program.is_file():
        return None
    loaded = load_program(program)
    names = victim_class_names(loaded.meta["victim"]["model"])
    return describe_reads(loaded.label_map.reads(3), names, target_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="name=run_dir")
    parser.add_argument("--out", required=True, help="path without suffix: writes .json and .png")
    args = parser.parse_args()
    rows = [row(name, Path(run)) for name, run in (spec.split("=", 1) for spec in args.runs)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ax.plot(
            [p["images"] / 1000 for p in r["curve"]],
            [100 * p["val_acc"] for p in r["curve"]],
            marker="o",
            label=f"{r['name']} (test {100 * (r['test_acc'] or 0):.2f} %)",
        )
    ax.set(
        xlabel="target images seen (thousands)",
        ylabel="validation accuracy, %",
        ylim=(0, 100),
        title="Reprogramming ImageNet EfficientNet-Lite0 on 2 CPU cores",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=120)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": "python bench/imagenet_curve.py " + " ".join(["--runs", *args.runs, "--out", args.out]),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    for r in rows:
        print(
            f"{r['name']}: test {r['test_acc']}, {r['images_seen']} images in {r['train_s']} s "
            f"({r['images_per_s']} images/s), status {r['status']}"
        )


if __name__ == "__main__":
    main()
