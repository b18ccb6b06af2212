"""Real 2-process DDP on CPU (gloo), like lightning-hydra-template's ddp_sim, inside a Hydra multirun."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, write_mnist
from safetensors.torch import load_file

from reprog.data.mnist import PaddedMNISTDataModule
from reprog.predict import predict

DDP_RUN = [
    "experiment=reprogram_mnist",
    "trainer=ddp_sim",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "data.val_size=100",
    "data.batch_size=32",
    "data.eval_batch_size=50",
    "seed=null",  # no common seed: the shards must still be disjoint
    "+callbacks.probe._target_=tests.ddp_probe.SaveTrainable",
]  # each rank saves its W and what it saw


def run_ddp(args: list[str], multirun: bool = False) -> None:
    proc = subprocess.run(
        [sys.executable, "train.py", *(["-m"] if multirun else []), *DDP_RUN, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def check_ddp_job(job, victim, data_dir) -> float:
    """Metrics synced over both ranks, W identical on both, and only rank 0 wrote results."""
    summary = json.loads((job / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2

    w0, w1 = (load_file(job / f"trainable_rank{r}.safetensors") for r in (0, 1))
    seen0, seen1 = (
        w0.pop("seen"),
        w1.pop("seen"),
    )  # each rank trained on its own shard (seed=null: rank 0's is broadcast)
    assert len(seen0) == len(seen1) == 4 * 32 and not set(seen0.tolist()) & set(seen1.tolist())
    assert list(w0) == ["bank.programs.0.W"] and w0["bank.programs.0.W"].abs().sum() > 0
    assert (w0["bank.programs.0.W"] == w1["bank.programs.0.W"]).all(), "the ranks' programs drifted apart"

    # rank r evaluates the test images r, r + 2, ... (DeviceBatches): a rank-local accuracy is a shard's
    x, y = PaddedMNISTDataModule(str(data_dir), download=False).raw_split(train=False)
    correct = (predict(str(job / "program.safetensors"), str(victim), x) == y).float()
    assert correct[0::2].mean() != correct[1::2].mean(), "the shards must differ for this check to mean anything"
    assert summary["metrics"]["test/acc"] == pytest.approx(correct.mean().item(), abs=1e-6)

    rank1_log = (job / "train_ddp_process_1.log").read_text()  # rank 1 ran in this job's directory...
    assert "fitting ReprogramModule" in rank1_log
    assert "exported" not in rank1_log and "results in" not in rank1_log  # ...but wrote no results
    assert "exported" in (job / "train.log").read_text()
    return float(w0["bank.programs.0.W"].abs().mean())


@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_ddp_two_processes_per_job_in_a_multirun(tmp_path, victim_file):
    data = write_mnist(tmp_path / "data")
    run_ddp(
        [
            "optimizer.lr=0.01,0.1",
            f"victim.ckpt_path={victim_file}",
            f"paths.data_dir={data}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        multirun=True,
    )
    w_small, w_large = (check_ddp_job(tmp_path / "sweep" / str(i), victim_file, data) for i in (0, 1))
    assert w_large > 3 * w_small, "each job ran its own learning rate"
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["0", "1", "multirun.yaml"]


@pytest.mark.slow
def test_ddp_two_processes_single_run(tmp_path, victim_file):
    data = write_mnist(tmp_path / "data")
    run_ddp([f"victim.ckpt_path={victim_file}", f"paths.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}"])
    check_ddp_job(tmp_path / "run", victim_file, data)
