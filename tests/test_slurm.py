"""A real one-node SLURM cluster (scripts/slurm/up.sh: munged, MariaDB + slurmdbd, slurmctld, slurmd): a two-job
sweep through `hydra/launcher=slurm`, one job pre-empted the way SLURM pre-empts with PreemptMode=REQUEUE
(`scontrol requeue`: SIGTERM, back into the queue), started again, resumed from its last checkpoint, and checked
against the other, which ran through: the same final metrics, exactly.

Needs root and the Debian packages (installed by up.sh when missing); skipped where SLURM cannot start.
About 3 minutes on 2 CPU cores, most of it the requeued job's wait (cred_expire) before it starts again.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY_RUN, write_cifar_npz

SLURM_DIR = Path(os.environ.get("REPROG_SLURM_DIR", "/tmp/reprog-slurm"))
SBIN = ":/usr/sbin:/sbin"


def _why_slurm_cannot_start() -> str | None:
    if os.geteuid() != 0:
        return "SLURM needs root here (scripts/slurm/up.sh starts munged, MariaDB, slurmdbd, slurmctld, slurmd)"
    path = os.environ.get("PATH", "") + SBIN
    if not shutil.which("slurmctld", path=path) and not shutil.which("apt-get", path=path):
        return "SLURM is not installed (slurm-wlm, slurmdbd, munge, mariadb-server) and apt-get is missing"
    return None


@pytest.fixture(scope="module")
def slurm() -> dict[str, str]:
    """The environment of a client of the cluster (SLURM_CONF); the cluster comes down after, if started here."""
    why = _why_slurm_cannot_start()
    if why:
        pytest.skip(why)
    env = {**os.environ, "REPROG_SLURM_DIR": str(SLURM_DIR), "PATH": os.environ.get("PATH", "") + SBIN}
    up = subprocess.run([str(ROOT / "scripts/slurm/up.sh")], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        pytest.skip(f"SLURM cannot start here: {(up.stderr or up.stdout).strip().splitlines()[-1:]}")
    started_here = "already up" not in up.stdout
    env["SLURM_CONF"] = str(SLURM_DIR / "etc" / "slurm.conf")
    yield env
    if started_here:
        subprocess.run([str(ROOT / "scripts/slurm/down.sh")], env=env, capture_output=True, timeout=300)


def _wait(predicate, seconds: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.time() + seconds
    while not predicate():
        if proc.poll() is not None or time.time() > deadline:
            out = proc.communicate()[0] if proc.poll() is not None else ""
            pytest.fail(f"gave up waiting for {what}: {out[-3000:]}")
        time.sleep(0.5)


@pytest.mark.slow  # ~2.5 min; a real cluster (make test-all runs it)
def test_a_sweep_runs_under_slurm_and_a_preempted_job_resumes_to_the_uninterrupted_metrics(tmp_path, slurm):
    data, sweep = write_cifar_npz(tmp_path / "data"), tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
        "hydra.launcher.timeout_min=15",
        *TINY_RUN,
        "trainer.max_epochs=3",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1",
        "seed=3,3",  # two identical jobs: 0 runs through, 1 is pre-empted
        f"paths.data_dir={data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    sweep_run = subprocess.Popen(cmd, cwd=ROOT, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # pre-empt job 1 in its second epoch as SLURM does (PreemptMode=REQUEUE): SIGTERM, and back into the queue
    _wait(lambda: (sweep / "1" / "checkpoints" / "last.ckpt").is_file(), 300, sweep_run, "job 1's first epoch")
    job = json.loads((sweep / "1" / "metrics.json").read_text())["slurm"]["job_id"]
    subprocess.run(["scontrol", "requeue", job], env=slurm, check=True, timeout=30)
    _wait(
        lambda: json.loads((sweep / "1" / "metrics.json").read_text())["status"] == "interrupted",
        120,
        sweep_run,
        "job 1 to stop",
    )
    stopped = json.loads((sweep / "1" / "metrics.json").read_text())
    assert stopped["signal"] == "SIGTERM" and "last.ckpt" in stopped["resume"], stopped

    out, _ = sweep_run.communicate(timeout=600)
    assert sweep_run.returncode == 0, out[-3000:]
    reference, resumed = (json.loads((sweep / n / "metrics.json").read_text()) for n in "01")
    assert reference["status"] == resumed["status"] == "completed", (reference, resumed)
    assert reference["slurm"]["restarts"] == 0 and "resumed_from" not in reference
    assert resumed["slurm"]["restarts"] >= 1 and resumed["resumed_from"] == str(
        sweep / "1" / "checkpoints" / "last.ckpt"
    )

    def results(summary):  # all but wall-clock timings (time/train_s)
        return {k: v for k, v in summary["metrics"].items() if not k.startswith("time/")}, summary["steps"]

    assert results(resumed) == results(reference), "resumed from its last checkpoint, it ends as if never stopped"
    for job_dir in (sweep / "0", sweep / "1"):  # what an ordinary run leaves
        assert (job_dir / ".hydra" / "config.yaml").is_file() and (job_dir / "victim.safetensors").is_file()
        assert list((job_dir / "tensorboard").rglob("events.out.tfevents.*"))

    array = job.split("_")[0]
    sacct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", array, "-o", "JobID,State,ExitCode"],
        env=slurm,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert sorted(sacct) == [f"{array}_0|COMPLETED|0:0", f"{array}_1|COMPLETED|0:0"], sacct
    report = subprocess.run(
        [sys.executable, "-m", "reprog.report", str(sweep)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stderr
    assert (sweep / "report.md").read_text().count("| completed |") == 2


def test_the_report_gives_a_job_killed_by_slurm_the_reason_slurm_logged(tmp_path):
    """A job SIGKILLed over its --mem writes nothing: its metrics.json still says running; SLURM's line is the error."""
    from reprog.report import collect

    sweep = tmp_path / "sweep"
    for n, job in (("0", "8_0"), ("1", "8_1")):
        (sweep / n / ".hydra").mkdir(parents=True)
        (sweep / n / ".hydra" / "overrides.yaml").write_text(f"- data.batch_size={32 if n == '0' else 1024}\n")
        (sweep / n / "metrics.json").write_text(
            json.dumps(
                {
                    "overrides": [],
                    "slurm": {"job_id": job, "restarts": 0},
                    "status": "running",
                    "pid": 12345,
                    "host": "a-compute-node",
                    "started": "2026-12-07T14:40:29",
                }
            )
        )
        (sweep / ".submitit" / job).mkdir(parents=True)
    (sweep / ".submitit" / "8_1" / "8_1_0_log.err").write_text(
        "SLURM auto-requeueing enabled. Setting signal handlers.\n"
        "slurmstepd-vm: error: *** JOB 9 ON vm CANCELLED AT 2026-12-07T14:30:00 DUE TO JOB REQUEUE ***\n"
        "slurmstepd-vm: error: StepId=10.0 exceeded memory limit (2386538496 > 2147483648), being killed\n"
        "slurmstepd-vm: error: *** STEP 10.0 ON vm CANCELLED AT 2026-12-07T14:40:34 ***\n"
        "slurmstepd-vm: error: Exceeded job memory limit\nsrun: error: vm: task 0: Killed\n"
    )
    jobs = {job.name: job for job in collect(sweep)}
    assert (jobs["0"].status, jobs["0"].error) == ("running", ""), "still running elsewhere: no verdict"
    assert jobs["1"].status == "killed"
    assert (
        jobs["1"].error == "killed by SLURM: StepId=10.0 exceeded memory limit (2386538496 > 2147483648), being killed"
    )
