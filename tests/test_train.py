"""train.py end to end: through the compose API, as a subprocess, and with fast_dev_run."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY_RUN, compose_train

from reprog.models.export import load_victim
from train import train


def test_train_via_compose_writes_checkpoint_events_export_and_metrics(tmp_path, cifar_npz_dir):
    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        [
            "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "logger=many_loggers",
        ],
    )
    metrics = train(cfg)
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "csv" / "metrics.csv").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def hparams_tags(events) -> dict:
        try:
            return EventAccumulator(str(events)).Reload().PluginTagToContent("hparams")
        except KeyError:  # an event file without HParams summaries
            return {}

    tags = [hparams_tags(f) for f in (run / "tensorboard").glob("events*")]
    assert any("_hparams_/session_start_info" in t for t in tags), "HParams view: settings beside final metrics"
    assert 0.0 <= metrics["test/acc"] <= 1.0 and "val/acc" in metrics
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["metrics"]["test/acc"] == metrics["test/acc"]

    # the checkpoint is the reprogramming stage's input: it loads with weights_only=True
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["model"]["arch"] == "resnet20"
    from_ckpt, _ = load_victim(run / "checkpoints" / "last.ckpt")
    from_export, _ = load_victim(run / "victim.safetensors")
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(from_ckpt.eval()(x), from_export.eval()(x))


def test_fast_dev_run(tmp_path, cifar_npz_dir):
    cfg = compose_train(tmp_path, cifar_npz_dir, ["trainer.fast_dev_run=true", "scheduler=cosine", "model=resnet56"])
    assert "test/acc" in train(cfg)


def test_train_py_as_a_subprocess(tmp_path, cifar_npz_dir):
    run = tmp_path / "sub"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_RUN,
        "trainer.max_steps=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        f"paths.data_dir={cifar_npz_dir}",
        f"hydra.run.dir={run}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file() and list((run / "tensorboard").glob("events.*"))
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "victim.safetensors").is_file()


@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_a_tiny_model_overfits_a_small_batch(tmp_path, cifar_npz_dir):
    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        [
            "trainer.overfit_batches=1",
            "trainer.max_epochs=60",
            "trainer.limit_val_batches=0",
            "test=false",
            "data.augment=false",
            "optimizer=adam",
            "optimizer.lr=0.01",
            "~scheduler",
            "logger=csv",
            "data.batch_size=16",
        ],
    )
    metrics = train(cfg)
    assert metrics["train/loss_step"] < 0.05, metrics


def test_val_size_zero_trains_on_every_image_and_tests_the_last_weights(tmp_path, cifar_npz_dir):
    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        [
            "data.val_size=0",
            "callbacks.model_checkpoint.monitor=null",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
        ],
    )
    metrics = train(cfg)
    assert "test/acc" in metrics and not any(k.startswith("val/") for k in metrics)
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


def test_a_run_whose_output_is_not_a_terminal_logs_its_progress(tmp_path, cifar_npz_dir):
    cmd = [
        sys.executable,
        "train.py",
        *TINY_RUN,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "callbacks.progress_log.every_s=0",
        f"paths.data_dir={cifar_npz_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)  # a pipe, not a terminal
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "progress: " in line]
    assert len(lines) == 2 * (4 + 1), "a line per step (every_s=0) and one at each epoch's end"
    assert "epoch 1/2, step 1/4, global step 1, loss " in lines[0] and "images/s, epoch left " in lines[0]
    assert "epoch 2/2, step 4/4" in lines[-1] and "val/acc " in lines[-1] and "epoch took " in lines[-1]
    assert sum("progress: " in line for line in result.stdout.splitlines() + result.stderr.splitlines()) == 10
