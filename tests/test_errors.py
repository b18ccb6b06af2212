"""Bad input gets one clear line on stderr and a non-zero exit, never a traceback."""

import subprocess
import sys

import pytest

from conftest import ROOT, TINY_RUN


def run_train(*overrides: str, tmp_path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train.py", *TINY_RUN, "trainer.fast_dev_run=true", f"hydra.run.dir={tmp_path / 'run'}",
           *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def assert_clean_failure(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]


def test_unknown_config_option_lists_the_available_ones(tmp_path):
    result = run_train("model=resnet9000", tmp_path=tmp_path)
    assert_clean_failure(result, "Could not find 'model/resnet9000'", "resnet20")


def test_data_dir_without_a_dataset(tmp_path):
    result = run_train(f"paths.data_dir={tmp_path}", "data.download=false", tmp_path=tmp_path)
    assert_clean_failure(result, "error: no CIFAR-10 found", "train,test}.npz", "data.download=true")
    assert len([l for l in result.stderr.splitlines() if l.startswith("error:")]) == 1


def test_corrupt_npz(tmp_path, cifar_npz_dir):
    (cifar_npz_dir / "cifar10" / "train.npz").write_bytes(b"\x00" * 100)
    result = run_train(f"paths.data_dir={cifar_npz_dir}", tmp_path=tmp_path)
    assert_clean_failure(result, "error: corrupt array data set", "train.npz")
