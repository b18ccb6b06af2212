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
from train import train

SHORT = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]


def record(tmp_path):
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.parametrize("task", ["victim", "program"])
def test_a_diverged_run_stops_as_diverged_and_exports_nothing(tmp_path, cifar_npz_dir, mnist_dir, victim_file, task):
    if task == "victim":
        cfg = compose_train(tmp_path, cifar_npz_dir, [*SHORT, "optimizer.lr=1e30"])
    else:
        cfg = compose_train(tmp_path, mnist_dir, [*SHORT, "experiment=reprogram_mnist_scale", "optimizer.lr=1e30",
                                                  f"victim.ckpt_path={victim_file}"])
    with pytest.raises(Diverged) as info:
        train(cfg)
    assert "the run diverged; lower the learning rate (optimizer.lr=1e+30)" in one_line(info.value)
    summary = record(tmp_path)
    assert summary["status"] == "diverged" and "diverged" in summary["error"] and "exports" not in summary
    assert not list((tmp_path / "run").glob("*.safetensors"))


def test_a_diverged_run_exits_non_zero_with_one_line(tmp_path, cifar_npz_dir):
    cmd = [sys.executable, "train.py", *TINY_RUN, *SHORT, "optimizer.lr=1e30", f"paths.data_dir={cifar_npz_dir}",
           f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith("error: the training loss "
                                                                                         "became")
    assert "Traceback" not in result.stderr and record(tmp_path)["status"] == "diverged"


@pytest.mark.parametrize("override, needle", [
    ("data.batch_size=100000", "data.batch_size=100000 is larger than the 500 training images"),
    ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 trains on no batch"),
])
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
    assert one_line(info.value) == (f"the test images ({data / 'test.npz'}) are 3x64x64 but the training images "
                                    f"({data / 'train.npz'}) are 3x32x32; give every split images of one shape")


def test_a_folder_that_holds_a_finished_run_is_never_overwritten(tmp_path, cifar_npz_dir):
    run = tmp_path / "run"
    base = [sys.executable, "train.py", *TINY_RUN, *SHORT, f"paths.data_dir={cifar_npz_dir}", f"hydra.run.dir={run}"]
    assert subprocess.run(base, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = subprocess.run([*base, "optimizer.lr=abc"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"error: {run} holds a completed run (its metrics.json); choose another hydra.run.dir, or add "
        "+overwrite=true to replace it"]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before, "nothing written"
    forced = subprocess.run([*base, "+overwrite=true"], cwd=ROOT, capture_output=True, timeout=300)
    assert forced.returncode == 0
