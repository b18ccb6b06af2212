"""The MNIST program with and without EOT training, scored under `affine` and `photo`: real `python train.py` runs.

A program is trained with transform=none (no EOT), =affine and =photo (EOT over the transform's draws); each is
scored under the transform it was trained through (test/acc) and without it (test/acc_untransformed). The program
trained without EOT is then scored under each transform by a `train=false` run that loads it
(`task.init_program=<run>/program.safetensors transform=...`): the same seeded evaluation draws as the EOT runs
(transform.seed + 1), so the rows compare. The runs' metrics.json are collected into one JSON record.

    python bench/program_eot.py --victim outputs/phys/victim/victim.safetensors --experiment reprogram_mnist_scale \
        --runs outputs/phys/program --out docs/bench/program_eot_cpu.json -- trainer.max_epochs=2 \
        trainer.limit_train_batches=75
    python bench/program_eot.py ... --collect   # only re-read finished runs

Arguments after `--` go to every training run; `--eval-args` to every run (the test set's size).
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

from patch_size import split_overrides, write_record  # noqa: E402 (bench/ is on the path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
TRANSFORMS = ("affine", "photo")


def jobs(
    experiment: str, victim: str, runs: Path, train: list[str], evaluate: list[str]
) -> list[tuple[str, str, str, list[str]]]:
    """(name, trained under, scored under, command), in the order they must run."""
    base = ["python", "train.py", f"experiment={experiment}", f"victim.ckpt_path={victim}", *evaluate]
    tail = ["logger=csv", "callbacks.rich_progress_bar=null"]
    out = [("none", "none", "none", [*base, *train, "transform=none", f"hydra.run.dir={runs}/none", *tail])]
    for t in TRANSFORMS:
        out.append((f"none_under_{t}", "none", t, scored(base, runs, "none", t, tail)))
    for t in TRANSFORMS:
        out.append((t, t, t, [*base, *train, f"transform={t}", f"hydra.run.dir={runs}/{t}", *tail]))
    for t in TRANSFORMS:  # each EOT program under the other transform
        for other in TRANSFORMS:
            if other != t:
                out.append((f"{t}_under_{other}", t, other, scored(base, runs, t, other, tail)))
    return out


def scored(base: list[str], runs: Path, trained: str, under: str, tail: list[str]) -> list[str]:
    """A `train=false` run that scores the program trained under `trained` under the transform `under`."""
    return [
        *base,
        "train=false",
        "export=false",
        f"task.init_program={runs}/{trained}/program.safetensors",
        f"transform={under}",
        f"hydra.run.dir={runs}/{trained}_under_{under}",
        *tail,
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    given = list(argv)
    argv, train = split_overrides(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", required=True)
    parser.add_argument("--experiment", default="reprogram_mnist_scale")
    parser.add_argument("--runs", default="outputs/phys/program")
    parser.add_argument("--out", default="docs/bench/program_eot_cpu.json")
    parser.add_argument("--eval-args", nargs="*", default=["data.eval_batch_size=250", "trainer.limit_test_batches=4"])
    parser.add_argument("--only", nargs="*", help="run only these jobs (names); collect all that finished")
    parser.add_argument("--collect", action="store_true", help="run nothing; collect finished runs")
    args = parser.parse_args(argv)

    out = ROOT / args.out
    previous = json.loads(out.read_text()) if out.exists() else {}
    seconds = {r["name"]: r.get("wall_s") for r in previous.get("rows", [])}
    rows = []
    for name, trained, scored, cmd in jobs(args.experiment, args.victim, Path(args.runs), train, args.eval_args):
        run = ROOT / args.runs / name
        if not args.collect and (not args.only or name in args.only):
            print("$", shlex.join(cmd), flush=True)
            t = time.perf_counter()
            run.parent.mkdir(parents=True, exist_ok=True)
            with open(f"{run}.log", "w") as log:
                done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            seconds[name] = round(time.perf_counter() - t, 1)
            if done.returncode:
                print(f"{name}: exit {done.returncode}; see {run}.log", flush=True)
                continue
        if not (run / "metrics.json").exists():
            continue
        m = json.loads((run / "metrics.json").read_text())
        if m.get("status") != "completed":
            continue
        rows.append(
            {
                "name": name,
                "trained_under": trained,
                "scored_under": scored,
                "status": m["status"],
                "test_acc": m["metrics"].get("test/acc"),
                "test_acc_untransformed": m["metrics"].get("test/acc_untransformed"),
                "val_acc": m["metrics"].get("val/acc"),
                "train_s": m["metrics"].get("time/train_s"),
                "steps": m.get("steps"),
                "wall_s": seconds.get(name) or m.get("wall_time_s"),
                "command": shlex.join(cmd),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "what": f"MNIST program ({args.experiment}) through a CIFAR-10 victim, trained with "
        "transform=none|affine|photo, scored under affine and photo",
        "experiment": args.experiment,
        "victim": args.victim,
        "train_overrides": train,
        "eval_overrides": args.eval_args,
        "device": previous.get("device") or f"CPU, {os.cpu_count()} cores, {platform.machine()}",
        "rows": rows,
        "command": previous.get("command")
        if (args.collect or args.only) and previous.get("command")
        else "python bench/program_eot.py " + shlex.join(given),
        "then": previous.get("then", []) + (["python bench/program_eot.py " + shlex.join(given)] if args.only else []),
    }
    return write_record(out, record)


if __name__ == "__main__":
    sys.exit(main())
