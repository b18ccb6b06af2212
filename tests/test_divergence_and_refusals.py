"""Runs that would report a false success: a diverged run, a run that trains nothing, splits that disagree,
a folder that holds a finished run. Each is refused or stopped with one line and the right status."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_RUN, compose_train, synthetic_images, write_cifar_npz

from reprog.attacks import build_attack
from reprog.cli import exit_on_user_error, one_line
from reprog.errors import Diverged, UserError
from reprog.run_dir_guard import refuse_finished_run
from train import train

SHORT = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]


def record(tmp_path):
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.parametrize("task", ["victim", "program"])
def test_a_diverged_run_stops_as_diverged_and_exports_nothing(tmp_path, cifar_npz_dir, mnist_dir, victim_file, task):
    if task == "victim":
        cfg = compose_train(tmp_path, cifar_npz_dir, [*SHORT, "optimizer.lr=1e30"])
    else:
        cfg = compose_train(
            tmp_path,
            mnist_dir,
            [*SHORT, "experiment=reprogram_mnist_scale", "optimizer.lr=1e30", f"victim.ckpt_path={victim_file}"],
        )
    with pytest.raises(Diverged) as info:
        train(cfg)
    assert "the run diverged; lower the learning rate (optimizer.lr=1e+30)" in one_line(info.value)
    summary = record(tmp_path)
    assert summary["status"] == "diverged" and "diverged" in summary["error"] and "exports" not in summary
    assert not list((tmp_path / "run").glob("*.safetensors"))


def test_a_diverged_run_exits_non_zero_with_one_line(tmp_path, cifar_npz_dir):
    cmd = [
        sys.executable,
        "train.py",
        *TINY_RUN,
        *SHORT,
        "optimizer.lr=1e30",
        f"paths.data_dir={cifar_npz_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "error: the training loss became"
    )
    assert "Traceback" not in result.stderr and record(tmp_path)["status"] == "diverged"


def test_an_attack_whose_fit_diverges_stops_the_run_as_diverged(tmp_path, victim_file):
    substitute = [
        "experiment=attack_substitute",
        f"victim.ckpt_path={victim_file}",
        "trainer.limit_test_batches=1",
        "data.eval_batch_size=16",
        "task.fit_size=32",
        "task.attacks.substitute.seed_size=16",
        "task.attacks.substitute.probe_size=8",
        "task.attacks.substitute.rounds=1",
        "task.attacks.substitute.reservoir=null",
        "task.attacks.substitute.epochs=1",
        "+task.attacks.substitute.lr=1e30",
    ]
    cfg = compose_train(tmp_path, write_cifar_npz(tmp_path / "cifar", 200, 100), substitute)
    with pytest.raises(SystemExit) as info:  # as `python train.py` ends: exit 1 with this line on stderr
        exit_on_user_error(train)(cfg)
    line = str(info.value.code)
    assert line.startswith("error: the training loss of attack substitute_eps8 became nan at step ") and line.endswith(
        ": the run diverged; lower the learning rate (task.attacks.substitute.lr=1e+30)"
    ), line
    summary = record(tmp_path)
    assert summary["status"] == "diverged" and summary["error"] == line.removeprefix("error: ")
    assert not list((tmp_path / "run").glob("substitute*")), "nothing of the diverged attack is saved"


@pytest.mark.parametrize("kind", ["universal", "patch"])
def test_every_attack_that_fits_stops_on_a_non_finite_loss(kind):
    class Broken(torch.nn.Module):  # a model whose logits blew up
        def forward(self, x):
            return torch.full((len(x), 10), float("nan")) + 0 * x.sum()

    attack = build_attack(kind, Broken(), epochs=1, batch_size=4)
    attack.key, attack.config_path = f"{kind}_eps8", f"task.attacks.{kind}"
    with pytest.raises(Diverged) as info:
        attack.fit(torch.rand(8, 3, 32, 32), torch.zeros(8, dtype=torch.long))
    assert str(info.value) == (
        f"the training loss of attack {kind}_eps8 became nan at step 0: the run diverged; lower the learning "
        f"rate (task.attacks.{kind}.lr={attack.lr})"
    )


@pytest.mark.parametrize(
    "override, needle",
    [
        ("data.batch_size=100000", "data.batch_size=100000 is larger than the 500 training images"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 trains on no batch"),
    ],
)
def test_a_run_that_would_train_nothing_is_refused_before_fitting(tmp_path, cifar_npz_dir, override, needle):
    cfg = compose_train(tmp_path, cifar_npz_dir, [*SHORT, override])
    with pytest.raises(UserError) as info:
        train(cfg)
    assert needle in one_line(info.value) and record(tmp_path)["status"] == "failed"
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "given, what",
    [
        ("victim.json", "a JSON file (a run's metrics.json, or the .json beside an export)"),
        (
            "victim.safetensors",
            "a safetensors export (a victim or program file: victim.ckpt_path= or predict take those)",
        ),
    ],
)
def test_a_json_or_an_export_given_as_resume_checkpoint_is_named_for_what_it_is(
    tmp_path, cifar_npz_dir, victim_file, given, what
):
    given = victim_file.parent / given
    before = given.read_bytes()
    with pytest.raises(SystemExit) as info:
        exit_on_user_error(train)(compose_train(tmp_path, cifar_npz_dir, [*SHORT, f"ckpt_path={given}"]))
    assert info.value.code == (
        f"error: cannot resume from {given}: it is {what}, not a checkpoint; pass the .ckpt of an earlier run of "
        "the same experiment, e.g. ckpt_path=<run>/checkpoints/last.ckpt"
    )
    assert record(tmp_path)["status"] == "failed" and given.read_bytes() == before
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_test_images_of_another_size_are_refused_before_fitting(tmp_path):
    data = tmp_path / "data" / "cifar10"
    data.mkdir(parents=True)
    for name, n, size in (("train", 200, 32), ("test", 50, 64)):
        x, y = synthetic_images(n, size=size)
        np.savez(data / f"{name}.npz", x=x, y=y)
    cfg = compose_train(tmp_path, tmp_path / "data", SHORT)
    with pytest.raises(UserError) as info:
        train(cfg)
    assert one_line(info.value) == (
        f"the test images ({data / 'test.npz'}) are 3x64x64 but the training images "
        f"({data / 'train.npz'}) are 3x32x32; give every split images of one shape"
    )


def test_a_folder_that_holds_a_finished_run_is_never_overwritten(tmp_path, cifar_npz_dir):
    run = tmp_path / "run"
    train(compose_train(tmp_path, cifar_npz_dir, SHORT))  # a completed run in `run`
    base = [sys.executable, "train.py", *TINY_RUN, *SHORT, f"paths.data_dir={cifar_npz_dir}", f"hydra.run.dir={run}"]
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = subprocess.run([*base, "optimizer.lr=abc"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"error: {run} holds a completed run (its metrics.json); choose another hydra.run.dir, or add "
        "+overwrite=true to replace it"
    ]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before, "nothing written"
    refuse_finished_run(run, overwrite=True)  # +overwrite=true lets the run start


def signal_once_running(
    cmd: list[str], record_path, signum: int = signal.SIGTERM, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Start `cmd`, send `signum` as soon as its metrics.json says `running` (start-up: data and task still being
    built), and wait for it."""
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(record_path.read_text())["status"] == "running":
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    process.send_signal(signum)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(cmd, process.returncode, out, err)


@pytest.mark.parametrize(
    "signum, multirun",
    [
        (signal.SIGTERM, False),
        (signal.SIGTERM, True),
        pytest.param(signal.SIGINT, True, marks=pytest.mark.slow),  # the same handler as SIGTERM under a launcher
        pytest.param(signal.SIGINT, False, marks=pytest.mark.slow),  # the same handler as SIGINT under a launcher
    ],
    ids=["SIGTERM-run", "SIGTERM-multirun", "SIGINT-multirun", "SIGINT-run"],
)
def test_a_signal_at_start_up_is_an_interruption_not_a_data_error(tmp_path, cifar_npz_dir, signum, multirun):
    where = (
        ["-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "seed=0,1"]
        if multirun
        else [f"hydra.run.dir={tmp_path / 'run'}"]
    )
    record_path = tmp_path / ("sweep/0" if multirun else "run") / "metrics.json"
    cmd = [sys.executable, "train.py", *where[:1], *TINY_RUN, *SHORT, f"paths.data_dir={cifar_npz_dir}", *where[1:]]
    result = signal_once_running(cmd, record_path, signum)
    assert result.returncode == 128 + signum, result.stderr[-2000:]  # 143 or 130, under a launcher too
    name = signal.Signals(signum).name
    summary = json.loads(record_path.read_text())
    assert (summary["status"], summary["signal"], summary["resume"]) == ("interrupted", name, None), summary
    said = result.stdout + result.stderr  # the line is logged; Hydra's log handler writes to stdout
    assert f"interrupted by {name}; no checkpoint was saved yet: run it again to start over" in said
    assert "corrupt" not in result.stderr and "Error in call" not in result.stderr and "Traceback" not in result.stderr
    if multirun:
        assert not (tmp_path / "sweep" / "1" / "metrics.json").exists(), "the sweep stops with its job"


# SIGTERM reaches the process while the export's weights file is written (after fitting, outside Lightning's
# loops): the moment a scheduler's kill is most costly. Just before the signal, the files the run has written so far
# are listed with their sizes and hashes in `<run>/../written.json`.
DURING_EXPORT = """
import hashlib, json, os, signal
import reprog.atomic_files as files

real = files._write_temp

def write_temp(temp, data):
    real(temp, data)
    if ".safetensors." in temp.name:  # the weights are written in full, not yet renamed into place
        run = temp.parent
        written = {str(p.relative_to(run)): [p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
                   for p in sorted(run.rglob("*")) if p.is_file() and p != temp}
        (run.parent / "written.json").write_text(json.dumps(written))
        os.kill(os.getpid(), signal.SIGTERM)
"""
AS_TRAIN_PY = """
import runpy, sys
files._write_temp = write_temp
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def check_interrupted_export(run, said: str) -> None:
    """The run stopped as interrupted with nothing of the export, and lost nothing it had written before."""
    last = run / "checkpoints" / "last.ckpt"
    assert f"interrupted by SIGTERM; resume with ckpt_path={last}" in said
    summary = json.loads((run / "metrics.json").read_text())
    assert (summary["status"], summary["signal"], summary["resume"]) == ("interrupted", "SIGTERM", f"ckpt_path={last}")
    assert "exports" not in summary and summary["overrides"], "what was recorded before is kept"
    assert not list(run.glob("victim.*")) and not list(run.rglob("*.tmp")), "no export, not even part of one"
    now = {str(p.relative_to(run)): p for p in run.rglob("*") if p.is_file()}
    for name, (size, digest) in json.loads((run.parent / "written.json").read_text()).items():
        assert name in now, f"{name} was lost"
        if name != "metrics.json":  # the record changed its status (above); logs only grow
            kept = now[name].read_bytes()[: size if name.endswith(".log") or "tfevents" in name else None]
            assert hashlib.sha256(kept).hexdigest() == digest, f"{name} changed"
    assert torch.load(last, weights_only=True)["global_step"] == 3, "the checkpoint resumes after the 3 steps"


def test_sigterm_during_the_export_is_an_interruption_that_loses_nothing_written(
    tmp_path, cifar_npz_dir, monkeypatch, caplog
):
    import reprog.atomic_files as files

    hook: dict = {}
    exec(DURING_EXPORT, hook)  # the same hook the multirun test below runs in its own process
    monkeypatch.setattr(files, "_write_temp", hook["write_temp"])
    with pytest.raises(SystemExit) as info:  # a real SIGTERM, to this process, handled as `python train.py` does
        exit_on_user_error(train)(compose_train(tmp_path, cifar_npz_dir, SHORT))
    assert info.value.code == 143
    check_interrupted_export(tmp_path / "run", caplog.text)


@pytest.mark.slow
def test_sigterm_during_a_multirun_jobs_export_stops_the_sweep_and_loses_nothing_written(tmp_path, cifar_npz_dir):
    cmd = [sys.executable, "-c", DURING_EXPORT + AS_TRAIN_PY, "-m", *TINY_RUN, *SHORT]
    cmd += [f"paths.data_dir={cifar_npz_dir}", f"hydra.sweep.dir={tmp_path}", "seed=0,1"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 143 and "Traceback" not in result.stderr, result.stderr[-2000:]
    check_interrupted_export(tmp_path / "0", result.stdout + result.stderr)
    assert not (tmp_path / "1").exists(), "the sweep stops with its job"


def black_box_run(victim_file) -> list[str]:
    """A black-box job where a step at batch 8 with q=2 directions costs 8 x 3 = 24 queries; 3 steps an epoch."""
    return [
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "oracle=score",
        "oracle.q=2",
        "data.batch_size=8",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]


def test_sigterm_after_the_last_training_batch_is_still_an_interruption(tmp_path, cifar_npz_dir, monkeypatch):
    # Lightning looks for a SIGTERM between batches only: one after the last would let the run complete and export
    from reprog.modules.victim import VictimModule

    monkeypatch.setattr(VictimModule, "on_train_end", lambda self: os.kill(os.getpid(), signal.SIGTERM), raising=False)
    with pytest.raises(SystemExit) as info:
        exit_on_user_error(train)(compose_train(tmp_path, cifar_npz_dir, SHORT))
    assert info.value.code == 143
    assert (record(tmp_path)["status"], record(tmp_path)["signal"]) == ("interrupted", "SIGTERM")
    assert not list((tmp_path / "run").glob("victim.*")), "nothing exported"


@pytest.mark.slow  # a real SIGTERM to a bank sweep in training (make test-all)
def test_sigterm_stops_a_bank_sweep_with_143_and_every_job_of_the_bank_says_interrupted(
    tmp_path, mnist_dir, victim_file
):
    cmd = [sys.executable, "train.py", "-m", "experiment=reprogram_mnist", f"victim.ckpt_path={victim_file}", *TINY_RUN]
    cmd += ["trainer.max_epochs=50", "trainer.enable_progress_bar=false", "callbacks.progress_log.every_s=0.2"]
    cmd += [f"paths.data_dir={mnist_dir}", f"paths.cache_dir={tmp_path / 'c'}", f"hydra.sweep.dir={tmp_path / 's'}"]
    cmd += ["hydra/launcher=bank", "data.digit_size=14,20"]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = tmp_path / "s" / "0" / "train.log"
    deadline = time.monotonic() + 240
    while (
        child.poll() is None
        and time.monotonic() < deadline
        and "progress:" not in (log.read_text() if log.is_file() else "")
    ):
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    said, _ = child.communicate(timeout=120)
    assert child.returncode == 143 and "Traceback" not in said, said[-3000:]
    assert "interrupted by SIGTERM" in said
    for job in ("0", "1"):
        summary = json.loads((tmp_path / "s" / job / "metrics.json").read_text())
        assert summary["status"] == "interrupted" and summary["bank"]["size"] == 2, summary


def test_a_query_budget_survives_a_resume_and_a_budget_too_small_for_one_step_is_refused(
    tmp_path, mnist_dir, victim_file
):
    black_box = [*black_box_run(victim_file), "oracle.budget=100"]
    train(compose_train(tmp_path, mnist_dir, black_box))
    first = record(tmp_path)["metrics"]["train/queries"]
    assert first == 72.0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    train(compose_train(resumed, mnist_dir, [*black_box, "trainer.max_epochs=2", f"ckpt_path={ckpt}"]))
    assert record(resumed)["metrics"]["train/queries"] == 96.0, "72 spent before, one more step of 24, then the budget"
    too_small = tmp_path / "too_small"
    too_small.mkdir()
    with pytest.raises(UserError) as info:
        train(compose_train(too_small, mnist_dir, [*black_box, "oracle.budget=20"]))
    assert one_line(info.value) == (
        "oracle.budget=20 cannot pay for one training step at data.batch_size=8; raise "
        "oracle.budget or lower data.batch_size"
    )


@pytest.mark.slow  # a real kill -9 of a training process, then its resume (make test-all)
def test_queries_spent_after_the_last_checkpoint_still_count_when_a_killed_run_resumes(
    tmp_path, mnist_dir, victim_file
):
    # 24 queries a step, 3 steps an epoch, a checkpoint at each epoch's end: killed in its second epoch, the run
    # has spent more than its last checkpoint holds
    black_box = [
        *black_box_run(victim_file),
        *TINY_RUN,
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'c'}",
    ]
    run, ledger = tmp_path / "run", tmp_path / "run" / "queries.json"
    cmd = [
        sys.executable,
        "train.py",
        *black_box,
        "oracle.budget=1000",
        "trainer.max_epochs=40",
        f"hydra.run.dir={run}",
    ]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spent = lambda: json.loads(ledger.read_text())["queries"] if ledger.is_file() else 0  # noqa: E731
    deadline = time.monotonic() + 240
    while spent() < 96 and child.poll() is None and time.monotonic() < deadline:  # 96: the second epoch's first step
        time.sleep(0.01)
    child.kill()
    child.wait()
    at_kill = spent()
    checkpointed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["oracle_queries"]
    assert at_kill > checkpointed, (at_kill, checkpointed)

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    budget = at_kill + 30  # one more step of 24, then the budget
    cfg = compose_train(
        resumed,
        mnist_dir,
        [
            *black_box,
            f"oracle.budget={budget}",
            "trainer.max_epochs=40",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        ],
    )
    train(cfg)
    assert record(resumed)["metrics"]["train/queries"] == at_kill + 24, "counted from the kill, not the checkpoint"
    assert record(resumed)["stopped"] == f"the query budget: {at_kill + 24} of {budget} queries used"


def test_a_misspelt_optimizer_setting_is_one_line(tmp_path, cifar_npz_dir):
    with pytest.raises(UserError) as info:
        train(compose_train(tmp_path, cifar_npz_dir, [*SHORT, "+optimizer.lrr=0.1"]))
    assert one_line(info.value).startswith("the optimizer does not take these settings (TypeError:")
