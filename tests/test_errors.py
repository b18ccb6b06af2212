"""Bad input gets one clear line on stderr and a non-zero exit, never a traceback."""

import subprocess
import sys

import pytest
from conftest import ROOT, TINY_RUN, compose_train


def run_train(*overrides: str, tmp_path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "train.py",
        *TINY_RUN,
        "trainer.fast_dev_run=true",
        f"hydra.run.dir={tmp_path / 'run'}",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def assert_clean_failure(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]


def test_unknown_config_option_lists_the_available_ones(tmp_path):
    result = run_train("model=resnet9000", tmp_path=tmp_path)
    assert_clean_failure(result, "Could not find 'model/resnet9000'", "resnet20")


def exit_message(tmp_path, data_dir, *overrides: str) -> str:
    """train.py's entry point in this process, up to the line it exits with (the subprocess tests cost 5 s each)."""
    from reprog.cli import exit_on_user_error
    from train import train

    cfg = compose_train(tmp_path, data_dir, ["trainer.fast_dev_run=true", *overrides])
    with pytest.raises(SystemExit) as info:
        exit_on_user_error(train)(cfg)
    message = str(info.value.code)
    assert "\n" not in message
    return message


def test_data_dir_without_a_dataset(tmp_path):
    message = exit_message(tmp_path, tmp_path, "data.download=false")
    assert message.startswith("error: no CIFAR-10 found") and "train,test}.npz" in message
    assert "data.download=true" in message


def test_corrupt_npz(tmp_path, cifar_npz_dir):
    (cifar_npz_dir / "cifar10" / "train.npz").write_bytes(b"\x00" * 100)
    message = exit_message(tmp_path, cifar_npz_dir)
    assert message.startswith("error: corrupt array data set") and "train.npz" in message
