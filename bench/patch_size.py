"""Patch success against patch size: one real `python train.py experiment=attack_patch` run per size, each
learning a targeted patch on training images and scoring it on held-out test images at seeded random placements;
their metrics.json are collected into one JSON record (rendered into docs/guide/physical-world.md).

    python bench/patch_size.py --victim outputs/phys/victim/victim.safetensors --sizes 1 2 5 10 15 \
        --runs outputs/phys/patch_size --out docs/bench/patch_size_cpu.json -- task.attacks.patch.epochs=2
    python bench/patch_size.py ... --collect   # only re-read finished runs

Arguments after `--` are passed to every run (the training budget: epochs, fit images, test images).
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(victim: str, size: float, run: Path, extra: list[str]) -> list[str]:
    return [
        "python",
        "train.py",
        "experiment=attack_patch",
        f"victim.ckpt_path={victim}",
        f"task.attacks.patch.size={size:g}",
        *extra,
        f"hydra.run.dir={run}",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
    ]


def collect(run: Path, size: float, cmd: list[str], seconds: float | None) -> dict:
    """One size's row, from its run directory."""
    metrics = json.loads((run / "metrics.json").read_text())
    m = metrics["metrics"]
    meta = json.loads((run / "patch.json").read_text()) if (run / "patch.json").exists() else {}
    curve = json.loads((run / "patch_curve.json").read_text()) if (run / "patch_curve.json").exists() else []
    side = None
    if meta:
        from reprog.transforms import patch_side

        _, h, w = meta["image"]
        side = patch_side(size, h, w)
    return {
        "size_percent": size,
        "side_px": side,
        "area_percent": None if side is None else round(100 * side * side / (32 * 32), 2),
        "status": metrics["status"],
        "success": m.get("test/patch/success"),
        "robust_acc": m.get("test/patch/robust_acc"),
        "clean_acc": m.get("test/clean_acc"),
        "fit_steps": len(curve),
        "fit_success_last": curve[-1]["success"] if curve else None,
        "wall_s": round(seconds, 1) if seconds is not None else metrics.get("wall_time_s"),
        "command": shlex.join(cmd),
    }


def write_record(out: Path, record: dict) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """This script's own arguments, and the `train.py` overrides after `--`."""
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    given = list(argv)
    argv, extra = split_overrides(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", required=True)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 2, 5, 10, 15])
    parser.add_argument("--runs", default="outputs/phys/patch_size")
    parser.add_argument("--out", default="docs/bench/patch_size_cpu.json")
    parser.add_argument("--collect", action="store_true", help="run nothing; collect finished runs")
    parser.add_argument("--note", default="", help="what the record should say about its budget")
    args = parser.parse_args(argv)

    out = ROOT / args.out
    previous = json.loads(out.read_text()) if args.collect and out.exists() else {}
    seconds_before = {r["size_percent"]: r["wall_s"] for r in previous.get("rows", [])}
    rows, start = [], time.perf_counter()
    for size in args.sizes:
        run = Path(args.runs) / f"size{size:g}"
        cmd = command(args.victim, size, run, extra)
        seconds = seconds_before.get(size)
        if not args.collect:
            print("$", shlex.join(cmd), flush=True)
            t = time.perf_counter()
            (ROOT / run).parent.mkdir(parents=True, exist_ok=True)
            with open(ROOT / f"{run}.log", "w") as log:
                done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            seconds = time.perf_counter() - t
            if done.returncode:
                print(f"size {size:g}: exit {done.returncode}; see {run}.log", flush=True)
                continue
        if not (ROOT / run / "metrics.json").exists():
            continue
        if json.loads((ROOT / run / "metrics.json").read_text()).get("status") != "completed":
            continue
        rows.append(collect(ROOT / run, size, cmd, seconds))
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "what": "targeted adversarial patch (target class 0), success on held-out test images at seeded random "
        "placements, against patch size",
        "victim": args.victim,
        "overrides": extra,
        "note": args.note or previous.get("note", ""),
        "device": previous.get("device") or f"CPU, {os.cpu_count()} cores, {platform.machine()}",
        "total_wall_s": previous.get("total_wall_s") if args.collect else round(time.perf_counter() - start, 1),
        "rows": rows,
        "command": previous.get("command") if args.collect else "python bench/patch_size.py " + shlex.join(given),
    }
    return write_record(out, record)


if __name__ == "__main__":
    sys.exit(main())
