"""What a user watches: a finished run's curves, as TensorBoard's own server (default fast loader) serves them."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import compose_train

from train import train

pytestmark = pytest.mark.filterwarnings("ignore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoard:
    """`tensorboard --logdir` on localhost with its defaults (load_fast=auto: the Rust data server)."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--reload_interval",
            "1",
        ]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(self, path: str, **query: str):
        url = f"http://127.0.0.1:{self.port}/data/plugin/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def steps(self, run: str, tag: str, points: int, timeout: float = 60) -> list[int]:
        """The steps of `tag` once the server has loaded at least `points` of them (or its last answer)."""
        deadline, steps = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                steps = [step for _, step, _ in self.get("scalars/scalars", run=run, tag=tag)]
            except OSError:  # not listening yet, or the tag not loaded yet
                pass
            if len(steps) >= points:
                break
            time.sleep(1)
        return steps

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def tensorboard():
    servers = []
    yield lambda logdir: servers.append(TensorBoard(logdir)) or servers[-1]
    for server in servers:
        server.close()


def test_a_finished_runs_curves_are_whole_in_tensorboard(tmp_path, cifar_npz_dir, tensorboard):
    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        [
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=4",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "trainer.log_every_n_steps=1",
        ],
    )
    train(cfg)
    server = tensorboard(tmp_path / "run")
    val = server.steps("tensorboard", "val/acc", 3)
    lr = server.steps("tensorboard", "lr-SGD", 12)
    assert val == [3, 7, 11], "one validation point per epoch, at its step, none dropped or rewritten at step 0"
    assert lr == list(range(12)), "the learning rate at every step"
    assert server.steps("tensorboard", "test/acc", 1) == [12]


def test_a_finished_sweep_lists_its_swept_keys_and_keeps_each_jobs_curves(tmp_path, cifar_npz_dir, tensorboard):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "optimizer.lr=0.05,0.1",
        "data.val_size=100",
        "data.batch_size=32",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.enable_model_summary=false",
        "callbacks.rich_progress_bar=null",
        f"paths.data_dir={cifar_npz_dir}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(cmd, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    server = tensorboard(sweep)
    for job in ("0", "1"):
        assert server.steps(f"{job}/tensorboard", "val/acc", 2) == [2, 5]
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/data/plugin/hparams/experiment",
        data=json.dumps({"experimentName": ""}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        experiment = json.loads(answer.read())
    assert {"optimizer.lr", "seed"} <= {h["name"] for h in experiment["hparamInfos"]}
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"val/acc", "val/acc_best", "test/acc"} <= metrics
