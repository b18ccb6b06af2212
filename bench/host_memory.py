"""`keep_freed_host_memory` off and on, through `python train.py` as a user runs it.

Each case runs with the switch false, then true, `--repeats` times in turn. Per run: the training
seconds the run logged (`time/train_s`), and from the kernel (`os.wait4`) the minor page faults and
the peak resident set of that process. (A child's peak starts from its parent's resident set at fork,
so this parent stays small: it does not import torch.) Prints a table of medians and writes JSON.

    python bench/host_memory.py [--repeats 3] [--args trainer=gpu ...]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # what a run does -> its overrides (short: a few steps show the per-step cost)
    "airbench victim training, batch 1024": ["experiment=victim_airbench", "trainer.max_steps=8"],
    "airbench program (scale), batch 128": [
        "experiment=reprogram_mnist_scale",
        "victim=random",
        "victim.model.arch=airbench",
        "trainer.max_steps=60",
    ],
    "resnet20 victim training, batch 128": ["experiment=victim_cifar10", "trainer.max_steps=40"],
}
QUIET = [
    "trainer.limit_val_batches=0",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_checkpoint=null",
    "export=false",
]


def run(overrides: list[str]) -> dict:
    """One train.py run: its training seconds, minor page faults and peak resident MiB."""
    with tempfile.TemporaryDirectory() as run_dir:
        cmd = [sys.executable, "train.py", *overrides, *QUIET, f"hydra.run.dir={run_dir}"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own usage, not all children's
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd[1:])} failed:\n{stderr[-2000:]}")
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())["metrics"]
    return {"train_s": metrics["time/train_s"], "faults": usage.ru_minflt, "peak_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--args", nargs="*", default=[], help="more train.py overrides for every run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "host_memory.json"))
    args = parser.parse_args()

    runs = {case: {"false": [], "true": []} for case in CASES}
    for repeat in range(args.repeats):  # alternate, so drift on a noisy machine hits both settings alike
        for case, overrides in CASES.items():
            for keep in ("false", "true"):
                r = run([*overrides, *args.args, f"keep_freed_host_memory={keep}"])
                runs[case][keep].append(r)
                print(
                    f"repeat {repeat + 1}/{args.repeats}  {case:40s} keep={keep:5s} {r['train_s']:7.2f} s "
                    f"{r['faults']:>10,} faults {r['peak_mib']:7.0f} MiB",
                    flush=True,
                )

    median = lambda rs, key: statistics.median(r[key] for r in rs)  # noqa: E731
    where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {'-'.join(platform.libc_ver())}"
    print(f"\n{where}; medians of {args.repeats} alternating runs\n")
    print(
        "| run | training s (off / on) | speedup | page faults (off / on) | peak MiB (off / on) |\n"
        "|---|---|---|---|---|"
    )
    summary = {}
    for case, r in runs.items():
        off, on = ({k: median(r[s], k) for k in ("train_s", "faults", "peak_mib")} for s in ("false", "true"))
        summary[case] = {"off": off, "on": on, "speedup": off["train_s"] / on["train_s"]}
        print(
            f"| {case} | {off['train_s']:.2f} / {on['train_s']:.2f} | {summary[case]['speedup']:.2f}x | "
            f"{off['faults']:,.0f} / {on['faults']:,.0f} | {off['peak_mib']:.0f} / {on['peak_mib']:.0f} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "device": where,
                "torch": version("torch"),
                "repeats": args.repeats,
                "cases": CASES,
                "runs": runs,
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
