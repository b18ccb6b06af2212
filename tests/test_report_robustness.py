"""`python -m reprog.report` lists every job whatever state its files are in, and refuses bad arguments in one line."""

import json
import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from conftest import ROOT

from reprog import report


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def completed(acc: float, size: int = 14) -> dict:
    return {
        "status": "completed",
        "metrics": {"test/acc": acc, "val/acc_best": acc},
        "wall_time_s": 12.3,
        "epochs": 1,
        "steps": 10,
        "overrides": [f"data.digit_size={size}", "optimizer.lr=0.1"],
    }


def running(**fields) -> dict:
    return {"status": "running", "started": datetime.now().astimezone().isoformat(), "overrides": [], **fields}


HOST = socket.gethostname()
# job name -> (metrics.json content: a dict is dumped as JSON, a str written as is, None: no file; expected status)
JOBS = {
    "0": (completed(0.8, 14), "completed"),
    "1": (completed(0.6, 20), "completed"),
    "2": ("", "unreadable"),
    "3": ('{"status": "completed", "metrics": {"test/a', "unreadable"),
    "4": ("[1, 2, 3]", "unreadable"),
    "5": ({"metrics": {"test/acc": 0.5}}, "unreadable"),
    "6": (lambda: running(pid=dead_pid(), host=HOST), "killed"),
    "7": (lambda: running(pid=os.getpid(), host=HOST), "running"),
    "8": (lambda: running(pid=dead_pid(), host=HOST + "-elsewhere"), "running"),
    "9": ({"status": "running"}, "running"),  # an old file: no pid, no host
    "10": (
        {
            "status": "interrupted",
            "signal": "SIGTERM",
            "resume": "ckpt_path=/x/checkpoints/last.ckpt",
            "metrics": {"val/acc": 0.4},
        },
        "interrupted",
    ),
    "11": ({"status": "failed", "error": "image size 40 does not fit\nin a 32-px canvas"}, "failed"),
    "12": (None, "unfinished"),
    "13": (
        {"status": "completed", "metrics": {"test/acc": "n/a", "val/acc_best": [1]}, "wall_time_s": "soon"},
        "completed",
    ),
    "14": ({"status": 3}, "unreadable"),
    "15": (lambda: running(pid=os.getpid(), host=HOST, started="2000-01-01T00:00:00"), "killed"),  # pid reused
    "16": ({"status": "completed", "metrics": [0.5]}, "unreadable"),
    "17": (b"\xff\xfe{", "unreadable"),
}


def write_job(sweep: Path, name: str, summary, overrides: str | None = None) -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    size = summary["overrides"][0].split("=")[1] if isinstance(summary, dict) and summary.get("overrides") else 10
    (job / ".hydra" / "overrides.yaml").write_text(overrides or f"- data.digit_size={size}\n- optimizer.lr=0.1\n")
    if isinstance(summary, bytes):
        (job / "metrics.json").write_bytes(summary)
    elif summary is not None:
        (job / "metrics.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep"
    for name, (summary, _) in JOBS.items():
        write_job(sweep, name, summary() if callable(summary) else summary)
    job = write_job(sweep, "18", completed(0.7), overrides="- 'data.digit_size=14\n")  # cut short: not YAML
    write_job(sweep, "19", completed(0.7), overrides="data.digit_size: 14\n")  # a mapping, not Hydra's list
    (job.parent / "6" / "checkpoints").mkdir()
    (job.parent / "6" / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
    return sweep


def test_every_job_is_listed_with_its_state_and_why(sweep):
    jobs = {job.name: job for job in report.collect(sweep)}
    assert {name: job.status for name, job in jobs.items()} == {
        **{name: status for name, (_, status) in JOBS.items()},
        "18": "unreadable",
        "19": "unreadable",
    }
    assert jobs["2"].error == "metrics.json is empty"
    assert jobs["3"].error.startswith("metrics.json is not JSON (JSONDecodeError:")
    assert jobs["4"].error == "metrics.json holds a JSON array, not an object"
    assert jobs["5"].error == "metrics.json has no status"
    pid = json.loads((sweep / "6" / "metrics.json").read_text())["pid"]
    last = (sweep / "6" / "checkpoints" / "last.ckpt").resolve()
    assert jobs["6"].error == f"process {pid} is gone; resume with ckpt_path={last}"
    assert jobs["7"].error == jobs["8"].error == jobs["9"].error == ""
    assert jobs["10"].error == "stopped by SIGTERM; resume with ckpt_path=/x/checkpoints/last.ckpt"
    assert jobs["11"].error == "image size 40 does not fit in a 32-px canvas"
    assert jobs["15"].error == f"process {os.getpid()} is gone; no checkpoint saved, rerun the job"
    assert jobs["18"].error.startswith(".hydra/overrides.yaml is not YAML (")
    assert "not the list of overrides" in jobs["19"].error
    assert all("\n" not in job.error for job in jobs.values())


def test_the_report_is_written_with_a_row_per_job_and_a_count_per_status(sweep, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["reprog.report", str(sweep)])
    report.main()
    out = capsys.readouterr().out
    md = (sweep / "report.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in md.splitlines()[2:]}
    assert rows == {**{name: status for name, (_, status) in JOBS.items()}, "18": "unreadable", "19": "unreadable"}
    assert "| n/a |" in md and "| 0.8000 |" in md  # a metric that is not a number is shown, not formatted
    assert (sweep / "report.csv").read_text().count("\n") == len(rows) + 1
    assert (sweep / "report.png").stat().st_size > 1000
    assert out.rstrip().splitlines()[-1] == (
        "jobs: 3 completed, 1 failed, 1 interrupted, 2 killed, 3 running, 1 unfinished, 9 unreadable"
    )


def test_plot_and_table_survive_non_numeric_values_and_categorical_x(tmp_path):
    jobs = [
        report.Job("0", "completed", {"optimizer": "adam"}, {"test/acc": 0.5}, "x"),
        report.Job("1", "completed", {"optimizer": "sgd"}, {"test/acc": "nan?"}, None),
        report.Job("2", "completed", {"optimizer": "sgd"}, {"test/acc": float("nan")}, 3),
        report.Job("3", "completed", {"optimizer": "sgd"}, {"test/acc": True}, 3),
    ]
    header, rows = report.table(jobs, ["test/acc"])
    assert [row[3] for row in rows] == ["0.5000", "nan?", "nan", "True"] and rows[0][4] == "x"
    assert report.plot(jobs, "optimizer", "test/acc", None, tmp_path / "p.png").stat().st_size > 1000


def bad(argv: list[str], monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", ["reprog.report", *argv])
    with pytest.raises(SystemExit) as info:
        report.main()
    message = str(info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    assert not capsys.readouterr().out
    return message


def test_bad_arguments_are_one_error_line(sweep, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert "is a file, not a sweep folder" in bad([str(a_file)], monkeypatch, capsys)
    assert "no sweep folder at" in bad([str(tmp_path / "nowhere")], monkeypatch, capsys)
    assert "holds no Hydra jobs" in bad([str(tmp_path / "sweep" / "2" / ".hydra")], monkeypatch, capsys)
    assert "--metrics is empty" in bad([str(sweep), "--metrics", ""], monkeypatch, capsys)
    assert "--metrics is empty" in bad([str(sweep), "--metrics", " , "], monkeypatch, capsys)
    assert "--metrics names ['test/ac']" in bad([str(sweep), "--metrics", "test/acc,test/ac"], monkeypatch, capsys)
    assert "--x 'seed' is not an override of any job; choose one of ['data.digit_size', 'optimizer.lr']" in bad(
        [str(sweep), "--x", "seed"], monkeypatch, capsys
    )
    assert "--x is empty" in bad([str(sweep), "--x", ""], monkeypatch, capsys)
    assert "--y 'acc' is not a metric of any job" in bad([str(sweep), "--y", "acc"], monkeypatch, capsys)
    assert "--group 'seed' is not an override" in bad([str(sweep), "--group", "seed"], monkeypatch, capsys)
    assert "no completed job has both 'data.digit_size'" in bad([str(sweep), "--y", "val/acc"], monkeypatch, capsys)
    assert "--out " in bad([str(sweep), "--out", str(a_file)], monkeypatch, capsys)
    assert "--out is empty" in bad([str(sweep), "--out", ""], monkeypatch, capsys)
    assert "cannot write the report into" in bad([str(sweep), "--out", str(a_file / "sub")], monkeypatch, capsys)
    assert not (sweep / "report.md").exists(), "nothing is written when an argument is wrong"


def test_a_sweep_with_nothing_to_plot_still_gets_its_table(tmp_path, capsys, monkeypatch):
    write_job(tmp_path / "s", "0", {"status": "failed", "error": "boom"})
    monkeypatch.setattr(sys, "argv", ["reprog.report", str(tmp_path / "s"), "--group", ""])
    report.main()
    out = capsys.readouterr().out
    assert "png: none" in out and out.rstrip().endswith("jobs: 1 failed")
    assert (tmp_path / "s" / "report.md").is_file() and not (tmp_path / "s" / "report.png").exists()


def test_unknown_flag_is_argparse_usage_and_exit_2(sweep):
    result = subprocess.run(
        [sys.executable, "-m", "reprog.report", str(sweep), "--colour", "red"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("report.py: error: unrecognized arguments: --colour")
