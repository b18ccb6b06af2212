"""Runs that would report a false success: a diverged run, a run that trains nothing, splits that disagree,
a folder that holds a finished run. Each is refused or stopped with one line and the right status."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, TINY_RUN, compose_train, synthetic_images

from reprog.cli import one_line
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
    base = [sys.executable, "train.py", *TINY_RUN, *SHORT, f"paths.data_dir={cifar_npz_dir}", f"hydra.run.dir={run}"]
    assert subprocess.run(base, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = subprocess.run([*base, "optimizer.lr=abc"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"error: {run} holds a completed run (its metrics.json); choose another hydra.run.dir, or add "
        "+overwrite=true to replace it"
    ]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before, "nothing written"
    refuse_finished_run(run, overwrite=True)  # +overwrite=true lets the run start


def sigterm_once_running(cmd: list[str], record_path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Start `cmd`, send SIGTERM as soon as its metrics.json says `running` (start-up: data and task still being
    built), and wait for it."""
    import signal
    import time

    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(record_path.read_text())["status"] == "running":
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(cmd, process.returncode, out, err)


@pytest.mark.parametrize("multirun", [False, True])
def test_sigterm_at_start_up_is_an_interruption_not_a_data_error(tmp_path, cifar_npz_dir, multirun):
    where = (
        ["-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "seed=0,1"]
        if multirun
        else [f"hydra.run.dir={tmp_path / 'run'}"]
    )
    record_path = tmp_path / ("sweep/0" if multirun else "run") / "metrics.json"
    cmd = [sys.executable, "train.py", *where[:1], *TINY_RUN, *SHORT, f"paths.data_dir={cifar_npz_dir}", *where[1:]]
    result = sigterm_once_running(cmd, record_path)
    assert result.returncode == 143, result.stderr[-2000:]
    summary = json.loads(record_path.read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM", summary
    assert "corrupt" not in result.stderr and "Error in call" not in result.stderr and "Traceback" not in result.stderr
    if multirun:
        assert not (tmp_path / "sweep" / "1" / "metrics.json").exists(), "the sweep stops with its job"


def test_a_query_budget_survives_a_resume_and_a_budget_too_small_for_one_step_is_refused(
    tmp_path, mnist_dir, victim_file
):
    # a step at batch 8 with q=2 directions costs 8 x 3 = 24 queries; 3 steps an epoch
    black_box = [
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "oracle=score",
        "oracle.q=2",
        "oracle.budget=100",
        "data.batch_size=8",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
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


def test_a_misspelt_optimizer_setting_is_one_line(tmp_path, cifar_npz_dir):
    with pytest.raises(UserError) as info:
        train(compose_train(tmp_path, cifar_npz_dir, [*SHORT, "+optimizer.lrr=0.1"]))
    assert one_line(info.value).startswith("the optimizer does not take these settings (TypeError:")
