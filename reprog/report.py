"""Collect a sweep's jobs into a table (Markdown + CSV) and a plot (PNG).

    python -m reprog.report outputs/multiruns/<stamp> [--x data.digit_size] [--y test/acc] [--group optimizer.lr]

Every job folder under the sweep is listed: completed ones with their metrics, failed ones with their
error, and unfinished ones (killed, or never started) as such. The plot draws `--y` against `--x`, one
line per value of `--group`, as mean ± std over the jobs that share both (e.g. several seeds).
"""

import argparse
import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from reprog.errors import UserError

HIDDEN = ("victim.ckpt_path", "paths.", "hydra.", "trainer.enable_progress_bar", "callbacks.")


@dataclass
class Job:
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float | None] = field(default_factory=dict)
    wall_time_s: float | None = None
    error: str = ""


def collect(sweep_dir: str | Path) -> list[Job]:
    """One `Job` per folder that Hydra created for a job (it holds `.hydra/overrides.yaml`)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"no sweep folder at {sweep_dir}; pass outputs/multiruns/<stamp>")
    jobs = []
    for overrides_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml"), key=_job_order):
        job_dir = overrides_file.parent.parent
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        params = dict(o.split("=", 1) for o in overrides if "=" in o and not o.lstrip("+~").startswith(HIDDEN))
        summary_file = job_dir / "metrics.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {"status": "unfinished"}
        status = "unfinished" if summary["status"] == "running" else summary["status"]
        jobs.append(Job(str(job_dir.relative_to(sweep_dir)), status, params, summary.get("metrics", {}),
                        summary.get("wall_time_s"), summary.get("error", "")))
    if not jobs:
        raise UserError(f"{sweep_dir} holds no Hydra jobs (no */.hydra/overrides.yaml); is it a multirun folder?")
    return jobs


def _job_order(path: Path) -> tuple:
    name = path.parent.parent.name
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def table(jobs: list[Job], metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    keys = sorted({k for job in jobs for k in job.params})
    header = ["job", "status", *keys, *metrics, "wall time (s)", "error"]
    rows = []
    for job in jobs:
        values = [job.metrics.get(m) for m in metrics]
        rows.append([job.name, job.status, *(job.params.get(k, "") for k in keys),
                     *("" if v is None else f"{v:.4f}" for v in values),
                     "" if job.wall_time_s is None else f"{job.wall_time_s:.0f}", job.error])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(jobs: list[Job], x: str, y: str, group: str | None, path: Path) -> Path:
    """`y` against `x`, a line per `group` value, mean ± std over jobs sharing (group, x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        if job.status == "completed" and job.metrics.get(y) is not None and x in job.params:
            points[job.params.get(group, "all") if group else "all"][float(job.params[x])].append(job.metrics[y])
    if not points:
        raise UserError(f"no completed job has both {x!r} (an override) and {y!r} (a metric); choose --x and --y")
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, by_x in sorted(points.items()):
        xs = sorted(by_x)
        means = [statistics.mean(by_x[v]) for v in xs]
        stds = [statistics.stdev(by_x[v]) if len(by_x[v]) > 1 else 0.0 for v in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=f"{group}={label}" if group else None)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if group:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(sweep_dir: str | Path, x: str = "data.digit_size", y: str = "test/acc", group: str | None = "optimizer.lr",
           metrics: tuple[str, ...] = ("test/acc", "val/acc_best"), out: str | Path | None = None) -> dict[str, Path]:
    """Write report.md, report.csv and (when something can be plotted) report.png; returns their paths."""
    jobs = collect(sweep_dir)
    out = Path(out or sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(jobs, list(metrics))
    written = {"md": out / "report.md", "csv": out / "report.csv"}
    written["md"].write_text(markdown(header, rows))
    with written["csv"].open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    if any(x in job.params for job in jobs):
        swept_group = group if any(group in job.params for job in jobs) else None
        written["png"] = plot(jobs, x, y, swept_group, out / "report.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--x", default="data.digit_size", help="override on the x axis")
    parser.add_argument("--y", default="test/acc", help="metric on the y axis")
    parser.add_argument("--group", default="optimizer.lr", help="override drawn as one line per value")
    parser.add_argument("--metrics", default="test/acc,val/acc_best", help="comma-separated table columns")
    parser.add_argument("--out", default=None, help="folder for the report (default: the sweep folder)")
    args = parser.parse_args()
    try:
        written = report(args.sweep_dir, args.x, args.y, args.group, tuple(args.metrics.split(",")), args.out)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(written["md"].read_text())
    for kind, path in written.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
