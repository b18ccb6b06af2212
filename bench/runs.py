"""Collect finished `python train.py` runs into one JSON record, for figures that are a run's own metrics.

Each run directory already holds what a figure needs: `metrics.json` (status, epochs, wall time, the test and
validation metrics) and `.hydra/hydra.yaml` (the overrides, so the exact command that made it). This script
writes them into one record, with the columns a page shows, for `bench/render_docs.py` to render as a table
(`runs`) or as inline values (`runs[name=...].metrics["test/acc"]`).

    python bench/runs.py --out docs/bench/patch_defence_cpu.json --what "..." \
        --column "success=test/patch/success:pct" --column "clean=test/clean_acc:pct" \
        "standard resnet20=outputs/phys/patch_demo" "FGSM-RS resnet20=outputs/phys/patch_robust"

A run is named `name=directory`; `--column header=metric:format` picks a metric of every run (format as in
render_docs: pct, pct1, num, s, f). The record holds every metric, so a page may quote one that has no column.
"""

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def command(run: Path) -> str:
    """The command line that made the run: its task overrides, then the Hydra ones that locate it."""
    overrides = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]["overrides"]
    hydra = [o for o in overrides["hydra"] if not o.startswith("hydra.mode=")]
    return shlex.join(["python", "train.py", *overrides["task"], *hydra])


def collect(name: str, run: Path) -> dict:
    """One run's entry: name, command, status, epochs, wall and training time, every metric."""
    if not (run / "metrics.json").exists():
        raise SystemExit(f"{run}: no metrics.json; is the run finished (python train.py ... hydra.run.dir={run})?")
    m = json.loads((run / "metrics.json").read_text())
    return {
        "name": name,
        "run": str(run),
        "command": command(run),
        "status": m.get("status"),
        "epochs": m.get("epochs"),
        "wall_s": m.get("wall_time_s"),
        "train_s": m["metrics"].get("time/train_s"),
        "metrics": m["metrics"],
    }


def column(spec: str) -> list[str]:
    """`header=metric:format` as [header, metric, format]."""
    header, _, rest = spec.partition("=")
    metric, _, fmt = rest.rpartition(":") if ":" in rest else (rest, "", "f")
    if not header or not metric:
        raise SystemExit(f"--column {spec!r}: expected header=metric:format, e.g. 'test accuracy=test/acc:pct'")
    return [header, metric, fmt or "f"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run directory")
    parser.add_argument("--out", required=True, type=Path, help="the record to write (docs/...json)")
    parser.add_argument("--what", required=True, help="one line: what the runs measure")
    parser.add_argument("--column", action="append", default=[], help="header=metric:format (repeatable)")
    parser.add_argument("--note", default="", help="what a reader must know (budget, images, caveats)")
    args = parser.parse_args(argv)
    pairs = [r.partition("=")[::2] for r in args.runs]
    if any(not name or not run for name, run in pairs):
        raise SystemExit("each run is name=directory, e.g. 'standard victim=outputs/phys/patch_demo'")
    record = {
        "what": args.what,
        "note": args.note,
        "device": f"CPU, {os.cpu_count()} cores, {platform.machine()}",
        "columns": [column(c) for c in args.column],
        "runs": [collect(name, Path(run)) for name, run in pairs],
        "command": shlex.join(["python", "bench/runs.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} ({len(record['runs'])} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
