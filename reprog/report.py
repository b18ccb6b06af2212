"""Collect a sweep's jobs into a table (Markdown + CSV) and a plot (PNG).

    python -m reprog.report outputs/multiruns/<stamp> [--x data.digit_size] [--y test/acc] [--group optimizer.lr]

Every job folder under the sweep is listed, whatever state its `metrics.json` is in: completed (with
its metrics), failed (with its error), interrupted (with the signal and how to resume), running,
killed (running on this machine, but its process is gone), unfinished (no metrics.json: never
started) and unreadable (a metrics.json or overrides.yaml that is empty, cut short or not what a run
writes). One bad job never stops the report. The plot draws `--y` against `--x`, one line per value
of `--group`, as mean ± std over the jobs that share both (e.g. several seeds).
"""

import argparse
import csv
import json
import math
import os
import socket
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

from reprog.errors import UserError, brief

HIDDEN = ("victim.ckpt_path", "paths.", "hydra.", "trainer.enable_progress_bar", "callbacks.")
DEFAULT_X, DEFAULT_Y, DEFAULT_GROUP = "data.digit_size", "test/acc", "optimizer.lr"
DEFAULT_METRICS = ("test/acc", "val/acc_best")
NO_CHECKPOINT = "no checkpoint saved, rerun the job"
STATUS_ORDER = ("completed", "failed", "interrupted", "killed", "running", "unfinished", "unreadable")


@dataclass
class Job:
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_time_s: Any = None
    error: str = ""


class _Unreadable(Exception):
    """Why one job's files cannot be used; becomes that job's error column, not a failed report."""


def collect(sweep_dir: str | Path) -> list[Job]:
    """One `Job` per folder that Hydra created for a job (it holds `.hydra/overrides.yaml`)."""
    sweep_dir = Path(sweep_dir)
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is a file, not a sweep folder; pass outputs/multiruns/<stamp>")
    if not sweep_dir.is_dir():
        raise UserError(f"no sweep folder at {sweep_dir}; pass outputs/multiruns/<stamp>")
    jobs = [_job(sweep_dir, f.parent.parent) for f in sorted(sweep_dir.rglob(".hydra/overrides.yaml"), key=_job_order)]
    if not jobs:
        raise UserError(f"{sweep_dir} holds no Hydra jobs (no */.hydra/overrides.yaml); is it a multirun folder?")
    return jobs


def _job(sweep_dir: Path, job_dir: Path) -> Job:
    name = str(job_dir.relative_to(sweep_dir))
    try:
        params = _params(job_dir / ".hydra" / "overrides.yaml")
        summary = _summary(job_dir / "metrics.json")
    except _Unreadable as e:
        return Job(name, "unreadable", {}, error=str(e))
    if summary is None:
        return Job(name, "unfinished", params)
    status, error = summary["status"], _one_line(summary.get("error") or "")
    if status == "running":
        status, error = _running(summary, job_dir)
        if status != "running" or summary.get("host") != socket.gethostname():
            verdict = _slurm_verdict(sweep_dir, summary)  # SIGKILLed by SLURM (memory, time): it wrote nothing
            status, error = ("killed", verdict) if verdict else (status, error)
    elif status == "interrupted":
        error = _interrupted(summary)
    return Job(name, status, params, summary["metrics"], summary.get("wall_time_s"), error)


def _params(overrides_file: Path) -> dict[str, str]:
    try:
        loaded = OmegaConf.load(overrides_file)
    except Exception as e:
        raise _Unreadable(f".hydra/overrides.yaml is not YAML ({brief(e, 120)})") from e
    if not isinstance(loaded, ListConfig):
        raise _Unreadable(".hydra/overrides.yaml holds a mapping, not the list of overrides Hydra writes")
    try:
        overrides = [str(o) for o in loaded]
    except Exception as e:  # e.g. an interpolation that cannot be resolved
        raise _Unreadable(f".hydra/overrides.yaml cannot be read ({brief(e, 120)})") from e
    return dict(o.split("=", 1) for o in overrides if "=" in o and not o.lstrip("+~").startswith(HIDDEN))


def _summary(path: Path) -> dict[str, Any] | None:
    """The parsed metrics.json, None when there is none (the job never started)."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise _Unreadable(f"cannot read metrics.json ({brief(e, 120)})") from e
    if not text.strip():
        raise _Unreadable("metrics.json is empty")
    try:
        summary = json.loads(text)
    except ValueError as e:
        raise _Unreadable(f"metrics.json is not JSON ({brief(e, 120)})") from e
    if not isinstance(summary, dict):
        raise _Unreadable(f"metrics.json holds a JSON {_json_type(summary)}, not an object")
    if "status" not in summary:
        raise _Unreadable("metrics.json has no status")
    if not isinstance(summary["status"], str) or not summary["status"]:
        raise _Unreadable(f"metrics.json's status is {summary['status']!r}, not a status name")
    if summary.get("metrics") is None:
        summary["metrics"] = {}
    if not isinstance(summary["metrics"], dict):
        raise _Unreadable(f"metrics.json's metrics is a JSON {_json_type(summary['metrics'])}, not an object")
    return summary


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _running(summary: dict[str, Any], job_dir: Path) -> tuple[str, str]:
    """`killed` when the job ran on this machine and its process is gone, else `running`."""
    pid = summary.get("pid")
    if summary.get("host") != socket.gethostname() or type(pid) is not int or pid <= 0:
        return "running", ""
    if _alive(pid) and not _pid_reused(pid, summary.get("started")):
        return "running", ""
    hint = _resume_hint(summary, job_dir)
    return "killed", f"process {pid} is gone; " + (f"resume with {hint}" if hint else NO_CHECKPOINT)


def _slurm_verdict(sweep_dir: Path, summary: dict[str, Any]) -> str:
    """SLURM's last word on a job it killed (over its memory, its time), from the job's stderr that submitit
    keeps in <sweep>/.submitit/<job id>/; "" when there is none, or the job was requeued to run again."""
    job = (summary.get("slurm") or {}).get("job_id") if isinstance(summary.get("slurm"), dict) else None
    if not isinstance(job, str) or not job.replace("_", "").isdigit():
        return ""
    lines = []
    for log in sorted((sweep_dir / ".submitit" / job).glob(f"{job}_*_log.err")):
        try:
            lines += [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "slurmstepd" in line and "error:" in line and "REQUEUE" not in line and "PREEMPT" not in line
            ]
        except OSError:
            continue
    best = [line for line in lines if "memory limit (" in line] or [line for line in lines if "memory" in line] or lines
    return "killed by SLURM: " + _one_line(best[-1].split("error:", 1)[1]) if lines else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except (OverflowError, OSError):  # not a pid this system can have
        return False
    return True


def _pid_reused(pid: int, started: Any) -> bool:
    """True when /proc shows `pid` began well after the job did, so it is another process now (Linux only)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        when = datetime.fromisoformat(started)
        began = btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, TypeError):
        return False
    if when.tzinfo is None:
        when = when.astimezone()  # written as local time
    return began > when.timestamp() + 5  # /proc's boot time is whole seconds; allow some slack


def _resume_hint(summary: dict[str, Any], job_dir: Path) -> str:
    if isinstance(summary.get("resume"), str) and summary["resume"]:
        return _one_line(summary["resume"])
    from reprog.run_summary import resume_point  # here, not at the top: it imports torch, which the report needs not

    return resume_point(job_dir.resolve()) or ""


def _interrupted(summary: dict[str, Any]) -> str:
    signal = _one_line(summary.get("signal") or "a signal")
    resume = summary.get("resume")
    hint = f"resume with {_one_line(resume)}" if isinstance(resume, str) and resume else NO_CHECKPOINT
    return f"stopped by {signal}; {hint}"


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _job_order(path: Path) -> tuple:
    name = path.parent.parent.name
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _number(value: Any) -> float | None:
    """A metric as a float, or None for anything else (strings, lists, booleans from a hand-edited file)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ""
    number = _number(value)
    return f"{number:.{digits}f}" if number is not None else _one_line(value)[:60]


def table(jobs: list[Job], metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    keys = sorted({k for job in jobs for k in job.params})
    header = ["job", "status", *keys, *metrics, "wall time (s)", "error"]
    rows = []
    for job in jobs:
        rows.append(
            [
                job.name,
                job.status,
                *(_one_line(job.params.get(k, "")) for k in keys),
                *(_cell(job.metrics.get(m), 4) for m in metrics),
                _cell(job.wall_time_s, 0),
                _one_line(job.error),
            ]
        )
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def status_counts(jobs: list[Job]) -> str:
    """`jobs: 10 completed, 1 failed, 1 killed`: the sweep at a glance, known statuses first."""
    counts = Counter(job.status for job in jobs)
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts) - set(STATUS_ORDER))
    return "jobs: " + ", ".join(f"{counts[s]} {s}" for s in order)


def _points(jobs: list[Job], x: str, y: str, group: str | None) -> dict[str, dict[str, list[float]]]:
    """{group value: {x value: [y, ...]}} over completed jobs with a finite numeric `y`."""
    points: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        value = _number(job.metrics.get(y))
        if job.status == "completed" and value is not None and math.isfinite(value) and x in job.params:
            points[job.params.get(group, "all") if group else "all"][job.params[x]].append(value)
    return points


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def plot(jobs: list[Job], x: str, y: str, group: str | None, path: Path) -> Path:
    """`y` against `x`, a line per `group` value, mean ± std over jobs sharing (group, x).

    An `x` whose values are not all numbers (e.g. `optimizer=adam,sgd`) is drawn as categories.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _points(jobs, x, y, group)
    if not points:
        raise UserError(f"no completed job has both {x!r} (an override) and {y!r} (a metric); choose --x and --y")
    x_values = sorted({v for by_x in points.values() for v in by_x})
    numeric = all(_as_float(v) is not None for v in x_values)
    position = {v: float(v) for v in x_values} if numeric else {v: float(i) for i, v in enumerate(x_values)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, by_x in sorted(points.items()):
        xs = sorted(by_x, key=position.__getitem__)
        means = [statistics.mean(by_x[v]) for v in xs]
        stds = [statistics.stdev(by_x[v]) if len(by_x[v]) > 1 else 0.0 for v in xs]
        ax.errorbar(
            [position[v] for v in xs],
            means,
            yerr=stds,
            marker="o",
            capsize=3,
            label=f"{group}={label}" if group else None,
        )
    if not numeric:
        ax.set_xticks(list(position.values()), list(position))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if group:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _check_names(
    jobs: list[Job], x: str | None, y: str | None, group: str | None, metrics: tuple[str, ...] | None
) -> None:
    """Names the user typed must name something in the sweep; a typo would only give empty columns."""
    swept = sorted({k for job in jobs for k in job.params})
    measured = sorted({k for job in jobs for k in job.metrics})
    for flag, name in (("--x", x), ("--group", group)):
        if name and name not in swept:
            raise UserError(
                f"{flag} {name!r} is not an override of any job; choose one of {swept}"
                if swept
                else f"{flag} {name!r}: the jobs have no overrides; drop {flag}"
            )
    if x == "":
        raise UserError(f"--x is empty; choose one of {swept}")
    if y is not None and y not in measured:
        raise UserError(
            f"--y {y!r} is not a metric of any job; choose one of {measured}"
            if measured
            else f"--y {y!r}: no job has metrics yet; wait for a job to complete"
        )
    if metrics is not None:
        if not [m for m in metrics if m]:
            raise UserError(
                "--metrics is empty; give comma-separated metric names, e.g. --metrics test/acc,val/acc_best"
            )
        unknown = [m for m in metrics if m not in measured]
        if measured and unknown:
            raise UserError(f"--metrics names {unknown}, which no job has; choose from {measured}")


def write_report(
    jobs: list[Job],
    sweep_dir: str | Path,
    x: str | None = None,
    y: str | None = None,
    group: str | None = None,
    metrics: tuple[str, ...] | None = None,
    out: str | Path | None = None,
) -> dict[str, Path]:
    """report.md, report.csv and (when something can be plotted) report.png for `jobs`; returns their paths.

    A name left as None takes its default and is used where it fits; a name given is checked against
    the sweep, so a typo is an error rather than an empty column or a missing plot.
    """
    _check_names(jobs, x, y, group, metrics)
    strict_plot = x is not None or y is not None
    x, y = x or DEFAULT_X, y or DEFAULT_Y
    group = DEFAULT_GROUP if group is None else group
    columns = [m for m in metrics if m] if metrics is not None else list(DEFAULT_METRICS)
    swept_group = group if group and any(group in job.params for job in jobs) else None
    plottable = bool(_points(jobs, x, y, swept_group))
    if strict_plot and not plottable:
        raise UserError(
            f"no completed job has both {x!r} (an override) and a numeric {y!r} (a metric); "
            "choose --x and --y, or wait for a job to complete"
        )

    out = _report_folder(sweep_dir, out)
    try:
        return _write_files(out, jobs, columns, (x, y, swept_group) if plottable else None)
    except OSError as e:
        raise UserError(
            f"cannot write the report into {out} ({brief(e, 160)}); pass a writable folder with --out"
        ) from e


def _report_folder(sweep_dir: str | Path, out: str | Path | None) -> Path:
    """Where the report goes: `--out`, else the sweep folder; a folder, never a file."""
    if out == "":
        raise UserError("--out is empty; pass a folder for the report, or drop --out to write into the sweep folder")
    out = Path(sweep_dir if out is None else out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder for the report (it is created if missing)")
    return out


def _write_files(
    out: Path, jobs: list[Job], columns: list[str], axes: tuple[str, str, str | None] | None
) -> dict[str, Path]:
    """report.md and report.csv in `out`, and report.png when there are `axes` (x, y, group) to plot."""
    header, rows = table(jobs, columns)
    written = {"md": out / "report.md", "csv": out / "report.csv"}
    out.mkdir(parents=True, exist_ok=True)
    written["md"].write_text(markdown(header, rows))
    with written["csv"].open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    if axes:
        written["png"] = plot(jobs, *axes, out / "report.png")
    return written


def report(sweep_dir: str | Path, **names: Any) -> dict[str, Path]:
    """Collect `sweep_dir` and write its report; `names` are `write_report`'s (x, y, group, metrics, out).
    Returns the written paths."""
    return write_report(collect(sweep_dir), sweep_dir, **names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--x", default=None, help=f"override on the x axis (default {DEFAULT_X}, if swept)")
    parser.add_argument("--y", default=None, help=f"metric on the y axis (default {DEFAULT_Y})")
    parser.add_argument(
        "--group",
        default=None,
        help=f"override drawn as one line per value (default {DEFAULT_GROUP}, if swept; '' for none)",
    )
    parser.add_argument(
        "--metrics", default=None, help=f"comma-separated table columns (default {','.join(DEFAULT_METRICS)})"
    )
    parser.add_argument("--out", default=None, help="folder for the report (default: the sweep folder)")
    args = parser.parse_args(argv)
    metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics is not None else None
    try:
        jobs = collect(args.sweep_dir)
        written = write_report(jobs, args.sweep_dir, args.x, args.y, args.group, metrics, args.out)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(written["md"].read_text())
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if "png" not in written:
        print(f"png: none (no completed job has both {args.x or DEFAULT_X!r} and a numeric {args.y or DEFAULT_Y!r})")
    print(status_counts(jobs))


if __name__ == "__main__":
    main()
